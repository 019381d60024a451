"""``train``: from a configuration to a finished run directory.

Order matters for "no half-written output": every check that can fail on the user's
input (config, data files, labels, budget) runs before the run directory is created.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch

from ..config import RunConfig, nest, resolve
from ..data import DataBundle
from ..data.anomaly import load_for_config
from ..data.splits import Split, apply_split, make_split
from ..errors import UserError
from ..models import build_model, stages
from . import tensorboard
from .run import RunWriter, check_out_dir, default_run_dir, model_spec
from .trainer import TrainingDiverged, fit, monitor_of


def _jsonable(v):
    return v.tolist() if isinstance(v, torch.Tensor) else float(v)


def describe_data(bundle: DataBundle, cfg: RunConfig, split: Split, likelihood: str) -> dict:
    """data.json: what predict/evaluate need to read new inputs like the training ones."""
    n_val_lab = len(split.val_labelled)
    if cfg.data.oracle_val_labels:
        val_note = f"oracle: {n_val_lab} validation labels beyond the budget"
    elif n_val_lab:
        val_note = f"{n_val_lab} labels taken from the budget"
    else:
        val_note = "none (early stopping on the unlabelled validation ELBO)"
    return {
        "dataset": bundle.name, "kind": bundle.kind, "shape": list(bundle.train.shape),
        "classes": list(bundle.classes), "likelihood": likelihood,
        "shift": _jsonable(bundle.train.shift), "scale": _jsonable(bundle.train.scale),
        "source": bundle.meta.get("source", bundle.name), "feature_names": bundle.meta.get("feature_names"),
        "label_column": cfg.data.label_column, **_targets_info(bundle.meta),
        "anomaly_class": bundle.meta.get("anomaly_class"), "n_train": len(bundle.train) - len(split.val),
        "n_val": len(split.val), "n_labelled": len(split.labelled), "validation_labels": val_note,
    }


def _targets_info(meta: dict) -> dict:
    """Names and standardisation of continuous targets (none for most data)."""
    return {k: meta.get(k) for k in ("target_names", "target_mean", "target_std")}


def check_compatible(bundle: DataBundle, cfg: RunConfig, likelihood: str, split: Split) -> None:
    if cfg.arch.arch == "conv" and bundle.kind != "image":
        raise UserError(f"--arch conv needs image data but {cfg.data.dataset} is {bundle.kind}; use --arch dense")
    if likelihood == "bernoulli" and bundle.kind != "image":
        raise UserError("the bernoulli likelihood needs data in [0, 1]; use --likelihood gaussian for tabular features")
    if cfg.model.model != "semivae" and bundle.n_classes < 2:
        raise UserError(f"model {cfg.model.model} needs at least 2 classes, the data has {bundle.n_classes}; "
                        "use --model semivae --mode unsupervised")
    if cfg.model.mode in ("semi", "supervised") and bundle.n_classes < 2:
        raise UserError(f"mode {cfg.model.mode} needs at least 2 classes, the data has {bundle.n_classes}; use --mode unsupervised")
    if cfg.model.mode == "supervised" and len(split.labelled) == 0:
        raise UserError("supervised mode needs labels but the budget leaves none; raise --labels or use --mode unsupervised")


def train(config: RunConfig | None = None, *, out: str | Path | None = None, progress: bool = True,
          **overrides) -> Path:
    """Train one model and return its run directory.

    ``config`` is a resolved :class:`RunConfig` (or None for the defaults); keyword
    overrides use the CLI's option names, e.g. ``train(dataset="mnist", labels="100")``.
    """
    if overrides:
        base = config.to_dict() if config is not None else {}
        config = resolve(base, nest(overrides))
    cfg = config or resolve()
    check_out_dir(str(out) if out else None)
    if cfg.train.tensorboard:
        tensorboard.check_available()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    bundle = load_for_config(cfg.data)
    likelihood = cfg.model.likelihood or bundle.likelihood
    split = make_split(bundle.train.y.numpy(), bundle.n_classes, cfg.data, cfg.train.seed)
    check_compatible(bundle, cfg, likelihood, split)
    data = apply_split(bundle.train, split)
    info = describe_data(bundle, cfg, split, likelihood)
    torch.manual_seed(cfg.train.seed)  # initial weights depend on the seed alone
    model = build_model(model_spec(info), cfg.arch, cfg.model)

    path = Path(out) if out else default_run_dir(cfg)
    writer = RunWriter(path, cfg, info, split)
    board = tensorboard.TensorBoardLogger(path / "tensorboard", model, bundle.n_classes) if cfg.train.tensorboard else None
    t0 = time.perf_counter()
    summary = {"status": "completed", "n_parameters": sum(p.numel() for p in model.parameters()),
               "n_labelled": len(split.labelled), "validation_labels": info["validation_labels"]}
    history: list[dict] = []
    try:
        for stage in stages(model, cfg.train.epochs):
            def on_epoch(row: dict, save: bool, name: str = stage.name) -> None:
                writer.epoch({"stage": name, **row}, model, save)
                if board is not None:
                    board.epoch(row)
            history += fit(stage.module, data, replace(cfg.train, epochs=stage.epochs),
                           label_ratio=cfg.data.label_ratio, progress=progress, on_epoch=on_epoch)
    except TrainingDiverged as e:
        summary.update(status="diverged", message=f"{e}; the last good weights are kept")
        writer.summary(summary)
        raise
    except KeyboardInterrupt:
        summary.update(status="interrupted")
        writer.summary(summary)
        raise
    finally:
        if board is not None:
            board.close()
    summary.update(epochs=len(history), seconds=time.perf_counter() - t0, final=history[-1])
    if cfg.train.patience:
        scored = [r for r in history if monitor_of(r)]
        if scored:
            best = min(scored, key=lambda r: monitor_of(r)[1])
            summary.update(best_epoch=best["epoch"], monitor=monitor_of(best)[0])
    writer.summary(summary)
    return path
