"""Evaluation: pure metrics, a model's outputs on a split, ``evaluate`` and ``predict`` on runs,
anomaly scores. Every function on runs takes a loaded ``Run`` or a run directory's path."""

from .evaluation import evaluate, iwae_nll_terms, predict, predict_all, proba_csv, read_inputs
from .outputs import evaluate_split, model_outputs

__all__ = ["evaluate", "evaluate_split", "iwae_nll_terms", "model_outputs", "predict", "predict_all", "proba_csv",
           "read_inputs"]
