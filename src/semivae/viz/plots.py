"""Figures of numbers: the latent space, learning curves, the confusion matrix."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

from ..models import BaseModel, model_device
from ..objectives.steps import mean_steps
from .canvas import new_figure

NOT_CURVES = ("epoch", "stage", "seconds", "val_recon", "val_kl")  # row fields drawn elsewhere, or not at all


@torch.no_grad()
def latent_scatter_figure(model: BaseModel, x: torch.Tensor, y: np.ndarray, class_names: list[str],
                          mask: torch.Tensor | None = None) -> Figure:
    """Means of q(z|x) in 2-D, coloured by the first head's class: z itself when it has 2
    dimensions, else its first two principal components (named, with their share of
    variance, on the axes). Points without a label (-1) are coloured by the predicted class
    when the model has a head."""
    dev = model_device(model)
    inf = model.inference(x.to(dev), None if mask is None else mask.to(dev), sample=False)
    mu = inf.mu.cpu() if inf.mu.dim() == 2 else mean_steps(inf.mu.cpu(), mask)  # per-step z: its mean over valid steps
    z = mu.numpy()
    colour = y.copy()
    if (colour < 0).any() and inf.logits:
        logits = next(iter(inf.logits.values())).cpu()
        logits = logits if logits.dim() == 2 else mean_steps(logits, mask)
        colour = np.where(colour < 0, logits.argmax(-1).numpy(), colour)
    if z.shape[1] == 2:
        xy, labels = z, ("z1", "z2")
    else:
        pca = PCA(2, random_state=0).fit(z)
        xy = pca.transform(z)
        share = pca.explained_variance_ratio_
        labels = (f"PC1 of z ({share[0]:.0%} of variance)", f"PC2 of z ({share[1]:.0%})")
    fig = new_figure(6.0, 5.0)
    ax = fig.add_subplot()
    cmap = "tab10" if len(class_names) <= 10 else "tab20"
    for k, name in enumerate(class_names):
        sel = colour == k
        if sel.any():
            ax.scatter(xy[sel, 0], xy[sel, 1], s=6, alpha=0.7, color=_colour(cmap, k), label=name)
    rest = colour < 0
    if rest.any():
        ax.scatter(xy[rest, 0], xy[rest, 1], s=6, alpha=0.5, color="grey", label="unlabelled")
    ax.set(xlabel=labels[0], ylabel=labels[1], title=f"latent space ({len(z)} points, z has {z.shape[1]} dims)")
    if class_names:
        ax.legend(markerscale=3, fontsize="small", loc="best", ncols=2)
    return fig


def _colour(name: str, k: int):
    from matplotlib import colormaps

    return colormaps[name](k % colormaps[name].N)


def learning_curves_figure(rows: list[dict]) -> Figure:
    """Each loss term and validation figure per epoch, whatever their names, from
    ``metrics.jsonl`` rows; stages (M1 then M2) are marked by vertical lines."""
    terms = list(dict.fromkeys(k for r in rows for k, v in r.items()
                               if k not in NOT_CURVES and isinstance(v, (int, float))))
    terms = [t for t in terms if any(r.get(t) for r in rows)]  # a term at 0 throughout (a VAE's ce): no panel
    fig = new_figure(8.0, 2.0 * ((len(terms) + 1) // 2) + 0.6)
    axes = fig.subplots((len(terms) + 1) // 2, 2, squeeze=False).ravel()
    step = np.arange(1, len(rows) + 1)
    bounds = [i + 0.5 for i in range(1, len(rows)) if rows[i].get("stage") != rows[i - 1].get("stage")]
    for ax, t in zip(axes, terms):
        v = np.array([r.get(t, np.nan) for r in rows], dtype=float)
        ax.plot(step, v, marker="o" if len(rows) < 30 else None, ms=3)
        for b in bounds:
            ax.axvline(b, color="grey", ls="--", lw=0.8)
        ax.set(title=t, xlabel="epoch")
    for ax in axes[len(terms):]:
        ax.set_visible(False)
    stages = [r.get("stage") for r in rows]
    names = list(dict.fromkeys(s for s in stages if s))
    fig.suptitle("learning curves" + (f" (stages: {' then '.join(names)})" if len(names) > 1 else ""))
    return fig


def confusion_figure(confusion: list[list[int]], class_names: list[str], title: str = "confusion matrix (test)") -> Figure:
    """Counts, rows = true class, columns = predicted class."""
    c = np.asarray(confusion)
    k = len(class_names)
    size = max(3.5, 0.45 * k + 1.5)
    fig = new_figure(size + 0.8, size)
    ax = fig.add_subplot()
    im = ax.imshow(c, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(c[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if c[i, j] > c.max() / 2 else "black")
    ax.set_xticks(range(k), class_names, rotation=90 if max(map(len, class_names)) > 3 else 0)
    ax.set_yticks(range(k), class_names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def reliability_figure(bins: dict[str, list], ece: float | None = None,
                       title: str = "reliability (test)") -> Figure:
    """Accuracy against mean confidence per confidence bin (bars; the diagonal is perfect
    calibration), with each bin's share of the points below."""
    count = np.asarray(bins["count"], dtype=float)
    k = len(count)
    edges = np.linspace(0, 1, k + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    acc = np.array([np.nan if v is None else v for v in bins["accuracy"]], dtype=float)
    fig = new_figure(4.2, 4.8)
    ax, share = fig.add_subplot(4, 1, (1, 3)), fig.add_subplot(4, 1, 4)
    ax.bar(centres, np.nan_to_num(acc), width=1 / k, edgecolor="black", color="#4c72b0", label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy",
           title=title + (f": ECE {ece:.3f}" if ece is not None else ""))
    ax.legend(loc="upper left", fontsize=8)
    share.bar(centres, count / max(count.sum(), 1), width=1 / k, color="grey")
    share.set(xlim=(0, 1), xlabel="confidence (top probability)", ylabel="share")
    return fig


def anomaly_scores(run_path) -> tuple[np.ndarray, dict[str, np.ndarray], dict]:
    """(is_anomaly, {score: test scores}, anomaly.json) of an anomaly run."""
    import json
    from pathlib import Path

    path = Path(run_path)
    with np.load(path / "anomaly_scores.npz") as z:
        flags = z["is_anomaly"]
        scores = {k[5:]: z[k] for k in z.files if k.startswith("test_")}
    return flags, scores, json.loads((path / "anomaly.json").read_text())


def roc_figure(run_path) -> Figure:
    """ROC curve of every anomaly score on the test split, AUROC in the legend."""
    from sklearn.metrics import roc_curve

    flags, scores, info = anomaly_scores(run_path)
    fig = new_figure(6.0, 5.0)
    ax = fig.add_subplot()
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(flags, s)
        ax.plot(fpr, tpr, lw=2 if name == info["default_score"] else 1,
                label=f"{name}: {info['scores'][name]['auroc']:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    ax.axvline(info["target_fpr"], color="grey", ls="--", lw=0.8)
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate",
           title=f"anomaly class {info['anomaly_class']}: ROC (AUROC in legend)")
    ax.legend(fontsize="small", loc="lower right")
    return fig


def score_hist_figure(run_path) -> Figure:
    """Histograms of each score for normal and anomalous test points, with the flag threshold."""
    flags, scores, info = anomaly_scores(run_path)
    n = len(scores)
    fig = new_figure(8.0, 2.0 * ((n + 1) // 2) + 0.6)
    axes = fig.subplots((n + 1) // 2, 2, squeeze=False).ravel()
    for ax, (name, s) in zip(axes, scores.items()):
        lo, hi = np.quantile(s, [0.005, 0.995])
        bins = np.linspace(lo, hi, 50)
        ax.hist(s[~flags], bins=bins, alpha=0.6, density=True, label="normal")
        ax.hist(s[flags], bins=bins, alpha=0.6, density=True, label="anomalous")
        ax.axvline(info["scores"][name]["threshold"], color="black", ls="--", lw=0.8)
        ax.set_title(name)
    for ax in axes[n:]:
        ax.set_visible(False)
    axes[0].legend(fontsize="small")
    fig.suptitle(f"anomaly scores on the test split (dashed: threshold at {info['target_fpr']:.0%} validation FPR)")
    return fig
