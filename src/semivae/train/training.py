"""``train``: from a configuration to a finished run directory.

Order matters for "no half-written output": every check that can fail on the user's
input (config, data files, labels, budget, the model's own requirements) runs before the
run directory is created.
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
from ..models import BaseModel, build_model
from ..nn import ARCHS
from ..runs import RunWriter, check_out_dir, data_info, default_run_dir, load_run, model_spec
from . import tensorboard
from .trainer import TrainingDiverged, fit, monitor_of


def check_compatible(bundle: DataBundle, cfg: RunConfig, likelihood: str) -> None:
    """What the data must be for the chosen architecture, likelihood and options."""
    if bundle.kind not in ARCHS[cfg.arch.arch].kinds:
        raise UserError(f"--arch {cfg.arch.arch} needs {' or '.join(ARCHS[cfg.arch.arch].kinds)} data but "
                        f"{cfg.data.dataset} is {bundle.kind}; use --arch dense")
    if likelihood == "bernoulli" and bundle.likelihood != "bernoulli":
        raise UserError("the bernoulli likelihood needs data in [0, 1]; use --likelihood gaussian for features")
    unknown = sorted(set(cfg.model.head_alpha) - {h.name for h in bundle.heads})
    if unknown:
        raise UserError(f"--head-alpha names {unknown}, which are not label columns of the data "
                        f"{[h.name for h in bundle.heads]}; name those")


def check_labels(model: BaseModel, split: Split, cfg: RunConfig) -> None:
    if not model.has_decoder and len(split.pool) == 0:
        raise UserError(f"{cfg.model.run_name()} trains on labels alone but the budget leaves none; raise --labels "
                        "or use --mode unsupervised")


def train(config: RunConfig | None = None, *, out: str | Path | None = None, progress: bool = True,
          **overrides) -> Path:
    """Train one model and return its run directory.

    ``config`` is a resolved :class:`RunConfig` (or None for the defaults); keyword
    overrides use the CLI's option names, e.g. ``semivae.train(dataset="mnist", labels="100")``.
    """
    if overrides:
        base = config.to_dict() if config is not None else {}
        config = resolve(base, nest(overrides))
    cfg = config or resolve()
    check_out_dir(out)
    if cfg.train.tensorboard:
        tensorboard.check_available()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    bundle = load_for_config(cfg.data)
    likelihood = cfg.model.likelihood or bundle.likelihood
    check_compatible(bundle, cfg, likelihood)
    split = make_split(bundle.train.labels.numpy(), [len(h.classes) for h in bundle.heads], cfg.data, cfg.train.seed)
    data = apply_split(bundle.train, split)
    if not cfg.data.unlabelled:
        if not len(data.labelled):
            raise UserError("--no-unlabelled trains on the labelled points alone, but the budget leaves none; "
                            "raise --labels")
        data = data.labelled_only()
    info = data_info(bundle, cfg, split, likelihood)
    torch.manual_seed(cfg.train.seed)  # initial weights depend on the seed alone
    model = build_model(model_spec(info, cfg.model), cfg.arch, cfg.model)
    check_labels(model, split, cfg)
    carried = type(model).transfer(model, load_run(cfg.train.init_from).model) if cfg.train.init_from else None

    path = Path(out) if out else default_run_dir(cfg)
    writer = RunWriter(path, cfg, info, split)
    board = tensorboard.TensorBoardLogger(path / "tensorboard", model) if cfg.train.tensorboard else None
    t0 = time.perf_counter()
    summary = {"status": "completed", "n_parameters": sum(p.numel() for p in model.parameters()),
               "n_labelled": len(split.pool), "validation_labels": info["validation_labels"]}
    if carried is not None:
        fresh = sorted(set(model.state_dict()) - set(carried))
        summary["init_from"] = {"run": cfg.train.init_from, "carried": len(carried), "fresh": fresh}
    history: list[dict] = []
    try:
        for stage in model.stages(cfg.train.epochs):
            if stage.frozen is not None:
                stage.frozen.requires_grad_(False)

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
