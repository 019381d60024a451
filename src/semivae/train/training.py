"""``train``: from a configuration to a finished run directory; ``resume``: finish a stopped one.

Order matters for "no half-written output": every check that can fail on the user's input
(config, device, data files, labels, budget, the model's own requirements, the output folder)
runs before the run directory is created. Then the run's files are written as training goes
(rank 0 only, under torchrun), the initial weights first, so even a run that diverges in its
first epoch keeps weights to look at. SIGINT and SIGTERM finish the step in progress, write a
checkpoint and ``summary.json`` (status "interrupted", with the command that resumes) and
raise :class:`Interrupted`; the CLI then exits 130 / 143.
"""

from __future__ import annotations

import functools
import json
import shlex
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch

from ..atomic import write_atomic
from ..config import RunConfig, nest, resolve
from ..data.arrays import nan_padded_lengths, training_npz
from ..data import DataBundle, data_kind
from ..data.anomaly import load_for_config
from ..data.budget import read_label_ids
from ..data.splits import Split, TrainingData, apply_split, make_split
from ..errors import UserError
from ..eval.calibration import calibrate
from ..eval.latents import fit_latents
from ..eval.unknown import fit_unknown
from ..models import BaseModel, build_model
from ..nn import ARCHS
from ..runs import (RunWriter, check_out_dir, check_writable, data_info, default_run_dir, load_run,
                    model_spec, save_weights)
from ..runs.run import ARRAYS, LATENTS, check_same_rows, read_data_info
from . import tensorboard
from .checkpoint import load_checkpoint
from .teacher import check_student, with_teacher
from .distributed import close_world, init_world
from .notes import notes
from .unused import check_unused
from .loop import FitContext, Interrupted, StopFlag, fit
from .trainer import TrainingDiverged, monitor_of


def check_compatible(bundle: DataBundle, cfg: RunConfig, likelihood: str) -> None:
    """What the data must be for the chosen architecture, likelihood and options."""
    families = {"--arch": cfg.arch.arch, "--decoder-arch": cfg.arch.decoder_arch}
    for flag, family in ((f, a) for f, a in families.items() if a):  # the decoder's only where it has its own
        if bundle.kind not in ARCHS[family].kinds:
            raise UserError(f"{flag} {family} needs {' or '.join(ARCHS[family].kinds)} data but "
                            f"{cfg.data.dataset} is {bundle.kind}; use {flag} dense")
    if likelihood == "bernoulli" and bundle.likelihood != "bernoulli":
        raise UserError("the bernoulli likelihood needs data in [0, 1]; use --likelihood gaussian for features")
    unknown = sorted(set(cfg.model.head_alpha) - {h.name for h in bundle.heads})
    if unknown:
        raise UserError(f"--head-alpha names {unknown}, which are not label columns of the data "
                        f"{[h.name for h in bundle.heads]}; name those")


def check_labels(model: BaseModel, split: Split, cfg: RunConfig) -> None:
    if not model.has_decoder and len(split.pool) == 0:
        without = " or use --mode unsupervised" if getattr(cfg.model, "mode", None) == "supervised" else ""
        raise UserError(f"{cfg.model.run_name()} trains on labels alone but the budget leaves none; raise the budget "
                        f"(--labels, --labels-per-class or --label-fraction){without}")


@contextmanager
def on_signals(handler):
    """``handler(signum, frame)`` for SIGINT and SIGTERM while inside; the previous handlers after."""
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def stop_on_signals(flag: StopFlag):
    """SIGINT / SIGTERM set ``flag`` (the loop stops after its step) instead of killing the process."""
    def handler(signum, frame):
        flag.signum = signum
    return on_signals(handler)


def absolute_paths(cfg: RunConfig) -> RunConfig:
    """Paths typed relative to where the user stood, made absolute, so the run's config.yaml
    works from any folder."""
    def absolute(p: str | None) -> str | None:
        return str(Path(p).expanduser().resolve()) if p and Path(p).expanduser().exists() else p
    data = replace(cfg.data, dataset=absolute(cfg.data.dataset), data_dir=absolute(cfg.data.data_dir),
                   label_ids=absolute(cfg.data.label_ids), test_data=absolute(cfg.data.test_data))
    return replace(cfg, data=data, train=replace(cfg.train, init_from=absolute(cfg.train.init_from)))


def prepare(cfg: RunConfig, fresh: bool = True):
    """Data, split and model of a configuration: every check on the user's input, no file written
    (``fresh``: a new run, whose options are checked against the data; a resumed one's were)."""
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    bundle = load_for_config(cfg.data)
    likelihood = cfg.model.likelihood or bundle.likelihood
    if cfg.train.init_from and fresh:  # a run of another data kind: its encoder cannot read this data
        source = read_data_info(cfg.train.init_from)  # (_train loads its weights)
        kind = data_kind(source["kind"])
        if kind != bundle.kind or source["shape"][-1] != bundle.train.shape[-1]:
            raise UserError(f"run {cfg.train.init_from} was trained on {kind} data of shape "
                            f"{list(source['shape'])}, this data is {bundle.kind} of shape "
                            f"{list(bundle.train.shape)}; start from a run trained on data of this form")
    check_compatible(bundle, cfg, likelihood)
    labels = bundle.train.labels.numpy()
    heads = [(h.name, h.classes) for h in bundle.heads]
    carved = bundle.test.ids if bundle.meta.get("test_carved") else None  # a named id may have moved there
    rows = read_label_ids(cfg.data.label_ids, bundle.train.ids, labels, heads, carved) if cfg.data.label_ids else None
    split_seed = cfg.train.seed if cfg.data.split_seed is None else cfg.data.split_seed
    split = make_split(labels, [len(h.classes) for h in bundle.heads], cfg.data, split_seed, rows,
                       [tuple(h.classes) for h in bundle.heads])
    info = data_info(bundle, cfg, split, likelihood)
    torch.manual_seed(cfg.train.seed)  # initial weights depend on the seed alone
    model = build_model(model_spec(info, cfg.model), cfg.arch, cfg.model)
    info["notes"] = notes(bundle, split, cfg, model)
    if not model.heads:  # a plain VAE trains on no label
        info.update(n_labelled=0, n_labelled_per_head=dict.fromkeys(info["n_labelled_per_head"], 0))
    if not model.has_decoder and info["validation_labels"].startswith("none ("):  # no ELBO to watch
        info["validation_labels"] = "none (a classifier without a decoder has no validation ELBO: fixed epochs)"
    check_labels(model, split, cfg)
    if fresh:
        check_unused(bundle.kind, cfg, model)
    if cfg.data.teacher:
        check_student(model, cfg)
        bundle = with_teacher(bundle, split, info, cfg.data.teacher)
    data = apply_split(bundle.train, split)
    if not cfg.data.unlabelled:
        if not len(data.labelled):
            raise UserError("--no-unlabelled trains on the labelled points alone, but the budget leaves none; "
                            "raise --labels")
        data = data.labelled_only()
    if cfg.train.calibrate and (not model.heads or not len(split.val_pool)):
        raise UserError("--calibrate fits on validation labels, but this run has none" +
                        (" (no class layer)" if not model.heads else "; add --val-labels K (e.g. 50) to keep K budget "
                         "labels for validation"))
    return bundle, split, data, info, model


def settled(cfg: RunConfig, model: BaseModel) -> RunConfig:
    """For config.yaml: what the model chose by the data's kind where not given: the consistency
    weight (0: off) and the likelihood (a model with a decoder)."""
    weight = model.consistency.weight if model.consistency is not None else 0.0
    likelihood = cfg.model.likelihood or (model.spec.likelihood if model.has_decoder else None)
    return replace(cfg, model=replace(cfg.model, consistency=weight, likelihood=likelihood))


def keeps_caller_state(fn):
    """A library call leaves the caller's torch thread count and random state as they were
    (training sets both: ``--threads`` and the seed)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        threads, rng = torch.get_num_threads(), torch.random.get_rng_state()
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)
            torch.random.set_rng_state(rng)
    return wrapper


@keeps_caller_state
def train(config: RunConfig | None = None, *, out: str | Path | None = None, progress: bool = True,
          x=None, y=None, x_test=None, y_test=None, lengths=None, lengths_test=None, carve_test: bool = True,
          notes: bool = True, **overrides) -> Path:
    """Train one model and return its run directory.

    ``config`` is a resolved :class:`RunConfig` (or None for the defaults); keyword
    overrides use the CLI's option names, e.g. ``semivae.train(dataset="mnist", labels="100")``.
    Instead of a ``dataset``, give arrays: ``x`` (NumPy, torch or a pandas data frame) and
    ``y`` (-1 = unlabelled), optionally ``x_test`` / ``y_test`` and, for padded series,
    ``lengths`` (a 3-D float ``x`` holding NaN is read as series ending where their NaN padding
    begins); they are saved as ``RUN/data.npz`` so the run reloads from its directory, wherever it
    is moved.
    Without ``x_test``, 20 % of the labelled points are carved off as the test split unless
    ``carve_test=False``. ``resume=RUN`` continues a stopped run (``epochs=`` may extend it), as
    ``semivae train --resume RUN``; ``quiet=True`` is ``progress=False``. ``notes=False`` keeps the
    run's notes (what the data or options did that may surprise) out of stderr; summary.json keeps them.
    """
    if "quiet" in overrides:  # the CLI's --quiet
        progress = not overrides.pop("quiet")
    if "resume" in overrides:  # the CLI's --resume RUN: a stopped run goes on
        path = overrides.pop("resume")
        rest = sorted(set(overrides) - {"epochs", "device", "threads"})
        rest += [name for name, v in (("config", config), ("x", x), ("out", out)) if v is not None]
        if rest:
            raise UserError(f"resume= continues the run as it was configured; drop {rest[0]}= "
                            "(epochs=, device= and threads= may change)")
        return resume(path, progress=progress, **overrides)
    if x is not None and "dataset" in overrides:
        raise UserError("give x= or dataset=, not both")
    lengths, lengths_test = nan_padded_lengths(x, lengths), nan_padded_lengths(x_test, lengths_test)  # NaN-padded
    if lengths is not None and config is None and "arch" not in overrides:
        overrides = {**overrides, "arch": "recurrent"}  # series: the recurrent default, as for a series file
    if overrides:
        base = config.to_dict() if config is not None else {}
        config = resolve(base, nest(overrides))
    cfg = absolute_paths(config or resolve())
    if x is None:
        given = [n for n, v in (("y", y), ("x_test", x_test), ("y_test", y_test), ("lengths", lengths)) if v is not None]
        if given:
            raise UserError(f"{given[0]}= needs x=; pass the inputs as x= too")
        check_out_dir(out)
        return _train(cfg, Path(out) if out else None, progress, notes)
    payload = training_npz(x, y, x_test, y_test, lengths=lengths, lengths_test=lengths_test, carve_test=carve_test)
    path = Path(out) if out else default_run_dir(replace(cfg, data=replace(cfg.data, dataset="arrays")))
    check_out_dir(path)
    check_writable(path)
    made = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    write_atomic(path / ARRAYS, payload)
    try:
        return _train(replace(cfg, data=replace(cfg.data, dataset=str((path / ARRAYS).resolve()))), path, progress,
                          notes)
    except BaseException:
        if not (path / "config.yaml").exists():  # training never started: leave nothing behind
            (path / ARRAYS).unlink(missing_ok=True)
            if made:
                path.rmdir()
        raise


def _train(cfg: RunConfig, out: Path | None, progress: bool, show_notes: bool = True) -> Path:
    world = init_world(cfg.train.device)
    try:
        if cfg.train.tensorboard:
            tensorboard.check_available()
        bundle, split, data, info, model = prepare(cfg)
        carried = type(model).transfer(model, load_run(cfg.train.init_from).model) if cfg.train.init_from else None
        path = out or default_run_dir(cfg)
        if world.main:
            check_writable(path)
        cfg = settled(cfg, model)
        summary = {"status": "completed", "n_parameters": sum(p.numel() for p in model.parameters()),
                   "n_labelled": info["n_labelled"],
                   "validation_labels": info["validation_labels"]}
        if carried is not None:
            summary["init_from"] = {"run": cfg.train.init_from, "carried": len(carried),
                                    "fresh": sorted(set(model.state_dict()) - set(carried))}
        if info["notes"] and world.main:
            summary["notes"] = info["notes"]
            for note in info["notes"] if show_notes else ():
                print(f"note: {note}", file=sys.stderr)
        writer = RunWriter(path, cfg, info, split) if world.main else None
        if writer is not None:
            save_weights(model, path / "model.safetensors")  # the last good weights until an epoch ends
        result = _run(cfg, model, data, path, writer, summary, progress, world)
        world.wait()
        return result
    finally:
        close_world(world)


@keeps_caller_state
def resume(run: str | Path, *, progress: bool = True, epochs: int | None = None, device: str | None = None,
           threads: int | None = None) -> Path:
    """Continue a stopped run from its checkpoint (``--epochs`` may extend a finished one)."""
    path = Path(run)
    loaded = load_run(path)
    ckpt = load_checkpoint(path)
    if ckpt is None:
        raise UserError(f"{path} has no checkpoint.safetensors to resume from; train it again")
    cfg = loaded.config
    train_cfg = replace(cfg.train, **{k: v for k, v in (("epochs", epochs), ("device", device), ("threads", threads))
                                      if v is not None})
    cfg = replace(cfg, train=train_cfg)
    world = init_world(cfg.train.device)
    try:
        bundle, _, data, info, model = prepare(cfg, fresh=False)
        check_same_rows(path, loaded.data_info, bundle)
        summary_file = path / "summary.json"
        summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
        summary.update(status="completed")
        for key in ("message", "resume_command"):
            summary.pop(key, None)
        stages = model.stages(cfg.train.epochs)
        _check_left(path, stages, ckpt.progress, epochs)
        names = [stage.name for stage in stages]  # rows after the checkpoint run again:
        writer = RunWriter.reopen(path, lambda row: ckpt.progress.behind(row, names)) if world.main else None
        if writer is not None and epochs is not None:  # config.yaml says how far the run was asked to go
            writer.config(replace(loaded.config, train=replace(loaded.config.train, epochs=epochs)))
        result = _run(cfg, model, data, path, writer, summary, progress, world, ckpt)
        world.wait()
        return result
    finally:
        close_world(world)


def _check_left(path: Path, stages: list, progress, epochs: int | None) -> None:
    """Refuse a resume with nothing left to train: the checkpoint is past the last stage's end."""
    last = len(stages) - 1
    if progress.stage < last or (progress.stage == last and progress.epoch <= stages[last].epochs):
        return
    done = f"{progress.epoch - 1} epochs" + (f" of its {stages[last].name} stage" if last else "")
    asked = "" if epochs is None else f", so --epochs {epochs} leaves nothing to train"
    raise UserError(f"run {path} has trained {done}{asked}; resume it with a larger --epochs to train it further")


def _run(cfg: RunConfig, model: BaseModel, data: TrainingData, path: Path, writer: RunWriter | None, summary: dict,
         progress: bool, world, ckpt=None) -> Path:
    board = tensorboard.TensorBoardLogger(path / "tensorboard", model) if cfg.train.tensorboard and writer else None
    t0 = time.perf_counter()
    seconds_before = summary.get("seconds", 0.0) if ckpt else 0.0
    flag = StopFlag()
    stages = model.stages(cfg.train.epochs)
    try:
        with stop_on_signals(flag):
            for index, stage in enumerate(stages):
                if ckpt is not None and index < ckpt.progress.stage:
                    continue  # finished before the stop
                if stage.frozen is not None:
                    stage.frozen.requires_grad_(False)

                def on_epoch(row: dict, weights, name: str = stage.name) -> None:
                    writer.epoch({"stage": name, **row}, weights)
                    if board is not None:
                        board.epoch(row)
                ctx = FitContext(world=world, run_dir=path if writer else None, root=model, stage=index,
                                 resume=ckpt, stop=flag)
                fit(stage.module, data, replace(cfg.train, epochs=stage.epochs), label_ratio=cfg.data.label_ratio,
                    progress=progress, on_epoch=on_epoch if writer else None, ctx=ctx)
                if writer is not None:  # the weights to keep (best, averaged or last); epochs wrote snapshots
                    save_weights(model, path / "model.safetensors")
    except TrainingDiverged as e:
        _finish(writer, summary, t0, seconds_before, status="diverged", message=f"{e}; the last good weights are kept")
        raise
    except Interrupted:
        _finish(writer, summary, t0, seconds_before, status="interrupted",
                message="stopped before the end; the checkpoint holds everything to go on",
                resume_command=f"semivae train --resume {shlex.quote(str(path))}"
                               + (f" --nproc {world.size}" if world.size > 1 else ""))
        raise
    finally:
        if board is not None:
            board.close()
    history = writer.rows() if writer else []
    summary.update(epochs=len(history), final=history[-1] if history else {})
    if cfg.train.patience:
        scored = [r for r in history if monitor_of(r)]
        if scored:
            best = min(scored, key=lambda r: monitor_of(r)[1])
            summary.update(best_epoch=best["epoch"], monitor=monitor_of(best)[0])
    if writer is not None:
        summary.update(postfit(path, cfg))
    _finish(writer, summary, t0, seconds_before)
    return path


def postfit(path: Path, cfg: RunConfig) -> dict:
    """After training: each class's Gaussian mixture in z (models with a ``latent_head``), the
    unknown-input threshold (when there are validation points) and, with ``--calibrate``, the
    temperatures; their headline figures for summary.json."""
    run = load_run(path)
    out: dict = {}
    if fit_latents(run) is not None:
        out["class_latents"] = LATENTS
    if len(run.split.val) and (run.model.has_decoder or run.model.heads):
        u = fit_unknown(run, target_fpr=cfg.train.unknown_fpr)
        out["unknown"] = {k: u[k] for k in ("score", "threshold", "target_fpr")}
    if cfg.train.calibrate:
        heads = calibrate(run)["heads"]
        out["calibration"] = {h: {"temperature": v["temperature"], "val_ece_before": v["before"]["ece"],
                                  "val_ece_after": v["after"]["ece"]} for h, v in heads.items()}
    return out


def _finish(writer: RunWriter | None, summary: dict, t0: float, before: float, **fields) -> None:
    if writer is not None:
        summary.update(fields, seconds=before + time.perf_counter() - t0)
        writer.summary(summary)


__all__ = ["Interrupted", "TrainingDiverged", "resume", "train"]
