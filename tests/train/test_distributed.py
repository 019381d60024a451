"""DistributedDataParallel wraps any model unchanged, because training goes through ``forward``.

Two gloo processes on CPU each run ``forward`` on their own batch; after ``backward`` every
rank holds the average of the two single-process gradients. The control shows why the
contract matters: calling a model's parts behind DDP's back leaves each rank its own gradient.
"""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from semivae.data import Batch
from semivae.models import build_model
from semivae.nn import ArchConfig
from tests.conftest import model_config, spec

WORKER = r"""
import json, os, sys
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
sys.path.insert(0, os.environ["TESTS_ROOT"])
from tests.train.test_distributed import make_model, make_batch

dist.init_process_group("gloo")
rank = dist.get_rank()
out = {}
for how in ("forward", "module"):
    model = DDP(make_model(os.environ["MODEL"]))
    torch.manual_seed(100)
    loss = model(make_batch(rank)) if how == "forward" else model.module.forward(make_batch(rank))
    loss.total.backward()
    out[how] = {n: p.grad.tolist() for n, p in model.module.named_parameters() if p.grad is not None}
json.dump(out, open(os.environ["OUT"] + f".{rank}", "w"))
dist.destroy_process_group()
"""


def make_model(name: str):
    torch.manual_seed(0)
    kw = {"mode": "semi"} if name == "semivae" else {}
    return build_model(spec((1, 8, 8), 3), ArchConfig(hidden=[8], latent_dim=2, dropout=0.0), model_config(name, **kw))


def make_batch(rank: int) -> Batch:
    g = torch.Generator().manual_seed(rank + 1)
    x = torch.rand(6, 1, 8, 8, generator=g)
    y = torch.tensor([[0], [1], [2], [-1], [-1], [1 + rank]])  # differs by rank; unlabelled points -1
    return Batch(x, y)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("name", ["semivae", "m2"])
def test_ddp_averages_gradients_through_forward(name, tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                   OUT=str(tmp_path / "grads"), MODEL=name, TESTS_ROOT=root, OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER], env=env, stderr=subprocess.PIPE, text=True))
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    ranks = [json.loads((tmp_path / f"grads.{r}").read_text()) for r in range(2)]

    local = []  # each rank's batch in one process, no DDP
    for rank in range(2):
        model = make_model(name)
        torch.manual_seed(100)
        model(make_batch(rank)).total.backward()
        local.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert set(ranks[0]["forward"]) == set(local[0])
    for n in local[0]:
        mean = (local[0][n] + local[1][n]) / 2
        for r in range(2):
            torch.testing.assert_close(torch.tensor(ranks[r]["forward"][n]), mean, rtol=1e-5, atol=1e-6)
    # the control: around DDP's forward, each rank keeps its own gradient
    differ = [n for n in local[0] if not torch.allclose(local[0][n], local[1][n])]
    assert differ
    for n in differ:
        torch.testing.assert_close(torch.tensor(ranks[0]["module"][n]), local[0][n], rtol=1e-5, atol=1e-6)


def test_two_gloo_processes_train_like_one_on_the_same_global_batch(tmp_path):
    """``semivae train --nproc 2`` (torchrun, DDP, each rank half of every batch) against one
    process with the same global batch: the same loss curve, and one complete run directory.
    The supervised sibling without dropout has no randomness but the sampler's, which every
    rank shares."""
    common = ["--mode", "supervised", "--dropout", "0", "--hidden", "32", "--labels", "200", "--val-labels", "20",
              "--batch-size", "32", "--epochs", "3", "--threads", "1", "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    one = subprocess.run([sys.executable, "-m", "semivae", "train", *common, "--out", str(tmp_path / "one")], env=env,
                         capture_output=True, text=True)
    two = subprocess.run([sys.executable, "-m", "semivae", "train", "--nproc", "2", *common, "--out",
                          str(tmp_path / "two")], env=env, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    rows = [[json.loads(line) for line in (tmp_path / r / "metrics.jsonl").read_text().splitlines()] for r in ("one", "two")]
    assert len(rows[0]) == len(rows[1]) == 3
    for a, b in zip(*rows):
        for k in ("loss", "ce", "val_accuracy", "val_log_loss"):
            assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-5), (k, a[k], b[k])
    files = {p.name for p in (tmp_path / "two").iterdir()}
    assert {"config.yaml", "data.json", "split.json", "model.safetensors", "metrics.jsonl", "summary.json",
            "checkpoint.safetensors", "unknown.json"} == files
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["status"] == "completed"


def test_batches_that_do_not_split_evenly_are_refused(tmp_path):
    from semivae.errors import UserError
    from semivae.train.distributed import World

    with pytest.raises(UserError, match="do not split evenly over 2 processes"):
        World(0, 2).check_batch(63, 65)


def test_ctrl_c_on_nproc_stops_every_worker_at_one_step_in_one_line(tmp_path):
    """The launcher passes the signal to the workers themselves: they stop together, rank 0 writes the
    checkpoint and summary.json, and the command exits 130 with one line (no torchrun report)."""
    import signal
    import time

    args = ["--mode", "supervised", "--dropout", "0", "--hidden", "16", "--labels", "200", "--batch-size", "32",
            "--epochs", "5000", "--threads", "1", "--quiet", "--checkpoint-seconds", "0", "--out", str(tmp_path / "r")]
    child = subprocess.Popen([sys.executable, "-m", "semivae", "train", "--nproc", "2", *args], stderr=subprocess.PIPE,
                             text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    deadline = time.time() + 120
    while not (tmp_path / "r" / "checkpoint.safetensors").is_file() and time.time() < deadline:
        time.sleep(0.2)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    assert "interrupted by signal 2" in err and "Traceback" not in err and "ChildFailedError" not in err, err
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and "--nproc 2" in summary["resume_command"]
