"""Classification metrics as pure functions of arrays (scikit-learn underneath)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix as _confusion
from sklearn.metrics import log_loss as _log_loss


def accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    """Fraction of points whose most probable class is the label. y (N,), proba (N, K)."""
    return float((proba.argmax(1) == y).mean()) if len(y) else float("nan")


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-probability of the true class (nats)."""
    if not len(y):
        return float("nan")
    return float(_log_loss(y, proba, labels=np.arange(proba.shape[1])))


def confusion_matrix(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """(K, K) counts: row = true class, column = predicted class."""
    k = proba.shape[1]
    return _confusion(y, proba.argmax(1), labels=np.arange(k))
