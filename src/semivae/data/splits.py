"""Carve validation from training data and apply the label budget, reproducibly.

A :class:`Split` holds indices into the dataset's *training* split only, so it can be
saved with a run (``split.json``) and re-applied to the same data later. The test split is
never touched here: only ``semivae evaluate`` reads it. With several label columns (heads)
the budget is drawn for each head on its own, from the points that head has a label for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..errors import UserError
from .budget import select_labelled
from .config import DataConfig
from .dataset import ArrayData


@dataclass
class Split:
    val: np.ndarray  # validation points
    labelled: list[np.ndarray]  # per head: training points whose label the model trains on
    val_labelled: list[np.ndarray]  # per head: validation points whose label validation may use
    oracle_val_labels: bool = False  # True when val labels lie beyond the budget

    @property
    def pool(self) -> np.ndarray:
        """Points labelled for any head (the sampler's labelled pool), sorted."""
        return _union(self.labelled)

    @property
    def val_pool(self) -> np.ndarray:
        return _union(self.val_labelled)

    def to_json(self) -> str:
        """One head is written as flat lists (the format of runs made before heads existed)."""
        def lists(per_head):
            return per_head[0].tolist() if len(per_head) == 1 else [a.tolist() for a in per_head]
        return json.dumps({"val": self.val.tolist(), "labelled": lists(self.labelled),
                           "val_labelled": lists(self.val_labelled), "oracle_val_labels": self.oracle_val_labels})

    @classmethod
    def from_json(cls, text: str, n_heads: int) -> "Split":
        d = json.loads(text)

        def arrays(v):
            per_head = [v] if n_heads == 1 else v
            return [np.asarray(a, dtype=np.int64) for a in per_head]
        return cls(np.asarray(d["val"], dtype=np.int64), arrays(d["labelled"]), arrays(d["val_labelled"]),
                   d.get("oracle_val_labels", False))


def _union(arrays: list[np.ndarray]) -> np.ndarray:
    return np.unique(np.concatenate(arrays)) if arrays else np.zeros(0, dtype=np.int64)


def make_split(labels: np.ndarray, n_classes: list[int], cfg: DataConfig, seed: int,
               label_rows: np.ndarray | None = None, classes: list[tuple[str, ...]] | None = None) -> Split:
    """Validation carve, then each head's budget, then ``val_labels`` moved from each head's
    budget to validation. ``labels`` is (N, F), -1 where a head's label is unknown; ``classes``
    (per head) names classes in errors.

    ``label_rows`` (``--label-ids``) replaces the drawn budget: exactly those rows' labels are
    known, and every one of them trains (the validation carve leaves them out) but the
    ``val_labels`` moved to validation."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    perm = rng.permutation(n)
    n_val = int(round(cfg.val_fraction * n))
    val, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    if label_rows is not None:  # rows the user named to label are trained on, wherever the carve fell
        val, train = np.setdiff1d(val, label_rows), np.union1d(train, label_rows)
    if cfg.joint_labels and len(n_classes) > 1:
        return _joint_split(labels, n_classes, cfg, rng, val, train)
    labelled, val_labelled = [], []
    for f, k in enumerate(n_classes):
        y = labels[:, f]
        if label_rows is not None:
            known = label_rows[y[label_rows] >= 0]
            lab, given_val = np.intersect1d(train, known), np.intersect1d(val, known)
        else:
            lab = train[select_labelled(y[train], k, labels=cfg.labels, labels_per_class=cfg.labels_per_class,
                                        label_fraction=cfg.label_fraction, rng=rng,
                                        classes=classes[f] if classes else None)]
            given_val = np.zeros(0, dtype=np.int64)
        val_lab = val[y[val] >= 0] if cfg.oracle_val_labels else given_val
        if cfg.val_labels > 0:
            if cfg.val_labels >= len(lab):
                raise UserError(f"--val-labels {cfg.val_labels} would take all {len(lab)} budget labels; lower it")
            y_budget = np.full(n, -1)
            y_budget[lab] = y[lab]
            moved = select_labelled(y_budget, k, labels=cfg.val_labels, rng=rng)
            lab = np.setdiff1d(lab, moved)
            val = np.union1d(val, moved)
            val_lab = np.union1d(val_lab, moved)
        labelled.append(lab)
        val_labelled.append(val_lab)
    return Split(val=val, labelled=labelled, val_labelled=val_labelled, oracle_val_labels=cfg.oracle_val_labels)


def carve_test(y: np.ndarray, fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) indices: a stratified ``fraction`` of the labelled points is test.

    ``y`` is (N,): the labels of the first label column. Unlabelled points (-1) all stay in
    train. If some class has fewer than 2 labelled points, or none is labelled, the test
    split is empty.
    """
    present, counts = np.unique(y[y >= 0], return_counts=True)
    if len(present) == 0 or counts.min() < 2:
        return np.arange(len(y)), np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    picks = []
    for c, n in zip(present, counts):
        k = min(max(1, int(round(fraction * n))), int(n) - 1)
        picks.append(rng.choice(np.flatnonzero(y == c), size=k, replace=False))
    test = np.sort(np.concatenate(picks))
    keep = np.ones(len(y), dtype=bool)
    keep[test] = False
    return np.flatnonzero(keep), test


def carve_note(y: np.ndarray | None, test: np.ndarray, heads) -> dict:
    """What a carved test split took: ``test_carved`` (labelled points), and ``test_empty``
    (why, when some class has a single labelled point)."""
    if y is None or not (y >= 0).any():
        return {}
    if len(test):
        return {"test_carved": int(len(test))}
    present, counts = np.unique(y[y >= 0], return_counts=True)
    single = [heads[0].classes[int(c)] for c, n in zip(present, counts) if n < 2]
    return {"test_carved": 0, "test_empty": f"class {single[0]!r} has a single labelled point" if single else
            "some class has no labelled point"}


def _joint_split(labels: np.ndarray, n_classes: list[int], cfg: DataConfig, rng: np.random.Generator,
                 val: np.ndarray, train: np.ndarray) -> Split:
    """One budget for every column: points with all their labels, class-balanced on the first."""
    complete = (labels >= 0).all(1)
    first = np.where(complete, labels[:, 0], -1)
    lab = train[select_labelled(first[train], n_classes[0], labels=cfg.labels, labels_per_class=cfg.labels_per_class,
                                label_fraction=cfg.label_fraction, rng=rng)]
    val_lab = val[complete[val]] if cfg.oracle_val_labels else np.zeros(0, dtype=np.int64)
    if cfg.val_labels > 0:
        if cfg.val_labels >= len(lab):
            raise UserError(f"--val-labels {cfg.val_labels} would take all {len(lab)} budget labels; lower it")
        y_budget = np.full(len(labels), -1)
        y_budget[lab] = first[lab]
        moved = select_labelled(y_budget, n_classes[0], labels=cfg.val_labels, rng=rng)
        lab, val, val_lab = np.setdiff1d(lab, moved), np.union1d(val, moved), np.union1d(val_lab, moved)
    heads = len(n_classes)
    return Split(val=val, labelled=[lab] * heads, val_labelled=[val_lab] * heads, oracle_val_labels=cfg.oracle_val_labels)


@dataclass
class TrainingData:
    """The data the trainer sees. ``train.labels`` is -1 except where the budget reveals a
    label; ``val.labels`` is -1 except where validation labels are allowed; ``labelled``
    indexes the points of ``train`` labelled for any head (the labelled pool)."""

    train: ArrayData
    val: ArrayData
    labelled: torch.Tensor  # (L,) int64

    def labelled_only(self) -> "TrainingData":
        """The same data without the points that carry no label (for training on labels alone)."""
        return TrainingData(self.train.take(self.labelled), self.val, torch.arange(len(self.labelled)))


def apply_split(full: ArrayData, split: Split) -> TrainingData:
    n = len(full)
    keep = np.ones(n, dtype=bool)
    keep[split.val] = False
    train_idx = np.flatnonzero(keep)
    y_full = full.labels.numpy()
    visible = np.full_like(y_full, -1)
    for f, (lab, val_lab) in enumerate(zip(split.labelled, split.val_labelled)):
        for idx in (lab, val_lab):
            visible[idx, f] = y_full[idx, f]
    visible = torch.from_numpy(visible)
    if full.targets is not None:  # continuous targets are supervised like labels: only within the budget
        hidden = np.ones(n, dtype=bool)
        hidden[split.pool] = hidden[split.val_pool] = False
        full = replace(full, targets=full.targets.masked_fill(torch.from_numpy(hidden)[:, None], float("nan")))
    train = full.take(torch.from_numpy(train_idx), visible[train_idx])
    val = full.take(torch.from_numpy(split.val), visible[split.val])
    position = np.full(n, -1)
    position[train_idx] = np.arange(len(train_idx))
    return TrainingData(train=train, val=val, labelled=torch.from_numpy(position[split.pool]).long())
