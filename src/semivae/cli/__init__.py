"""The ``semivae`` command: ``train``, ``finetune``, ``distill``, ``sweep``, ``evaluate``,
``predict``, ``anomaly``, ``score``, ``feedback``, ``generate``, ``traverse``, ``disentangle``,
``embed``, ``impute``, ``export``, ``calibrate``, ``suggest``, ``report``, ``data pack``, ``bench speed``.
Bad input prints one line, ``error: <problem>; <fix>``, and exits with code 2; a run stopped by
SIGINT / SIGTERM exits 130 / 143 with a checkpoint."""

from __future__ import annotations

import os
import sys

from ..errors import Interrupted, TrainingDiverged, UserError


def main(argv: list[str] | None = None) -> int:
    if (sys.argv[1:] if argv is None else list(argv)) == ["--version"]:  # answered before the heavy imports
        from ..version import __version__

        print(f"semivae {__version__}")
        return 0
    from .commands import COMMANDS
    from .parser import build_parser

    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "cpu_threads", None) is not None:  # --threads of a command that loads a run
            if args.cpu_threads < 1:
                raise UserError(f"--threads {args.cpu_threads} must be >= 1, e.g. 1")
            import torch

            torch.set_num_threads(args.cpu_threads)
        return COMMANDS[args.command](args)
    except UserError as e:
        if os.environ.get("RANK", "0") == "0":  # under torchrun, one process says it
            print(f"error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        if os.environ.get("SEMIVAE_WORKER_PIDS"):  # a worker of `--nproc`: its launcher says so and exits 128 + N
            return 0  # (an exit code other than 0 would have torchrun print its failure report)
        if os.environ.get("RANK", "0") == "0":
            print(f"interrupted by signal {e.signum}; the run's summary.json says how to resume it", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except TrainingDiverged as e:
        print(f"error: training diverged: {e}; lower --lr or --alpha (last good weights kept)", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the output was piped into a reader that stopped (`| head`): no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so exit's flush does not fail again
        return 0


if __name__ == "__main__":
    sys.exit(main())
