"""Figures of sequences: one panel per channel, only the valid steps drawn.

``values`` come in the data's own units (``samples.to_data_units``); at most ``MAX_CHANNELS``
channels get a panel, the first ones, named by the data's channel names where it has them.
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from .canvas import new_figure, wrapped

MAX_CHANNELS = 6


def _names(channel_names: list[str] | None, c: int) -> list[str]:
    return list(channel_names) if channel_names and len(channel_names) >= c else [f"channel {i}" for i in range(c)]


def sequence_panels_figure(values: np.ndarray, row_labels: list[str], title: str, channel_names: list[str] | None = None,
                           sweep: bool = False) -> Figure:
    """(R, N, T, C) series: one row of channel panels per R, its N series overlaid (coloured
    along the sweep for traversals)."""
    R, N, T, C = values.shape
    shown = min(C, MAX_CHANNELS)
    names = _names(channel_names, C)
    fig = new_figure(2.2 * shown + 1.2, 1.5 * R + 0.8)
    axes = fig.subplots(R, shown, squeeze=False, sharex=True)
    colours = colormaps["viridis"](np.linspace(0, 1, N)) if sweep else [None] * N
    for r in range(R):
        for c in range(shown):
            ax = axes[r, c]
            for n in range(N):
                ax.plot(np.arange(T), values[r, n, :, c], color=colours[n], lw=1, alpha=0.9 if sweep else 0.5)
            if r == 0:
                ax.set_title(names[c], fontsize="small")
        axes[r, 0].set_ylabel(row_labels[r], rotation=0, ha="right", va="center")
    for ax in axes[-1]:
        ax.set_xlabel("step")
    fig.suptitle(wrapped(title + (f" (first {shown} of {C} channels)" if shown < C else ""), fig))
    return fig


def sequence_reconstructions_figure(x: np.ndarray, rec: np.ndarray, lengths: np.ndarray,
                                    channel_names: list[str] | None = None) -> Figure:
    """Input (solid) against reconstruction (dashed) per channel, one row per series."""
    n, _, C = x.shape
    shown = min(C, MAX_CHANNELS)
    names = _names(channel_names, C)
    fig = new_figure(2.2 * shown + 1.2, 1.5 * n + 0.8)
    axes = fig.subplots(n, shown, squeeze=False, sharex=True)
    for i in range(n):
        steps = np.arange(int(lengths[i]))
        for c in range(shown):
            ax = axes[i, c]
            ax.plot(steps, x[i, steps, c], color="black", lw=1, label="input")
            ax.plot(steps, rec[i, steps, c], color="tab:red", lw=1, ls="--", label="reconstruction")
            if i == 0:
                ax.set_title(names[c], fontsize="small")
        axes[i, 0].set_ylabel(f"series {i}", rotation=0, ha="right", va="center")
    axes[0, 0].legend(fontsize="x-small")
    fig.suptitle("inputs (solid) and reconstructions (dashed)")
    return fig


def step_error_figure(errors: np.ndarray, valid: np.ndarray, flags: np.ndarray | None = None) -> Figure:
    """Mean absolute reconstruction error at each step, over the series valid there: (N, T)
    errors and (N, T) valid steps; with anomaly ``flags`` (N,), normal and anomalous apart."""
    fig = new_figure(7.0, 3.5)
    ax = fig.add_subplot()
    groups = [("all series", np.ones(len(errors), dtype=bool))] if flags is None else \
        [("normal", ~flags), ("anomalous", flags)]
    for label, sel in groups:
        if sel.any():
            count = valid[sel].sum(0)
            mean = np.where(count > 0, (errors[sel] * valid[sel]).sum(0) / np.maximum(count, 1), np.nan)
            ax.plot(np.arange(errors.shape[1]), mean, label=f"{label} ({int(sel.sum())})")
    ax.set(xlabel="step", ylabel="mean |input - reconstruction|", title="reconstruction error per step")
    ax.legend(fontsize="small")
    return fig
