"""``evaluate`` a run on a split, and ``predict`` class probabilities for new data."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch

from ..data import ArrayData, load_inputs
from ..data.anomaly import load_for_config
from ..errors import UserError
from ..objectives.iwae import iwae_log_px
from ..train.run import LoadedRun, load_run, preprocessing
from .evaluate_split import evaluate_split, model_outputs

SPLITS = ("test", "val", "train")


def split_data(run: LoadedRun, split: str, data_dir: str | None = None) -> ArrayData:
    """A split of the run's dataset, normalised as the run was trained."""
    cfg = run.config.data
    bundle = load_for_config(cfg, data_dir)
    shift, scale = preprocessing(run.data_info)
    if split == "test":
        data = bundle.test
    else:  # val / train as the run saw them, but scored against every true label
        full = bundle.train
        keep = np.ones(len(full), dtype=bool)
        keep[run.split.val] = False
        data = full.take(torch.from_numpy(run.split.val if split == "val" else np.flatnonzero(keep)))
    return ArrayData(data.x, data.y, shift, scale, data.t)


def evaluate(run: str | Path, split: str = "test", *, data_dir: str | None = None, iwae_k: int = 0,
             iwae_points: int | None = None, seed: int = 0) -> dict:
    """Accuracy, log loss, ELBO and confusion matrix of a run on ``split``; with ``iwae_k``
    also the negative log-likelihood ``nll`` (nats per point, the IWAE bound with k samples,
    on the first ``iwae_points`` points or all)."""
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    loaded = load_run(run)
    data = split_data(loaded, split, data_dir)
    if not len(data):
        raise UserError(f"the {split} split of {loaded.config.data.dataset} is empty; evaluate another split")
    if iwae_k < 0 or (iwae_k and not loaded.model.has_decoder):
        raise UserError(f"--iwae-k {iwae_k} needs a model with a decoder and k >= 1; drop it for this run")
    torch.manual_seed(seed)
    res = evaluate_split(loaded.model, data, confusion=True, target_std=loaded.data_info.get("target_std"))
    if iwae_k:
        n = min(len(data), iwae_points or len(data))
        res.update(nll=float(iwae_nll_terms(loaded.model, data, iwae_k, n).mean()), iwae_k=iwae_k, nll_points=n)
    return {"run": str(loaded.path), "split": split, "dataset": loaded.config.data.dataset,
            "mode": loaded.config.model.mode, "classes": loaded.classes, **res}


def iwae_nll_terms(model, data: ArrayData, k: int, n: int, batch_size: int = 128) -> np.ndarray:
    """-L_k (the IWAE bound, nats) for the first ``n`` points of ``data``: (n,)."""
    out = []
    for start in range(0, n, batch_size):
        x = data.batch(torch.arange(start, min(start + batch_size, n)))
        out.append(-iwae_log_px(model, x, k))
    return torch.cat(out).numpy()


def _predictions(run: str | Path, inputs: str | Path) -> tuple[LoadedRun, dict]:
    """The run and its model's outputs on ``inputs``; refuses a model without a class layer."""
    loaded = load_run(run)
    if not loaded.model.has_classifier:
        raise UserError(f"run {run} is an unsupervised model without a class layer; train with --mode semi or supervised")
    return loaded, model_outputs(loaded.model, load_inputs(str(inputs), dict(loaded.data_info)))


def predict(run: str | Path, inputs: str | Path) -> tuple[np.ndarray, list[str]]:
    """Class probabilities (N, K) for the data in ``inputs`` (same formats as training)."""
    loaded, out = _predictions(run, inputs)
    return out["proba"], loaded.classes


def predict_all(run: str | Path, inputs: str | Path) -> str:
    """CSV text of every prediction the run makes: classes and, for a model with a
    regression head, its continuous targets in the data's units."""
    loaded, out = _predictions(run, inputs)
    info = loaded.data_info
    targets = None
    if "targets" in out:
        targets = out["targets"] * np.asarray(info["target_std"]) + np.asarray(info["target_mean"])
    return proba_csv(out["proba"], loaded.classes, targets, info.get("target_names"))


def proba_csv(proba: np.ndarray, classes: list[str], targets: np.ndarray | None = None,
              target_names: list[str] | None = None) -> str:
    """CSV text: row, predicted class, one probability column per class, then one column
    per predicted continuous target."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = list(target_names or []) if targets is not None else []
    w.writerow(["row", "predicted"] + [f"p_{c}" for c in classes] + names)
    pred = proba.argmax(1)
    for i, (k, p) in enumerate(zip(pred, proba)):
        extra = [f"{v:.6g}" for v in targets[i]] if targets is not None else []
        w.writerow([i, classes[k]] + [f"{v:.6g}" for v in p] + extra)
    return buf.getvalue()
