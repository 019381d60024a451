"""The training loop: one loop for every model honouring ``models.base``.

A step calls ``model(batch)`` (``forward``), nothing else, and logs whatever named terms the
model returns: the progress bar, ``metrics.jsonl`` and TensorBoard show the names they find.
No global state: the model, the data, the config and a seeded generator go in, a history
comes out, and a callback sees each epoch (the run directory uses it to append metrics and
save weights). DistributedDataParallel can wrap the model (it averages gradients through
``forward``) and the sampler can be sharded without changing this loop's shape.
"""

from __future__ import annotations

import contextlib
import copy
import math
import sys
import time
from collections.abc import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from ..config import TrainConfig
from ..data.batch import Batch
from ..data.sampler import MixedBatchSampler, mixed_batch
from ..data.splits import TrainingData
from ..errors import TrainingDiverged
from ..eval.outputs import evaluate_split
from ..models import BaseModel, LossOutput
from ..objectives.schedules import KLSchedule

OPTIMIZERS: dict[str, Callable] = {
    "adam": lambda params, c: torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay),
    "rmsprop": lambda params, c: torch.optim.RMSprop(params, lr=c.lr, momentum=c.momentum,
                                                      weight_decay=c.weight_decay),
}


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
    model has heads) and every point (when it has a decoder, unless all are labelled)."""
    n = len(data.train)
    labelled = data.labelled if model.heads else torch.zeros(0, dtype=torch.long)
    all_labelled = len(labelled) == n
    unlabelled = torch.arange(n) if (model.has_decoder and not all_labelled) else torch.zeros(0, dtype=torch.long)
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

    def means(self) -> dict[str, float]:
        """One host sync: name -> mean over the steps that counted."""
        sums, steps = torch.stack(list(self.sums.values())).tolist(), torch.stack(list(self.steps.values())).tolist()
        return {name: s / max(n, 1.0) for name, s, n in zip(self.sums, sums, steps)}


def fit(model: BaseModel, data: TrainingData, cfg: TrainConfig, *, label_ratio: float = 1.0,
        on_epoch: Callable[[dict, bool], None] | None = None, progress: bool = True) -> list[dict]:
    """Train ``model`` in place; returns one metrics row per epoch.

    ``on_epoch(row, is_best)`` runs after each finished epoch. With ``cfg.patience > 0``
    training stops once the monitored validation figure has not improved for that many
    epochs, and the best weights are restored.
    """
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    model.to(device)
    train = data.train.to(device)  # the whole training split lives on the device
    sampler = make_sampler(model, data, cfg, label_ratio, generator)
    optimizer = OPTIMIZERS[cfg.optimizer](model.param_groups(cfg.lr), cfg)
    step_fn = make_step(model, optimizer, cfg.precision, cfg.compile)
    schedules = [m for m in model.modules() if isinstance(m, KLSchedule)]
    history: list[dict] = []
    best, best_state, since_best = math.inf, None, 0
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        sums = EpochMeans(device)
        bar = tqdm(sampler, total=len(sampler), desc=f"epoch {epoch}/{cfg.epochs}", disable=not progress,
                   leave=False, dynamic_ncols=True)
        for step, (unl, lab) in enumerate(bar):
            batch = mixed_batch(train, unl.to(device), lab.to(device))
            for s in schedules:  # training progress in epochs, for KL warm-up / capacity
                s.t.fill_(epoch - 1 + step / len(sampler))
            sums.add(step_fn(batch))
            if step % 25 == 0 or step == len(sampler) - 1:
                if not sums.finite():
                    raise TrainingDiverged(f"loss became non-finite at epoch {epoch}, step {step + 1}")
                if progress:
                    bar.set_postfix(_postfix(sums.means(), history))
        row = {"epoch": epoch, **sums.means()}
        val = evaluate_split(model, data.val, device=device)
        row.update({f"val_{k}": v for k, v in val.items() if k.split("/")[0] in VAL_METRICS})
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        mon = monitor_of(row)
        improved = mon is not None and mon[1] < best
        if improved:
            best, since_best = mon[1], 0
            if cfg.patience:
                best_state = copy.deepcopy(model.state_dict())
        else:
            since_best += 1
        if progress:
            tqdm.write(_epoch_line(row), file=sys.stderr)
        if on_epoch is not None:
            on_epoch(row, improved or not cfg.patience or mon is None)
        if cfg.patience and mon is not None and since_best >= cfg.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


VAL_METRICS = ("elbo", "recon", "kl", "accuracy", "log_loss")


def _postfix(means: dict[str, float], history: list[dict]) -> dict:
    out = {k: f"{v:.4g}" for k, v in means.items()}
    if history:
        out.update({k.replace("accuracy", "acc"): f"{v:.3f}" for k, v in history[-1].items()
                    if k.startswith("val_accuracy")})
    return out


def _epoch_line(row: dict) -> str:
    skip = ("epoch", "stage", "val_recon", "val_kl")
    return f"epoch {row['epoch']}: " + "  ".join(f"{k}={v:.4g}" for k, v in row.items()
                                                 if k not in skip and isinstance(v, (int, float)))
