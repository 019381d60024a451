"""The training loop: one loop for every model honouring ``models.base``.

No global state: the model, the data, the config and a seeded generator go in, a
history comes out, and a callback sees each epoch (the run directory uses it to append
metrics and save weights). Data-parallel training can wrap the model and shard the
sampler without changing this loop's shape.
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
from ..data.sampler import MixedBatchSampler
from ..data.splits import TrainingData
from ..errors import TrainingDiverged
from ..eval.evaluate_split import evaluate_split
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
    """What early stopping watches: validation log loss where validation labels exist,
    else the validation negative ELBO; None when neither exists."""
    if "val_log_loss" in row:
        return "val_log_loss", row["val_log_loss"]
    if "val_elbo" in row:
        return "val_neg_elbo", -row["val_elbo"]
    return None


def make_sampler(model: nn.Module, data: TrainingData, cfg: TrainConfig, label_ratio: float,
                 generator: torch.Generator) -> MixedBatchSampler:
    n = len(data.train)
    labelled = data.labelled if model.has_classifier else torch.zeros(0, dtype=torch.long)
    all_labelled = len(labelled) == n
    unlabelled = torch.arange(n) if (model.has_decoder and not all_labelled) else torch.zeros(0, dtype=torch.long)
    return MixedBatchSampler(unlabelled, labelled, cfg.batch_size, label_ratio, generator)


def make_step(model: nn.Module, optimizer: torch.optim.Optimizer, precision: str = "fp32",
              compile: bool = False) -> Callable:
    """``step(x, y, labelled, t) -> LossTerms``: one optimisation step on a batch.

    With ``compile`` the loss (forward) and the optimiser update go through
    ``torch.compile``; backward is compiled with the forward graph.
    """
    loss_fn = torch.compile(model.loss) if compile else model.loss
    update = torch.compile(optimizer.step) if compile else optimizer.step

    def step(x: torch.Tensor, y: torch.Tensor, labelled: torch.Tensor, t: torch.Tensor | None = None):
        with autocast(x.device, precision):
            terms = loss_fn(x, y, labelled, t)
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        update()
        return terms

    return step


def fit(model: nn.Module, data: TrainingData, cfg: TrainConfig, *, label_ratio: float = 1.0,
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
    optimizer = OPTIMIZERS[cfg.optimizer](model.parameters(), cfg)
    step_fn = make_step(model, optimizer, cfg.precision, cfg.compile)
    schedules = [m for m in model.modules() if isinstance(m, KLSchedule)]
    history: list[dict] = []
    best, best_state, since_best = math.inf, None, 0
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        sums = torch.zeros(4, device=device)  # loss, recon, kl, ce
        n_ce = torch.zeros((), device=device)
        bar = tqdm(sampler, total=len(sampler), desc=f"epoch {epoch}/{cfg.epochs}", disable=not progress,
                   leave=False, dynamic_ncols=True)
        for step, (unl, lab) in enumerate(bar):
            idx = torch.cat([unl, lab]).to(device)
            x = train.batch(idx)  # (B, *shape)
            y = train.y[idx]
            t = None if train.t is None else train.t[idx]  # (B, T), NaN = unobserved
            labelled = torch.zeros(len(idx), dtype=torch.bool, device=device)
            labelled[len(unl):] = True
            for s in schedules:  # training progress in epochs, for KL warm-up / capacity
                s.t.fill_(epoch - 1 + step / len(sampler))
            terms = step_fn(x, y, labelled, t)
            sums += torch.stack([terms.total.detach(), terms.recon, terms.kl, terms.ce]).float()
            n_ce += terms.n_labelled > 0
            if step % 25 == 0 or step == len(sampler) - 1:
                if not torch.isfinite(sums).all():
                    raise TrainingDiverged(f"loss became non-finite at epoch {epoch}, step {step + 1}")
                bar.set_postfix(_postfix(sums / (step + 1), history))
        steps = len(sampler)
        s = sums.tolist()
        row = {"epoch": epoch, "loss": s[0] / steps, "recon": s[1] / steps, "kl": s[2] / steps,
               "ce": s[3] / max(float(n_ce), 1.0)}
        val = evaluate_split(model, data.val, device=device)
        row.update({f"val_{k}": v for k, v in val.items() if k in ("elbo", "recon", "kl", "accuracy", "log_loss")})
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


def _postfix(means: torch.Tensor, history: list[dict]) -> dict:
    m = means.tolist()
    out = {"loss": f"{m[0]:.2f}", "recon": f"{m[1]:.1f}", "kl": f"{m[2]:.2f}", "ce": f"{m[3]:.3f}"}
    if history and "val_accuracy" in history[-1]:
        out["val_acc"] = f"{history[-1]['val_accuracy']:.3f}"
    return out


def _epoch_line(row: dict) -> str:
    keys = ("loss", "recon", "kl", "ce", "val_elbo", "val_accuracy", "val_log_loss", "seconds")
    return f"epoch {row['epoch']}: " + "  ".join(f"{k}={row[k]:.4g}" for k in keys if k in row)
