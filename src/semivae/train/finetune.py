"""``semivae finetune RUN``: a classifier on a trained run's encoder, as a new run.

The new run reads the base run's data and encoder architecture, puts a fresh head on the
encoder (``--head ff|conv``), starts the encoder from the base run's weights (``--init-from``)
and trains on the labels of its own budget, the encoder frozen (``--freeze``) or at its own
learning rate (``--encoder-lr``). Everything that reads runs (evaluate, predict, report, ...)
reads it like any other. The same command without a base run is ``semivae train --model
classifier``: the plain baseline, the same encoder and head from scratch.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ..config import RunConfig, merge, nest, resolve
from ..errors import UserError
from ..runs import Run, as_run
from .training import train

BUDGETS = ("labels", "labels_per_class", "label_fraction")
SHAPES = ("arch", "hidden", "channels", "strides", "fc", "rnn_hidden", "cell", "bidirectional", "latent_dim")  # RUN's


def finetune_config(base: Run, overrides: dict, file_cfg: dict | None = None) -> RunConfig:
    """The base run's data and architecture, a classifier, then a config file's sections, then
    ``overrides`` (flat option names)."""
    given = merge(file_cfg or {}, nest(overrides))
    fixed = [k for k in ("init_from", "model", *SHAPES) if k in overrides and overrides[k] is not None]
    if fixed:
        what = {"init_from": "starts from RUN itself", "model": "trains a classifier"}.get(fixed[0],
                                                                                     "reuses RUN's encoder as it is")
        raise UserError(f"finetune {what}; drop --{fixed[0].replace('_', '-')}")
    data = asdict(base.config.data)
    if any(k in given.get("data", {}) for k in BUDGETS):
        data = {k: v for k, v in data.items() if k not in BUDGETS}  # the new budget replaces the base run's
    base_cfg = {"preset": base.config.preset, "data": data, "arch": asdict(base.config.arch),
                "model": {"model": "classifier"}}
    return resolve(merge(base_cfg, file_cfg or {}), nest({**overrides, "init_from": str(base.path)}))


def finetune(run: Run | str | Path, *, out: str | Path | None = None, progress: bool = True, **overrides) -> Path:
    """Train a classifier on ``run``'s encoder; keyword overrides use the CLI's option names."""
    return train(finetune_config(as_run(run), overrides), out=out, progress=progress)
