"""Inputs unlike anything trained on: a score and a threshold that flag them, so a
classifier can say "none of these" instead of guessing.

``fit_unknown(run)`` scores the run's validation points (drawn like the training data) and
puts the threshold at their ``1 - target_fpr`` quantile: on data like the training data,
about ``target_fpr`` of the points are flagged. The score is ``neg_elbo_point`` (the negative
ELBO with the latents at their means: deterministic) for a model with a decoder, else
``one_minus_max_pi``. Written to ``RUN/unknown.json`` at the end of training (and by
``semivae calibrate``); ``predict`` adds the ``unknown`` column.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..atomic import write_atomic
from ..data import ArrayData
from ..errors import UserError
from ..runs import Run, as_run
from . import metrics
from .scores import compute_scores


def unknown_score(model) -> str:
    """The score that flags unknown inputs for ``model``."""
    return "neg_elbo_point" if model.has_decoder else "one_minus_max_pi"


def fit_unknown(run: Run | str | Path, *, target_fpr: float = 0.05, data_dir: str | None = None,
                device: str | None = None) -> dict:
    """Set and write the run's unknown-input threshold from its validation points."""
    run = as_run(run, device)
    if not 0 < target_fpr < 1:
        raise UserError(f"--unknown-fpr {target_fpr} is outside (0, 1); give e.g. 0.05")
    if not run.model.has_decoder and not run.model.heads:
        raise UserError(f"run {run.path} has neither a decoder nor a class layer to score inputs with")
    val = run.split_data("val", data_dir)
    if not len(val):
        raise UserError("the unknown-input threshold needs validation points; train with --val-fraction > 0")
    name = unknown_score(run.model)
    s = compute_scores(run.model, val, [name])[name]
    result = {"score": name, "target_fpr": target_fpr, "threshold": metrics.threshold_for_fpr(s, target_fpr),
              "n_val": int(len(s)), "val_median": float(np.median(s))}
    write_atomic(run.path / "unknown.json", json.dumps(result, indent=1))
    summary = run.path / "summary.json"
    if summary.is_file():  # it names the threshold training set: keep the two in step
        info = json.loads(summary.read_text())
        info["unknown"] = {k: result[k] for k in ("score", "threshold", "target_fpr")}
        write_atomic(summary, json.dumps(info, indent=1))
    run.unknown = result
    return result


def unknown_flags(run: Run, data: ArrayData) -> tuple[np.ndarray, np.ndarray] | None:
    """(score (N,), flag (N,) bool) of new inputs under the run's threshold, or None when the
    run has none (trained before this existed, or without validation points)."""
    if run.unknown is None:
        return None
    name, threshold = run.unknown["score"], float(run.unknown["threshold"])
    torch.manual_seed(0)
    s = compute_scores(run.model, data, [name])[name]
    return s, s > threshold
