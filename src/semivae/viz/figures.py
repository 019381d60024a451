"""Every figure that applies to a run, by name: what ``semivae report`` and the figure
commands draw. ``run_figures`` decides what applies from the run's files and model."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import torch
from matplotlib.figure import Figure

from ..errors import UserError
from ..eval.evaluate import evaluate, split_data
from ..train.run import LoadedRun
from .plots import confusion_figure, latent_scatter_figure, learning_curves_figure, roc_figure, score_hist_figure
from .samples import generate_figure, reconstructions_figure, traverse_figure

# name -> heading in the report, in the order they appear
TITLES = {
    "learning_curves": "Learning curves",
    "confusion": "Confusion matrix (test split)",
    "generate": "Conditional generation",
    "traverse": "Latent traversals",
    "reconstructions": "Reconstructions",
    "latent": "Latent space",
    "roc": "Anomaly detection: ROC curves",
    "score_hist": "Anomaly scores: normal vs anomalous",
}


def figure_data(run: LoadedRun, data_dir: str | None = None, n: int = 2000):
    """Up to ``n`` points of the test split (else validation, else training), normalised as
    in training: (ArrayData, x (n, *shape), y (n,)); None when the dataset cannot be read."""
    try:
        for split in ("test", "val", "train"):
            data = split_data(run, split, data_dir)
            if len(data):
                idx = torch.arange(min(n, len(data)))
                return data, data.batch(idx), data.y[idx].numpy()
    except UserError:
        return None
    return None


def run_figures(run: LoadedRun, data_dir: str | None = None, seed: int = 0) -> Iterator[tuple[str, Figure]]:
    """(name, figure) for every figure that applies to ``run``."""
    torch.manual_seed(seed)
    model, classes = run.model, run.classes
    metrics = run.path / "metrics.jsonl"
    if metrics.is_file() and metrics.read_text().strip():
        yield "learning_curves", learning_curves_figure([json.loads(line) for line in metrics.read_text().splitlines()])
    if (run.path / "anomaly_scores.npz").is_file():
        yield "roc", roc_figure(run.path)
        yield "score_hist", score_hist_figure(run.path)
    got = figure_data(run, data_dir)
    if model.has_classifier and got is not None:
        try:
            yield "confusion", confusion_figure(evaluate(run.path, data_dir=data_dir)["confusion"], classes)
        except (UserError, KeyError):  # no labelled test split
            pass
    if not model.has_decoder:
        return
    with torch.no_grad():
        yield "generate", generate_figure(model, classes, n=10, seed=seed, data=got[0] if got else None)
        if got is None:
            return
        data, x, y = got
        yield "traverse", traverse_figure(model, x[:500], index=0, max_dims=min(model.latent_dim, 16), data=data)
        yield "reconstructions", reconstructions_figure(model, x[:12] if x.dim() > 2 else x[:500], data=data)
        yield "latent", latent_scatter_figure(model, x, np.asarray(y), classes)
