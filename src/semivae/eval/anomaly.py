"""Anomaly detection on runs: score, threshold, report, and score new data.

``evaluate_anomaly(run)`` fits the run's feature bank (neighbours.py, for the ``knn`` score),
scores the validation split (normal points only, by the protocol)
and the anomaly test split with every score that applies, sets each score's flag threshold
at a target false-positive rate on the validation points, and writes

    anomaly.json         thresholds, the default score, AUROC / AP / FPR / TPR per score
    anomaly_scores.npz   per-point test scores and anomaly flags (arrays only, no pickle)

A run fine-tuned by ``semivae feedback`` has two extra classes, "false positive" and "false
negative"; its scores are adjusted x -> s0 + (x - s0)(1 - p_fp) / (1 - p_fn) (Berkhahn et al.
section 5; s0 = min(0, lowest validation score) keeps the factor acting on a positive
quantity), before thresholds are set.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import torch

from ..atomic import write_atomic, write_npz
from ..data import ArrayData
from ..errors import UserError
from ..models import model_device
from ..runs import Run, as_run
from . import metrics
from .evaluation import read_inputs, row_ids
from .neighbours import fit_feature_bank
from .scores import (available_scores, combine_stats, combined_parts, combined_score, compute_scores,
                     first_head_proba)

FP, FN = "false positive", "false negative"


def _feedback_adjust(scores: dict[str, np.ndarray], proba: np.ndarray | None, classes: tuple[str, ...],
                     shift: dict[str, float]) -> dict[str, np.ndarray]:
    """After ``semivae feedback`` (the run's classes end in FP, FN): each score's distance above
    ``shift``, the lowest normal validation score (0 or below for runs scored before session 48),
    times (1 - p_fp) / (1 - p_fn), Berkhahn et al.'s section 5; scores below it stay as they are.
    Measured from the floor, not from 0, the factor scales the spread of a score such as
    ``neg_elbo`` (tens of nats, all positive) instead of its offset (docs/benchmarks.md)."""
    if proba is None or FP not in classes:
        return scores
    factor = (1.0 - proba[:, classes.index(FP)]) / np.clip(1.0 - proba[:, classes.index(FN)], 1e-6, None)
    return {n: shift[n] + np.clip(s - shift[n], 0, None) * factor + np.clip(s - shift[n], None, 0)
            for n, s in scores.items()}


@torch.no_grad()
def _proba(model, data: ArrayData) -> np.ndarray | None:
    """The first head's probabilities (N, K), or None for a model without heads."""
    if not model.heads:
        return None
    parts, dev = [], model_device(model)
    for i in range(0, len(data), 1024):
        idx = torch.arange(i, min(i + 1024, len(data)))
        mask = data.mask(idx)
        parts.append(first_head_proba(model, data.inputs(idx).to(dev), None if mask is None else mask.to(dev)).cpu())
    return torch.cat(parts).double().numpy()


def evaluate_anomaly(run: Run | str | Path, *, target_fpr: float = 0.05, samples: int = 10, iwae_k: int = 100,
                     data_dir: str | None = None, seed: int = 0, device: str | None = None,
                     parts: tuple[str, ...] | None = None) -> dict:
    """Score the run's validation (normal) and test points with every score that applies, set
    each one's threshold and write anomaly.json / anomaly_scores.npz. ``parts``: what ``combined``
    averages, where not the library's choice for this model (feedback keeps its detector's)."""
    run = as_run(run, device)
    cfg = run.config
    if cfg.data.anomaly_class is None:
        raise UserError(f"run {run.path} was not trained with an anomaly class; train it with `semivae anomaly`")
    if not 0 < target_fpr < 1:
        raise UserError(f"--target-fpr {target_fpr} is outside (0, 1); give e.g. 0.05")
    if samples < 1 or iwae_k < 1:
        raise UserError(f"--score-samples {samples} and --score-iwae-k {iwae_k} must be >= 1, e.g. 10 and 100")
    if len(run.split.val) == 0:
        raise UserError("the anomaly threshold needs validation points; train with --val-fraction > 0")
    bundle = run.dataset(data_dir)
    val, test = bundle.train.take(torch.from_numpy(run.split.val)), bundle.test
    flags = bundle.meta["test_anomalous"]
    fit_feature_bank(run, data_dir=data_dir, seed=seed)
    model = run.model
    names = available_scores(model)
    torch.manual_seed(seed)
    val_s = compute_scores(model, val, [n for n in names if n != "combined"], samples, iwae_k)
    parts = tuple(p for p in parts if p in names) if parts else combined_parts(names, model.spec.kind)
    combine = combine_stats(val_s, parts) if "combined" in names else None
    if combine:  # its parts are scored already: only standardise and average them
        val_s["combined"] = combined_score(val_s, combine)
    test_s = compute_scores(model, test, names, samples, iwae_k, combine=combine)
    shift = {n: float(s.min()) for n, s in val_s.items()}  # the normal range's floor: feedback scales what is above
    classes = run.spec.heads[0].classes if run.spec.heads else ()
    val_s = _feedback_adjust(val_s, _proba(model, val), classes, shift)
    test_s = _feedback_adjust(test_s, _proba(model, test), classes, shift)
    per_score = {}
    for n in names:
        t = metrics.threshold_for_fpr(val_s[n], target_fpr)
        flagged = test_s[n] > t
        per_score[n] = {"auroc": metrics.auroc(flags, test_s[n]), "average_precision": metrics.average_precision(flags, test_s[n]),
                        "threshold": t, "val_fpr": float((val_s[n] > t).mean()),
                        "test_fpr": float(flagged[~flags].mean()), "test_tpr": float(flagged[flags].mean())}
    default = "combined" if "combined" in names else "neg_elbo" if "neg_elbo" in names else names[0]
    name = run.data_info.get("anomaly_class") or cfg.data.anomaly_class  # the class's name, not a place
    res = {"anomaly_class": name, "default_score": default, "target_fpr": target_fpr,
           "samples": samples, "iwae_k": iwae_k, "n_val": len(val), "n_test": len(flags),
           "n_anomalous": int(flags.sum()), "combine": combine, "shift": shift, "scores": per_score}
    write_atomic(run.path / "anomaly.json", json.dumps(res, indent=1))
    write_npz(run.path / "anomaly_scores.npz", is_anomaly=flags, **{f"test_{n}": s for n, s in test_s.items()},
              **{f"val_{n}": s for n, s in val_s.items()})
    return res


ANOMALY_COLUMNS = ("score", "AUROC", "AP", "test FPR", "test TPR")


def anomaly_table(res: dict) -> tuple[str, list[list[str]]]:
    """anomaly.json as a headline and one row of formatted cells per score (``ANOMALY_COLUMNS``):
    what ``semivae anomaly`` prints and the report shows."""
    headline = (f"anomaly class {res['anomaly_class']}: {res['n_anomalous']} anomalous of {res['n_test']} test points; "
                f"thresholds at {res['target_fpr']:.0%} validation FPR; default score {res['default_score']}")
    rows = [[n, f"{m['auroc']:.4f}", f"{m['average_precision']:.4f}", f"{m['test_fpr']:.3f}", f"{m['test_tpr']:.3f}"]
            for n, m in res["scores"].items()]
    return headline, rows


def load_anomaly(run: Run) -> dict:
    path = run.path / "anomaly.json"
    if not path.is_file():
        raise UserError(f"run {run.path} is not an anomaly detector (no anomaly.json); train one with "
                        "`semivae anomaly`, or use `semivae predict` on this run: its unknown_score and unknown "
                        "columns flag unusual inputs")
    return json.loads(path.read_text())


def score(run: Run | str | Path, inputs, score_name: str | None = None, samples: int | None = None,
          seed: int = 0, device: str | None = None) -> dict:
    """Anomaly scores of ``inputs`` (a path, an array or a data frame) by a detector run:
    {"score" (N,) higher = more anomalous, "flag" (N,) bool, above the run's "threshold",
    "predicted" (N,) the normal class the model assigns (None where it does not classify), "ids"
    (N,), "score_name"}. ``score_csv`` writes them as ``semivae score`` does."""
    run = as_run(run, device)
    info = load_anomaly(run)
    name = score_name or info["default_score"]
    if name not in info["scores"]:
        raise UserError(f"unknown score {name!r} for this run; choose one of {sorted(info['scores'])}")
    combine = {k: tuple(v) for k, v in info["combine"].items()} if info.get("combine") else None
    needed = set(combine or {}) if name == "combined" else {name}
    missing = sorted(needed - set(available_scores(run.model)))
    if missing:
        raise UserError(f"score {name!r} needs {', '.join(missing)}, which run {run.path} can no longer compute (a "
                        "file beside model.safetensors is missing: feature_bank.safetensors for knn, "
                        "class_latents.safetensors for latent_nll); restore it or run `semivae anomaly` again")
    data = read_inputs(run, inputs)
    torch.manual_seed(seed)
    s = compute_scores(run.model, data, [name], samples or info["samples"], info["iwae_k"], combine=combine)
    proba = _proba(run.model, data)
    classes = run.classes
    s = _feedback_adjust(s, proba, tuple(classes), info["shift"])[name]
    threshold = float(info["scores"][name]["threshold"])
    predicted = None if proba is None else np.asarray([classes[int(k)] for k in proba.argmax(1)], dtype=object)
    return {"score": np.asarray(s, dtype=np.float64), "flag": np.asarray(s) > threshold, "threshold": threshold,
            "predicted": predicted, "ids": np.asarray(row_ids(data), dtype=object), "score_name": name}


def score_csv(scored: dict) -> str:
    """``score``'s result as CSV text: row, id, score, flag (0/1) and, where the model classifies,
    the predicted normal class."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    predicted = scored["predicted"]
    w.writerow(["row", "id", "score", "flag"] + (["predicted"] if predicted is not None else []))
    for i, (v, flag, id_) in enumerate(zip(scored["score"], scored["flag"], scored["ids"])):
        w.writerow([i, id_, f"{v:.6g}", int(flag)] + ([predicted[i]] if predicted is not None else []))
    return buf.getvalue()
