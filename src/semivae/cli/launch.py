"""``semivae train --nproc N``: torchrun started by the command, which hands it the user's signals."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def launch_torchrun(nproc: int, argv: list[str]) -> int:
    """``semivae train --nproc N ...`` as ``torchrun --nproc-per-node N -m semivae train ...``."""
    import subprocess

    args, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            args.append(arg)
    import shutil
    import tempfile

    from ..train.distributed import LAUNCHER_PIDS
    from ..train.training import on_signals

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "-m", "semivae"]
    pids = Path(tempfile.mkdtemp(prefix="semivae-nproc-"))  # each worker leaves its pid here
    got: list[int] = []

    def forward(signum, frame) -> None:
        """To the workers themselves: they stop at the same step and exit 0, and torchrun quietly
        (signalled, torchrun would print its own failure report); to torchrun before they start."""
        got.append(signum)
        workers = [int(f.name) for f in pids.iterdir() if f.name.isdigit()]
        for pid in workers:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
        if not workers:
            child.send_signal(signum)
    try:  # a session of its own: the terminal's Ctrl-C reaches this process alone, which passes it on
        child = subprocess.Popen(cmd + args, env=dict(os.environ, **{LAUNCHER_PIDS: str(pids)}), start_new_session=True)
        with on_signals(forward):
            code = child.wait()
    finally:
        shutil.rmtree(pids, ignore_errors=True)
    if got:
        print(f"interrupted by signal {got[0]}; the run's summary.json says how to resume it", file=sys.stderr)
        return 128 + got[0]
    return code
