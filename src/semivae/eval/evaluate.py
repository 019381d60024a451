"""``evaluate`` a run on a split, and ``predict`` class probabilities for new data."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch

from ..data import ArrayData, load_dataset, load_inputs
from ..errors import UserError
from ..train.run import LoadedRun, load_run, preprocessing
from .evaluate_split import evaluate_split, model_outputs

SPLITS = ("test", "val", "train")


def _split_data(run: LoadedRun, split: str, data_dir: str | None) -> ArrayData:
    cfg = run.config.data
    bundle = load_dataset(cfg.dataset, data_dir or cfg.data_dir, label_column=cfg.label_column)
    shift, scale = preprocessing(run.data_info)
    if split == "test":
        data = bundle.test
    else:  # val / train as the run saw them, but scored against every true label
        full = bundle.train
        keep = np.ones(len(full), dtype=bool)
        keep[run.split.val] = False
        idx = torch.from_numpy(run.split.val if split == "val" else np.flatnonzero(keep))
        data = ArrayData(full.x[idx], full.y[idx])
    return ArrayData(data.x, data.y, shift, scale)


def evaluate(run: str | Path, split: str = "test", *, data_dir: str | None = None) -> dict:
    """Accuracy, log loss, ELBO and confusion matrix of a run on ``split``."""
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    loaded = load_run(run)
    data = _split_data(loaded, split, data_dir)
    if not len(data):
        raise UserError(f"the {split} split of {loaded.config.data.dataset} is empty; evaluate another split")
    res = evaluate_split(loaded.model, data, confusion=True)
    return {"run": str(loaded.path), "split": split, "dataset": loaded.config.data.dataset,
            "mode": loaded.config.model.mode, "classes": loaded.classes, **res}


def predict(run: str | Path, inputs: str | Path) -> tuple[np.ndarray, list[str]]:
    """Class probabilities (N, K) for the data in ``inputs`` (same formats as training)."""
    loaded = load_run(run)
    if not loaded.model.has_classifier:
        raise UserError(f"run {run} is an unsupervised model without a class layer; train with --mode semi or supervised")
    info = dict(loaded.data_info)
    data = load_inputs(str(inputs), info)
    out = model_outputs(loaded.model, data)
    return out["proba"], loaded.classes


def proba_csv(proba: np.ndarray, classes: list[str]) -> str:
    """CSV text: row, predicted class, then one probability column per class."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["row", "predicted"] + [f"p_{c}" for c in classes])
    pred = proba.argmax(1)
    for i, (k, p) in enumerate(zip(pred, proba)):
        w.writerow([i, classes[k]] + [f"{v:.6g}" for v in p])
    return buf.getvalue()
