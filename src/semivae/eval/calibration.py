"""Temperature scaling (Guo et al. 2017): one scalar T > 0 per class head, fitted on the
validation labels taken from the budget, turns the head's probabilities p into

    p_T = softmax(log p / T)        (= softmax(logits / T) for a plain softmax head)

T > 1 softens an over-confident head, T < 1 sharpens an under-confident one; the predicted
class never changes. With few validation labels the plain fit is unsafe: ten points all
classified right have no finite optimum (T -> 0 keeps lowering their log loss, and test
predictions become certain). So T is the maximum a posteriori fit under a log-normal prior
centred on 1, log T ~ N(0, PRIOR_SD^2): 10 labels move T little from 1, 20,000 recover a known T
(both tested). ``calibrate(run)`` writes ``RUN/calibration.json``; every later
``predict``, ``evaluate``, ``export`` and the scikit-learn estimator apply it
(``Run.temperatures``), and ``evaluate`` reports the ECE and log loss before and after.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from ..atomic import write_atomic
from ..errors import UserError
from ..models import model_device
from ..runs import Run, as_run
from . import metrics
from .outputs import apply_temperature, model_outputs

LOG_T_RANGE = (-4.0, 4.0)  # T in [0.018, 55]
PRIOR_SD = 0.25  # log T ~ N(0, 0.25^2): T within [0.61, 1.65] a priori (2 sd)


def fit_temperature(y: np.ndarray, proba: np.ndarray, prior_sd: float | None = PRIOR_SD) -> float:
    """The T minimising the summed log loss of ``apply_temperature(proba, T)`` on labels ``y``
    plus the prior's ``0.5 (log T / prior_sd)^2`` (``prior_sd=None``: the plain fit)."""
    def nll(log_t: float) -> float:
        p = apply_temperature(proba, float(np.exp(log_t)))
        penalty = 0.0 if prior_sd is None else 0.5 * (log_t / prior_sd) ** 2
        return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).sum()) + penalty
    res = minimize_scalar(nll, bounds=LOG_T_RANGE, method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def calibration_stats(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    return {"ece": metrics.expected_calibration_error(y, proba), "log_loss": metrics.log_loss(y, proba),
            "accuracy": metrics.accuracy(y, proba)}


def calibrate(run: Run | str | Path, *, data_dir: str | None = None, device: str | None = None) -> dict:
    """Fit each head's temperature on the run's validation labels; write and return
    ``calibration.json``: {"method": ..., "heads": {head: {temperature, n_val, before: {...},
    after: {...}}}}."""
    run = as_run(run, device)
    if not run.model.heads:
        raise UserError(f"run {run.path} has no class layer to calibrate; train with --mode semi or supervised")
    val = run.split_data("val", data_dir)
    known = np.zeros((len(val), len(run.spec.heads)), dtype=bool)
    pos = {int(r): i for i, r in enumerate(run.split.val)}
    for f, rows in enumerate(run.split.val_labelled):
        known[[pos[int(r)] for r in rows if int(r) in pos], f] = True
    if not known.any():
        k = max(1, min(50, len(run.split.labelled[0]) // 5))  # a fifth of its labels, at most 50
        raise UserError(f"run {run.path} has no validation labels to calibrate on; train it with --val-labels K "
                        f"(K labels of the budget kept for validation), e.g. --val-labels {k}")
    out = model_outputs(run.model, val, device=model_device(run.model), elbo=False)
    heads = {}
    for f, h in enumerate(run.spec.heads):
        if h.name not in out.get("proba", {}) or not known[:, f].any():
            continue
        y, p = val.labels[:, f].numpy()[known[:, f]], out["proba"][h.name][known[:, f]]
        p = p / p.sum(1, keepdims=True)
        t = fit_temperature(y, p)
        heads[h.name] = {"temperature": t, "n_val": int(len(y)), "before": calibration_stats(y, p),
                         "after": calibration_stats(y, apply_temperature(p, t))}
    result = {"method": "temperature scaling on validation labels", "heads": heads}
    write_atomic(run.path / "calibration.json", json.dumps(result, indent=1))
    run.temperatures = {name: v["temperature"] for name, v in heads.items()}
    return result
