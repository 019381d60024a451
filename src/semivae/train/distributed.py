"""Data-parallel training through PyTorch's own ``torch.distributed``, launched by ``torchrun``.

``torchrun --nproc-per-node N -m semivae train ...`` (or ``semivae train --nproc N``, which
runs that) starts N processes; torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT) tells each who it is. Every rank draws the same global batch from
the 1:1 sampler (one seed) and trains on its own equal share of both halves; the model is
wrapped in DistributedDataParallel, which averages gradients through ``forward``, so the
update equals a single process's on the global batch. Model noise and dropout use a per-rank
seed (seed + rank). Epoch means are summed across ranks, validation and the early-stopping
decision happen once, on rank 0, and only rank 0 writes the run directory. gloo on CPU, NCCL
on GPU (one per local rank). Several machines: torchrun's rendezvous options
(``--nnodes``, ``--node-rank``, ``--rdzv-endpoint``) as usual.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from ..errors import UserError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device(self, name: str) -> torch.device:
        """The device this rank trains on: its own GPU under torchrun with CUDA."""
        if name == "auto":
            name = "cuda" if torch.cuda.is_available() else "cpu"
        device = torch.device(name)
        if device.type == "cuda" and self.size > 1 and device.index is None:
            device = torch.device("cuda", self.local_rank)
        return device

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's equal share of a batch's indices."""
        if self.size == 1:
            return idx
        return idx.view(self.size, -1)[self.rank]

    def check_batch(self, n_unlabelled: int, n_labelled: int) -> None:
        if n_unlabelled % self.size or n_labelled % self.size:
            raise UserError(f"each batch holds {n_unlabelled} unlabelled and {n_labelled} labelled points, which do not "
                            f"split evenly over {self.size} processes; choose a --batch-size (and --label-ratio) whose "
                            f"halves are multiples of {self.size}")

    def wait(self) -> None:
        """Hold every rank here until all arrive: rank 0 writes the run's last files after training,
        and a rank that tears the process group down meanwhile can abort in gloo's threads."""
        if self.size > 1:
            dist.barrier()

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.size > 1:
            dist.all_reduce(t)
        return t

    def decide(self, value: list[float], device: torch.device) -> list[float]:
        """Rank 0's values, on every rank (decisions are taken once)."""
        if self.size == 1:
            return value
        t = torch.tensor(value, dtype=torch.float64, device=device)
        dist.broadcast(t, 0)
        return t.tolist()

    def signal(self, signum: int | None, device: torch.device) -> int | None:
        """A stop signal any rank received, on every rank (called every step, so all stop at the
        same one: a rank that left alone would leave the others waiting in a collective)."""
        if self.size == 1:
            return signum
        t = torch.tensor([signum or 0], dtype=torch.int64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item()) or None

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        if self.size == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


LAUNCHER_PIDS = "SEMIVAE_WORKER_PIDS"  # a folder where each worker of `--nproc` leaves its pid


def init_world(device_name: str = "auto") -> World:
    """The world torchrun describes (a single process outside torchrun)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    pids = os.environ.get(LAUNCHER_PIDS)
    if pids and Path(pids).is_dir():  # `--nproc` signals the workers itself (cli/launch.py)
        (Path(pids) / str(os.getpid())).touch()
    if not dist.is_initialized():
        backend = "nccl" if world.device(device_name).type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(world.local_rank)
        dist.init_process_group(backend)
    return world


def close_world(world: World) -> None:
    """Tear the process group down. DDP's reducer sits in reference cycles that only a collection
    frees: collected at interpreter exit instead, its gloo work can abort the process (SIGABRT,
    "terminate called without an active exception"), so it is collected here, while all is whole."""
    if world.size > 1 and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()
        gc.collect()
