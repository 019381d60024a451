"""Classification and regression metrics as pure functions of arrays (scikit-learn underneath)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix as _confusion
from sklearn.metrics import average_precision_score as _ap
from sklearn.metrics import log_loss as _log_loss
from sklearn.metrics import roc_auc_score as _roc_auc


def accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    """Fraction of points whose most probable class is the label. y (N,), proba (N, K)."""
    return float((proba.argmax(1) == y).mean()) if len(y) else float("nan")


def top_k_accuracy(y: np.ndarray, proba: np.ndarray, k: int = 5) -> float:
    """Fraction of points whose label is among the ``k`` most probable classes."""
    if not len(y):
        return float("nan")
    top = np.argsort(-proba, 1)[:, :k]
    return float((top == y[:, None]).any(1).mean())


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-probability of the true class (nats)."""
    if not len(y):
        return float("nan")
    return float(_log_loss(y, proba, labels=np.arange(proba.shape[1])))


def confusion_matrix(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """(K, K) counts: row = true class, column = predicted class."""
    k = proba.shape[1]
    return _confusion(y, proba.argmax(1), labels=np.arange(k))


def rmse(t: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Root mean squared error per target column over the observed (non-NaN) rows: (T,)."""
    obs = ~np.isnan(t)
    err = np.where(obs, np.nan_to_num(t) - pred, 0.0)
    return np.sqrt((err**2).sum(0) / np.maximum(obs.sum(0), 1))


def r2(t: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Coefficient of determination per target column over the observed rows: (T,).
    1 = perfect, 0 = no better than predicting the column's mean."""
    obs = ~np.isnan(t)
    mean = np.nanmean(np.where(obs, t, np.nan), 0)
    ss_res = (np.where(obs, np.nan_to_num(t) - pred, 0.0) ** 2).sum(0)
    ss_tot = (np.where(obs, np.nan_to_num(t) - mean, 0.0) ** 2).sum(0)
    return 1.0 - ss_res / np.maximum(ss_tot, 1e-12)


def auroc(is_anomaly: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for separating anomalies (True) from normal points;
    0.5 = chance, 1 = perfect, < 0.5 = the score ranks the wrong way."""
    return float(_roc_auc(is_anomaly, score))


def average_precision(is_anomaly: np.ndarray, score: np.ndarray) -> float:
    """Average precision of ``score`` with anomalies as the positive class."""
    return float(_ap(is_anomaly, score))


def threshold_for_fpr(normal_scores: np.ndarray, fpr: float) -> float:
    """The score above which only a fraction ``fpr`` of ``normal_scores`` lies (flag = score > t)."""
    return float(np.quantile(normal_scores, 1.0 - fpr, method="higher"))


def reliability(y: np.ndarray, proba: np.ndarray, bins: int = 15) -> dict[str, list]:
    """Confidence (the top probability) in ``bins`` equal-width bins over [0, 1]: per bin the
    point count, mean confidence and accuracy (NaN where empty). y (N,), proba (N, K)."""
    conf, hit = proba.max(1), (proba.argmax(1) == y).astype(np.float64)
    which = np.minimum((conf * bins).astype(np.int64), bins - 1)  # (N,) bin index; conf = 1 in the last bin
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, conf, bins) / count
        acc = np.bincount(which, hit, bins) / count

    def listed(v):  # empty bins as None (JSON has no NaN)
        return [None if np.isnan(a) else float(a) for a in v]
    return {"count": count.tolist(), "confidence": listed(mean_conf), "accuracy": listed(acc)}


def expected_calibration_error(y: np.ndarray, proba: np.ndarray, bins: int = 15) -> float:
    """ECE (Guo et al. 2017): sum over confidence bins of |B|/N * |accuracy(B) - confidence(B)|;
    0 for a calibrated classifier. y (N,), proba (N, K)."""
    if not len(y):
        return float("nan")
    r = reliability(y, proba, bins)
    count = np.asarray(r["count"], dtype=np.float64)
    acc, conf = (np.asarray(r[k], dtype=np.float64) for k in ("accuracy", "confidence"))  # None -> NaN
    gap = np.abs(np.nan_to_num(acc - conf))
    return float((count * gap).sum() / count.sum())
