"""Full-state checkpoints: everything a stopped run needs to go on as if it had never stopped.

One file, ``RUN/checkpoint.safetensors``, written whole (``semivae.atomic``): the model's
weights, the optimiser's state, every random generator (torch's, the sampler's, CUDA's), the
sampler's position (its generator at the start of the epoch, its labelled stream, the step
reached), the epoch's running sums, the early-stopping state (best figure, epochs since, the
best weights), the averaged weights (``--ema``) and the stage of a staged model. Tensors are
safetensors; the rest is JSON in the file's metadata. Nothing is pickled. Resuming on CPU gives
bitwise the weights an uninterrupted run gives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save as safetensors_bytes

from ..atomic import read_tensors, write_atomic
from ..errors import UserError

FILE = "checkpoint.safetensors"


@dataclass
class Progress:
    """Where training stands: what the loop needs besides tensors."""

    stage: int = 0  # index into the model's stages
    epoch: int = 1  # the epoch in progress (1-based)
    step: int = 0  # steps of that epoch already taken
    best: float = float("inf")
    since_best: int = 0
    has_best_state: bool = False
    sums: list[str] = field(default_factory=list)  # names of the running sums, in order

    def behind(self, row: dict, stages: list[str]) -> bool:
        """Whether a ``metrics.jsonl`` row is of an epoch finished before this point (rows written
        after the last checkpoint, which resuming runs again, are not)."""
        if row.get("stage") not in stages:
            return True
        index = stages.index(row["stage"])
        return index < self.stage or (index == self.stage and row["epoch"] < self.epoch)

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> "Progress":
        return cls(**json.loads(text))


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """The optimiser's state as named tensors, and its JSON-able rest."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for k, v in state.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim/{pid}/{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}/{k}"] = v
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"scalars": scalars, "param_groups": groups}


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], rest: dict) -> None:
    state: dict = {}
    for name, t in tensors.items():
        _, pid, k = name.split("/", 2)
        state.setdefault(int(pid), {})[k] = t
    for key, v in rest["scalars"].items():
        pid, k = key.split("/", 1)
        state.setdefault(int(pid), {})[k] = v
    optimizer.load_state_dict({"state": state, "param_groups": rest["param_groups"]})


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, progress: Progress,
                    generators: dict[str, torch.Tensor], sampler_state: dict[str, torch.Tensor],
                    sums: dict[str, torch.Tensor], best_state: dict[str, torch.Tensor] | None,
                    average: dict[str, torch.Tensor] | None = None) -> None:
    tensors = {f"model/{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt_tensors, opt_rest = _optimizer_tensors(optimizer)
    tensors.update(opt_tensors)
    tensors.update({f"rng/{k}": v.cpu() for k, v in generators.items()})
    tensors.update({f"sampler/{k}": v.cpu().contiguous() for k, v in sampler_state.items()})
    tensors.update({f"sums/{k}": v.detach().cpu().reshape(1) for k, v in sums.items()})
    if best_state is not None:
        tensors.update({f"best/{k}": v.detach().cpu().contiguous() for k, v in best_state.items()})
    if average is not None:
        tensors.update({f"ema/{k}": v.detach().cpu().contiguous() for k, v in average.items()})
    meta = {"progress": progress.to_json(), "optimizer": json.dumps(opt_rest)}
    write_atomic(path / FILE, safetensors_bytes(tensors, metadata=meta))


@dataclass
class Checkpoint:
    progress: Progress
    tensors: dict[str, torch.Tensor]
    optimizer: dict

    def part(self, prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) + 1:]: v for k, v in self.tensors.items() if k.startswith(prefix + "/")}

    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        model.load_state_dict(self.part("model"))
        _load_optimizer(optimizer, {f"optim/{k}": v for k, v in self.part("optim").items()}, self.optimizer)


def load_checkpoint(path: Path) -> Checkpoint | None:
    f = path / FILE
    if not f.is_file():
        return None
    try:
        tensors, meta = read_tensors(f)
        return Checkpoint(Progress.from_json(meta["progress"]), tensors, json.loads(meta["optimizer"]))
    except Exception as err:  # a damaged file: say so in one line
        raise UserError(f"{f} cannot be read ({type(err).__name__}); it is damaged: delete it to resume from the "
                        "last finished epoch's weights, or train again") from None
