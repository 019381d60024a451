"""Evaluation: pure metrics, per-split evaluation, ``evaluate`` and ``predict`` on runs."""

from .evaluate import evaluate, predict, predict_all, proba_csv
from .evaluate_split import evaluate_split, model_outputs

__all__ = ["evaluate", "evaluate_split", "model_outputs", "predict", "predict_all", "proba_csv"]
