"""``semivae.anomaly(...)``: train a detector and score its held-out points, as ``semivae anomaly``.

    run = semivae.anomaly(x=X, y=y, anomaly_class=7, epochs=20)   # or dataset="mnist", ...
    semivae.score(run, X_new)["flag"]                             # anomalous rows: True

A run trained with ``anomaly_class`` learns the other classes; ``evaluate_anomaly`` then scores its
normal validation points and its test points (the left-out class among them), sets each score's
threshold at ``target_fpr`` and writes ``anomaly.json``, which ``score`` and ``feedback`` read.
"""

from __future__ import annotations

from pathlib import Path

from ..config import RunConfig
from ..errors import UserError
from ..eval.anomaly import evaluate_anomaly
from .training import train


def anomaly(config: RunConfig | None = None, *, target_fpr: float = 0.05, score_samples: int = 10,
            score_iwae_k: int = 100, **train_options) -> Path:
    """Train with ``anomaly_class`` (the class left out: a config's or a keyword) and evaluate the
    detector (AUROC, AP and thresholds per score into ``RUN/anomaly.json``); returns the run
    directory. Every other keyword is ``semivae.train``'s."""
    given = train_options.get("anomaly_class", None if config is None else config.data.anomaly_class)
    if given is None:
        raise UserError("anomaly needs anomaly_class= (--anomaly-class: the class left out of training), e.g. 7")
    if not 0 < target_fpr < 1:
        raise UserError(f"--target-fpr {target_fpr} is outside (0, 1); give e.g. 0.05")
    if score_samples < 1 or score_iwae_k < 1:  # checked before training, not after it
        raise UserError(f"--score-samples {score_samples} and --score-iwae-k {score_iwae_k} must be >= 1, e.g. 10 "
                        "and 100")
    path = train(config, **train_options)
    evaluate_anomaly(path, target_fpr=target_fpr, samples=score_samples, iwae_k=score_iwae_k)
    return path
