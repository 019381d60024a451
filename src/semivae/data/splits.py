"""Carve validation from training data and apply the label budget, reproducibly.

A :class:`Split` holds indices into the dataset's *training* split only, so it can be
saved with a run (``split.json``) and re-applied to the same data later. The test split is
never touched here: only ``semivae evaluate`` reads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import UserError
from .budget import select_labelled
from .dataset import ArrayData


@dataclass
class Split:
    val: np.ndarray  # validation points
    labelled: np.ndarray  # training points whose label the model trains on
    val_labelled: np.ndarray  # validation points whose label validation may use
    oracle_val_labels: bool = False  # True when val labels lie beyond the budget

    def to_json(self, path: Path) -> None:
        d = {k: getattr(self, k).tolist() for k in ("val", "labelled", "val_labelled")}
        d["oracle_val_labels"] = self.oracle_val_labels
        path.write_text(json.dumps(d))

    @classmethod
    def from_json(cls, path: Path) -> "Split":
        d = json.loads(path.read_text())
        arr = {k: np.asarray(d[k], dtype=np.int64) for k in ("val", "labelled", "val_labelled")}
        return cls(**arr, oracle_val_labels=d.get("oracle_val_labels", False))


def make_split(y: np.ndarray, n_classes: int, cfg: DataConfig, seed: int) -> Split:
    """Validation carve, then the budget, then ``val_labels`` moved from the budget to validation."""
    rng = np.random.default_rng(seed)
    n = len(y)
    perm = rng.permutation(n)
    n_val = int(round(cfg.val_fraction * n))
    val, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    y_train = y[train]
    labelled = train[select_labelled(y_train, n_classes, labels=cfg.labels, labels_per_class=cfg.labels_per_class,
                                     label_fraction=cfg.label_fraction, rng=rng)]
    if cfg.oracle_val_labels:
        val_labelled = val[y[val] >= 0]
    else:
        val_labelled = np.zeros(0, dtype=np.int64)
    if cfg.val_labels > 0:
        if cfg.val_labels >= len(labelled):
            raise UserError(f"--val-labels {cfg.val_labels} would take all {len(labelled)} budget labels; lower it")
        y_budget = np.full(n, -1)
        y_budget[labelled] = y[labelled]
        moved = select_labelled(y_budget, n_classes, labels=cfg.val_labels, rng=rng)
        labelled = np.setdiff1d(labelled, moved)
        val = np.union1d(val, moved)
        val_labelled = np.union1d(val_labelled, moved)
    return Split(val=val, labelled=labelled, val_labelled=val_labelled, oracle_val_labels=cfg.oracle_val_labels)


@dataclass
class TrainingData:
    """The data the trainer sees. ``train.y`` is -1 except at ``labelled`` (indices into
    ``train``); ``val.y`` is -1 except where validation labels are allowed."""

    train: ArrayData
    val: ArrayData
    labelled: torch.Tensor  # (L,) int64


def apply_split(full: ArrayData, split: Split) -> TrainingData:
    n = len(full)
    keep = np.ones(n, dtype=bool)
    keep[split.val] = False
    train_idx = np.flatnonzero(keep)
    y_visible = np.full(n, -1, dtype=np.int64)
    y_full = full.y.numpy()
    y_visible[split.labelled] = y_full[split.labelled]
    y_visible[split.val_labelled] = y_full[split.val_labelled]
    y_visible = torch.from_numpy(y_visible)
    if full.t is not None:  # continuous targets are supervised like labels: only within the budget
        hidden = np.ones(n, dtype=bool)
        hidden[split.labelled] = hidden[split.val_labelled] = False
        full = ArrayData(full.x, full.y, full.shift, full.scale, full.t.masked_fill(torch.from_numpy(hidden)[:, None], float("nan")))
    train = full.take(torch.from_numpy(train_idx), y_visible[train_idx])
    val = full.take(torch.from_numpy(split.val), y_visible[split.val])
    position = np.full(n, -1)
    position[train_idx] = np.arange(len(train_idx))
    return TrainingData(train=train, val=val, labelled=torch.from_numpy(position[split.labelled]).long())
