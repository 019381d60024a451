"""The pieces of the training loop (``loop.py``): optimisers, the step, the epoch's means.

A step calls ``model(batch)`` (``forward``), nothing else, and logs whatever named terms the
model returns: the progress bar, ``metrics.jsonl`` and TensorBoard show the names they find.
DistributedDataParallel can wrap the model unchanged: it averages gradients through
``forward``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from ..config import TrainConfig
from ..data.batch import Batch
from ..data.sampler import MixedBatchSampler
from ..data.splits import TrainingData
from ..errors import TrainingDiverged  # noqa: F401  (raised by the loop; imported from here by callers)
from ..models import BaseModel, LossOutput

FUSED_DEVICES = ("cpu", "cuda")  # where PyTorch's fused Adam kernel runs


def _adam(params, c) -> torch.optim.Adam:
    """Adam, fused into one kernel where every parameter lives on a device that has it: 10x faster
    per step than PyTorch's per-tensor default on the CPU, where the dense default spent a tenth
    of its training time in Adam (docs/benchmarks.md section 3). Only for contiguous parameters:
    the fused kernel walks a parameter and its moment estimates as flat memory, so a parameter in
    another layout (channels-last, say) than its state read back from a checkpoint would be
    updated wrongly, silently (seen with PyTorch 2.13)."""
    params = list(params)  # tensors, or parameter groups (dicts)
    tensors = [p for g in params for p in (g["params"] if isinstance(g, dict) else [g])]
    fused = all(t.device.type in FUSED_DEVICES and t.is_contiguous() for t in tensors) or None  # None: PyTorch's
    return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay, fused=fused)


OPTIMIZERS: dict[str, Callable] = {
    "adam": _adam,
    "rmsprop": lambda params, c: torch.optim.RMSprop(params, lr=c.lr, momentum=c.momentum,  # no fused kernel
                                                      alpha=c.rho, weight_decay=c.weight_decay),
}


def set_lr(optimizer: torch.optim.Optimizer, base_lrs: list[float], factor: float) -> None:
    """Every parameter group at its own base learning rate times ``factor``."""
    for group, base in zip(optimizer.param_groups, base_lrs):
        group["lr"] = base * factor


def make_average(model: nn.Module, decay: float) -> AveragedModel | None:
    """Polyak averaging, as mean teacher and FixMatch evaluate with: after step t,
    w_avg <- d_t w_avg + (1 - d_t) w over the weights and the buffers (batch-norm statistics), with
    d_t = min(decay, (1 + t) / (10 + t)) so that the first steps' weights fade quickly on short runs
    (TensorFlow's ExponentialMovingAverage with num_updates); None when ``decay`` is 0."""
    if not decay:
        return None

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n: torch.Tensor) -> None:
        if not averaged[0].is_floating_point():  # counters (batch norm's batches seen): the latest
            torch._foreach_copy_(averaged, current)
            return
        d = torch.clamp((1 + n) / (10 + n), max=decay).to(averaged[0].dtype)  # on the device: no sync
        step = torch._foreach_sub(current, averaged)  # w_avg += (1 - d)(w - w_avg): exact for a frozen w
        torch._foreach_mul_(step, 1 - d)
        torch._foreach_add_(averaged, step)
    return AveragedModel(model, multi_avg_fn=update, use_buffers=True)


@contextlib.contextmanager
def averaged_weights(model: nn.Module, average: AveragedModel | None):
    """Inside, ``model`` holds the averaged weights (to validate and save them); the trained ones
    again after. Copies in place, so a wrapping model (DDP, a staged model's root) sees them too."""
    if average is None:
        yield
        return
    trained = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(average.module.state_dict())
    try:
        yield
    finally:
        model.load_state_dict(trained)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def monitor_of(row: dict) -> tuple[str, float] | None:
    """What early stopping watches: validation log loss where validation labels exist (the
    mean over heads), else the validation negative ELBO; None when neither exists."""
    losses = [v for k, v in row.items() if k == "val_log_loss" or k.startswith("val_log_loss/")]
    if losses:
        return "val_log_loss", sum(losses) / len(losses)
    if "val_elbo" in row:
        return "val_neg_elbo", -row["val_elbo"]
    return None


def make_sampler(model: BaseModel, data: TrainingData, cfg: TrainConfig, label_ratio: float,
                 generator: torch.Generator) -> MixedBatchSampler:
    """The 1:1 sampler over the model's pools: the points labelled for any head (when the
    model has heads) and every point (when it has a decoder or a teacher, unless all are labelled)."""
    n = len(data.train)
    labelled = data.labelled if model.heads else torch.zeros(0, dtype=torch.long)
    all_labelled = len(labelled.unique()) == n  # (the labelled stream may repeat points: feedback's marks)
    reads = model.has_decoder or data.train.soft is not None  # a teacher's targets teach every point
    unlabelled = torch.arange(n) if (reads and not all_labelled) else torch.zeros(0, dtype=torch.long)
    return MixedBatchSampler(unlabelled, labelled, cfg.batch_size, label_ratio, generator)


def make_step(model: nn.Module, optimizer: torch.optim.Optimizer, precision: str = "fp32",
              compile: bool = False) -> Callable[[Batch], LossOutput]:
    """``step(batch) -> LossOutput``: one optimisation step through ``model(batch)``.

    ``model`` may be any module whose ``forward`` honours the contract, a
    DistributedDataParallel wrapper included. With ``compile`` the forward and the optimiser
    update go through ``torch.compile``; backward is compiled with the forward graph.
    """
    forward = torch.compile(model) if compile else model
    update = torch.compile(optimizer.step) if compile else optimizer.step

    def step(batch: Batch) -> LossOutput:
        with autocast(batch.x.device, precision):
            out = forward(batch)
        optimizer.zero_grad(set_to_none=True)
        out.total.backward()
        update()
        return out

    return step


class EpochMeans:
    """Running sums of the loss and of every named term over an epoch. A term's mean is over
    the steps in which it covered at least one point (``LossOutput.counts``)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.sums: dict[str, torch.Tensor] = {}
        self.steps: dict[str, torch.Tensor] = {}

    def add(self, out: LossOutput) -> None:
        for name, value in (("loss", out.total.detach()), *out.terms.items()):
            if name not in self.sums:
                self.sums[name] = torch.zeros((), device=self.device)
                self.steps[name] = torch.zeros((), device=self.device)
            self.sums[name] += value.float()
            count = out.counts.get(name)
            self.steps[name] += 1 if count is None else (count > 0)

    def finite(self) -> bool:
        return bool(torch.isfinite(torch.stack(list(self.sums.values()))).all())

    def means(self, world=None) -> dict[str, float]:
        """One host sync: name -> mean over the steps that counted (summed over ``world``'s ranks)."""
        if not self.sums:
            return {}
        both = torch.stack([torch.stack(list(self.sums.values())), torch.stack(list(self.steps.values()))])
        if world is not None:
            world.sum(both)
        sums, steps = both.tolist()
        return {name: s / max(n, 1.0) for name, s, n in zip(self.sums, sums, steps)}

    def flat(self) -> dict[str, torch.Tensor]:
        """The running sums as named tensors, for a checkpoint."""
        return {f"{k}/{part}": v for k, s, t in ((k, self.sums[k], self.steps[k]) for k in self.sums)
                for part, v in (("sum", s), ("steps", t))}

    def load(self, flat: dict[str, torch.Tensor]) -> None:
        for key, v in flat.items():
            name, part = key.rsplit("/", 1)
            (self.sums if part == "sum" else self.steps)[name] = v.reshape(()).to(self.device)


VAL_METRICS = ("elbo", "recon", "kl", "accuracy", "log_loss")


def postfix(means: dict[str, float], history: list[dict]) -> dict:
    out = {k: f"{v:.4g}" for k, v in means.items()}
    if history:
        out.update({k.replace("accuracy", "acc"): f"{v:.3f}" for k, v in history[-1].items()
                    if k.startswith("val_accuracy")})
    return out


def epoch_line(row: dict) -> str:
    skip = ("epoch", "stage", "val_recon", "val_kl")
    return f"epoch {row['epoch']}: " + "  ".join(f"{k}={v:.4g}" for k, v in row.items()
                                                 if k not in skip and isinstance(v, (int, float)))
