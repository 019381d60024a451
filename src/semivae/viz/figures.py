"""Every figure that applies to a run, by name: what ``semivae report`` and the figure
commands draw. ``run_figures`` decides what applies from the run's files and model."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import torch
from matplotlib.figure import Figure

from ..errors import UserError
from ..eval.disentangle import load_disentanglement
from ..eval.evaluation import evaluate
from ..masks import entries
from ..runs import Run
from .plots import (confusion_figure, latent_scatter_figure, learning_curves_figure, reliability_figure, roc_figure,
                    score_hist_figure)
from .samples import generate_figure, on, reconstructions_figure, to_data_units, traverse_figure
from .series import step_error_figure

# name -> heading in the report, in the order they appear; a per-head figure is named
# "<name>-<head>" when the run has several heads
TITLES = {
    "learning_curves": "Learning curves",
    "confusion": "Confusion matrix (test split)",
    "reliability": "Reliability diagram (test split)",
    "generate": "Generation",
    "traverse": "Latent traversals",
    "reconstructions": "Reconstructions",
    "latent": "Latent space",
    "step_error": "Reconstruction error per step",
    "roc": "Anomaly detection: ROC curves",
    "score_hist": "Anomaly scores: normal vs anomalous",
}


def title(name: str) -> str:
    base, _, head = name.partition("-")
    return TITLES[base] + (f": {head}" if head else "")


def figure_data(run: Run, data_dir: str | None = None, n: int = 2000, quiet: bool = True):
    """Up to ``n`` points of the test split (else validation, else training), normalised as
    in training: (ArrayData of those points, x (n, *shape), y (n,) the first head's labels,
    -1 without a head); None when the dataset cannot be read (``quiet=False``: the reason, raised)."""
    try:
        for split in ("test", "val", "train"):
            data = run.split_data(split, data_dir)
            if len(data):
                idx = torch.arange(min(n, len(data)))
                part = data.take(idx)
                y = part.labels[:, 0].numpy() if part.labels.shape[1] else np.full(len(part), -1)
                return part, part.inputs(torch.arange(len(part))), y
    except UserError:
        if not quiet:
            raise
        return None
    return None


def axis_names(run: Run) -> list[str] | None:
    """What the figures name along a non-image axis: a series' channels or a table's features."""
    return run.data_info.get("channel_names") or run.data_info.get("feature_names")


def run_figures(run: Run, data_dir: str | None = None, seed: int = 0,
                results: dict | None = None) -> Iterator[tuple[str, Figure]]:
    """(name, figure) for every figure that applies to ``run``; ``results`` are its test
    metrics when the caller has them already (else they are computed here)."""
    torch.manual_seed(seed)
    model, spec = run.model, run.spec
    metrics = run.path / "metrics.jsonl"
    if metrics.is_file() and metrics.read_text().strip():
        yield "learning_curves", learning_curves_figure([json.loads(line) for line in metrics.read_text().splitlines()])
    if (run.path / "anomaly_scores.npz").is_file():
        yield "roc", roc_figure(run.path)
        yield "score_hist", score_hist_figure(run.path)
    got = figure_data(run, data_dir)
    if model.heads and got is not None:
        try:
            res = results if results is not None else evaluate(run, data_dir=data_dir)
        except UserError:
            res = {}
        for h in model.heads:
            key = spec.key("confusion", h.name)
            if key in res:
                yield key.replace("/", "-"), confusion_figure(res[key], list(h.classes))
            key = spec.key("reliability", h.name)
            if key in res:
                yield key.replace("/", "-"), reliability_figure(res[key], res.get(spec.key("ece", h.name)))
    if not model.has_decoder:
        return
    names = axis_names(run)
    with torch.no_grad():
        yield "generate", generate_figure(model, n=10 if spec.kind != "sequence" else 4, seed=seed,
                                          data=got[0] if got else None, channel_names=names)
        if got is None:
            return
        data, x, y = got
        mask = data.mask(torch.arange(len(data)))

        def first(n):
            return x[:n], None if mask is None else mask[:n]
        dis = load_disentanglement(run.path)
        dim_factors = {d["dim"]: d["factor"] for d in dis["dims"]} if dis else None
        yield "traverse", traverse_figure(model, *first(500)[:1], index=0, max_dims=None if dis else min(model.latent_dim, 16),
                                          data=data, mask=first(500)[1], channel_names=names, dim_factors=dim_factors)
        few = torch.from_numpy(np.unique(np.linspace(0, len(x) - 1, {"image": 12, "sequence": 4}.get(spec.kind, 500))
                                         .round().astype(np.int64)))  # spread over the split (sorted by class)
        yield "reconstructions", reconstructions_figure(model, x[few], data=data,
                                                        mask=None if mask is None else mask[few], channel_names=names)
        if spec.kind == "sequence":
            flags = run.dataset().meta.get("test_anomalous") if run.config.data.anomaly_class is not None else None
            yield "step_error", step_error(model, *first(500), data, None if flags is None else flags[:500])
        heads = spec.heads[0] if spec.heads else None
        yield "latent", latent_scatter_figure(model, x, np.asarray(y), list(heads.classes) if heads else [], mask)


def step_error(model, x: torch.Tensor, mask: torch.Tensor | None, data, flags: np.ndarray | None) -> Figure:
    """Mean absolute reconstruction error per step over its observed values, in the data's units
    (anomalous apart)."""
    rec = model.reconstruct(on(model, x), on(model, mask)).cpu()
    diff = np.abs(to_data_units(x, data, "sequence") - to_data_units(rec, data, "sequence"))  # (N, T, C)
    seen = np.ones(diff.shape) if mask is None else np.broadcast_to(entries(mask, rec).numpy(), diff.shape)
    count = seen.sum(-1)  # (N, T)
    err = (diff * seen).sum(-1) / np.maximum(count, 1)  # (N, T)
    return step_error_figure(err, count > 0, None if flags is None else flags[: len(err)])


__all__ = ["TITLES", "figure_data", "run_figures", "title"]
