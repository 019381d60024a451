"""``fit``: the one training loop, for every model, stage, process and data source.

Per epoch: the 1:1 sampler's batches (this rank's share of each), one ``step`` each
(``model(batch)``, backward, update), the epoch's means of every named term, validation and
the early-stopping decision (on rank 0, once), the ``on_epoch`` callback, and a checkpoint
after the first epoch, then at most every ``checkpoint_seconds`` (one costs tens of
milliseconds: on small data, written after every epoch, they took half the time), and after
the last. With ``--ema`` an exponential moving average of the weights follows every step;
validation, early stopping and the saved weights see the average, and training ends holding it.
A checkpoint (``checkpoint.py``) is also written every ``checkpoint_every`` steps and when a
stop is requested (SIGINT / SIGTERM: the step in progress finishes first), so ``resume``
continues exactly where training stopped, mid-epoch included.
"""

from __future__ import annotations

import copy
import itertools
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..config import TrainConfig
from ..data.packed import PackedData, disk_batches
from ..data.sampler import mixed_batch
from ..data.splits import TrainingData
from ..errors import Interrupted, TrainingDiverged
from ..eval.outputs import evaluate_split
from ..models import BaseModel
from ..objectives.schedules import LR_SCHEDULES, KLSchedule
from ..runs import save_weights
from .checkpoint import Checkpoint, Progress, save_checkpoint
from .distributed import World
from .trainer import (OPTIMIZERS, VAL_METRICS, EpochMeans, averaged_weights, epoch_line, make_average, make_sampler,
                      make_step, monitor_of, postfix, set_lr)


@dataclass
class StopFlag:
    """Set by a signal handler; the loop stops after the step in progress."""

    signum: int | None = None


@dataclass
class FitContext:
    """What the loop needs beyond the model, the data and the options."""

    world: World = field(default_factory=World)
    run_dir: Path | None = None  # where checkpoints go (rank 0 writes)
    root: torch.nn.Module | None = None  # the whole model, when a stage trains a part of it
    stage: int = 0
    resume: Checkpoint | None = None  # continue from here (when its stage is this one)
    stop: StopFlag = field(default_factory=StopFlag)


def fit(model: BaseModel, data: TrainingData, cfg: TrainConfig, *, label_ratio: float = 1.0,
        on_epoch: Callable[[dict, bool], None] | None = None, progress: bool = True,
        ctx: FitContext | None = None) -> list[dict]:
    """Train ``model`` in place; returns one metrics row per epoch (the epochs run here).

    ``on_epoch(row, weights)`` runs on rank 0 after each finished epoch; ``weights``, where not
    None, is the state dict to write as the run's snapshot: given when a checkpoint is due and
    the weights to keep have changed since the last one (the weights as they stand, or with
    patience the best so far), never at the end: the weights to keep are the model's when
    ``fit`` returns. With ``cfg.patience > 0`` training stops once the monitored validation
    figure has not improved for that many epochs, and the best weights are restored.
    """
    ctx = ctx or FitContext()
    world, root = ctx.world, ctx.root or model
    device = world.device(cfg.device)
    torch.manual_seed(cfg.seed + world.rank)  # model noise and dropout: a per-rank stream
    generator = torch.Generator().manual_seed(cfg.seed)  # the sampler: one global batch for every rank
    model.to(device)
    if device.type == "cpu":  # oneDNN's convolutions train 20 % faster on channels-last weights (benchmarks.md s. 3)
        model.to(memory_format=torch.channels_last)  # 4-D weights only; Adam then takes its per-tensor path
    on_disk = isinstance(data.train, PackedData)
    train = data.train.to(device)  # in memory: the whole training split lives on the device
    sampler = make_sampler(model, data, cfg, label_ratio, generator)
    world.check_batch(sampler.n_unl, sampler.n_lab)
    optimizer = OPTIMIZERS[cfg.optimizer](model.param_groups(cfg.lr), cfg)
    base_lrs = [g["lr"] for g in optimizer.param_groups]  # before a resume overwrites them
    lr_factor = LR_SCHEDULES[cfg.lr_schedule]
    step_fn = make_step(world.wrap(model, device), optimizer, cfg.precision, cfg.compile)
    schedules = [m for m in model.modules() if isinstance(m, KLSchedule)]
    average = make_average(model, cfg.ema)  # --ema: the weights validation sees and the run keeps
    state = Progress(stage=ctx.stage)
    best_state, sums_state, epoch_start = None, None, None
    if ctx.resume is not None and ctx.resume.progress.stage == ctx.stage:
        state = ctx.resume.progress
        ctx.resume.restore(root, optimizer)
        torch.set_rng_state(ctx.resume.part("rng")["torch"])
        if device.type == "cuda" and "cuda" in ctx.resume.part("rng"):
            torch.cuda.set_rng_state(ctx.resume.part("rng")["cuda"], device)
        epoch_start = ctx.resume.part("sampler")
        sums_state = ctx.resume.part("sums")
        best_state = ctx.resume.part("best") or None
        if average is not None:
            average.load_state_dict(ctx.resume.part("ema"))
    history: list[dict] = []
    first, written = state.epoch, time.perf_counter()
    snapped = None  # with patience: the best weights the last snapshot wrote

    def checkpoint(epoch: int, step: int, sums: EpochMeans, start: dict) -> None:
        nonlocal written
        written = time.perf_counter()
        if not world.main or ctx.run_dir is None:
            return
        rng = {"torch": torch.get_rng_state()}
        if device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(device)
        prog = Progress(ctx.stage, epoch, step, state.best, state.since_best, best_state is not None, list(sums.sums))
        save_checkpoint(ctx.run_dir, root, optimizer, prog, rng, start, sums.flat(), best_state,
                        average.state_dict() if average is not None else None)

    for epoch in range(state.epoch, cfg.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        if epoch_start is not None:  # resuming: this epoch's batches as they were drawn
            sampler.set_state(epoch_start)
        start, epoch_start = sampler.state(), None
        skip = state.step if epoch == state.epoch else 0
        sums = EpochMeans(device)
        if sums_state and skip:
            sums.load(sums_state)
        draws = itertools.islice(iter(sampler), skip, None)
        draws = ((world.shard(unl), world.shard(lab)) for unl, lab in draws)
        batches = (disk_batches(train, list(draws), cfg.workers) if on_disk else
                   (mixed_batch(train, unl.to(device), lab.to(device)) for unl, lab in draws))
        bar = tqdm(total=len(sampler) - skip, desc=f"epoch {epoch}/{cfg.epochs}", leave=False,
                   disable=not (progress and world.main), dynamic_ncols=True,
                   mininterval=0.1 if sys.stderr.isatty() else 30.0)  # a log file: a line every 30 s, not each 0.1 s
        for step, batch in enumerate(batches, start=skip):  # bar.update per step: its count is right whenever shown
            bar.update()
            batch = batch.to(device)
            progress_epochs = epoch - 1 + step / len(sampler)
            for s in schedules:  # training progress in epochs, for KL warm-up / capacity
                s.t.fill_(progress_epochs)
            if cfg.lr_schedule != "constant":
                set_lr(optimizer, base_lrs, lr_factor(progress_epochs / cfg.epochs))
            sums.add(step_fn(batch))
            if average is not None:
                average.update_parameters(model)
            if step % 25 == 0 or step == len(sampler) - 1:
                if not sums.finite():
                    raise TrainingDiverged(f"loss became non-finite at epoch {epoch}, step {step + 1}")
                if progress and world.main:
                    bar.set_postfix(postfix(sums.means(), history))
            signum = world.signal(ctx.stop.signum, device)  # the ranks stop together
            if signum is not None:
                ctx.stop.signum = signum
                bar.close()
                checkpoint(epoch, step + 1, sums, start)
                if world.main and ctx.run_dir is not None:  # the weights at the stop, for what reads the run now
                    save_weights(kept_weights(root, model, average, best_state), ctx.run_dir / "model.safetensors")
                raise Interrupted(ctx.stop.signum)
            if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < len(sampler):
                checkpoint(epoch, step + 1, sums, start)
        bar.close()
        row = {"epoch": epoch, **sums.means(world)}
        improved, stop = False, False
        with averaged_weights(model, average):  # validate, keep and save the averaged weights
            if world.main:
                val = evaluate_split(model, data.val, device=device)
                row.update({f"val_{k}": v for k, v in val.items() if k.split("/")[0] in VAL_METRICS})
                row["seconds"] = time.perf_counter() - t0
                mon = monitor_of(row)
                improved = mon is not None and mon[1] < state.best
                stop = bool(cfg.patience and mon is not None and not improved and state.since_best + 1 >= cfg.patience)
            improved, stop = (bool(v) for v in world.decide([improved, stop], device))
            if improved:
                state.best, state.since_best = (monitor_of(row) or (None, state.best))[1], 0
                if cfg.patience:
                    best_state = copy.deepcopy(root.state_dict())
            else:
                state.since_best += 1
            history.append(row)
            ending = stop or epoch == cfg.epochs
            due = ending or epoch == first or time.perf_counter() - written >= cfg.checkpoint_seconds
            if world.main:
                if progress:
                    tqdm.write(epoch_line(row), file=sys.stderr)
                snapshot = None  # the weights to keep, when they changed since the last snapshot
                if due and not ending and (best_state is None or best_state is not snapped):
                    snapshot = snapped = best_state if best_state is not None else root.state_dict()
                if on_epoch is not None:
                    on_epoch(row, snapshot)
        state.epoch, state.step = epoch + 1, 0
        if due:
            checkpoint(epoch + 1, 0, EpochMeans(device), sampler.state())
        if stop:
            break
    if best_state is not None:
        root.load_state_dict(best_state)
    elif average is not None:
        model.load_state_dict(average.module.state_dict())
    return history


def kept_weights(root: torch.nn.Module, model: torch.nn.Module, average, best_state: dict | None) -> dict:
    """The weights a run keeps (``model.safetensors``): the best with patience, else the averaged
    ones with ``--ema``, else the trained ones; a copy of ``root``'s state dict."""
    if best_state is not None:
        return best_state
    with averaged_weights(model, average):
        return {k: v.detach().clone() for k, v in root.state_dict().items()}


__all__ = ["FitContext", "Interrupted", "StopFlag", "fit", "math"]
