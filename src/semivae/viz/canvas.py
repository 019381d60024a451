"""Shared drawing helpers: figures of a fixed pixel size, image mosaics, PNG bytes.

Figures are ``matplotlib.figure.Figure`` objects made without pyplot, so no GUI backend or
global figure state is involved; ``save_png`` writes them at ``DPI`` without cropping, so a
figure of w x h inches is exactly (w * DPI) x (h * DPI) pixels.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..atomic import write_atomic

DPI = 100


def new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def wrapped(title: str, fig: Figure) -> str:
    """``title`` broken into lines that fit the figure's width (about 9 characters an inch at the
    default font, with room for the axes' labels), so a long title is not clipped at both sides."""
    return textwrap.fill(title, max(24, int(fig.get_figwidth() * 9)))


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` whole (``semivae.atomic``)."""
    return write_atomic(path, png_bytes(fig))


def mosaic(images: np.ndarray, pad: int = 1) -> np.ndarray:
    """(R, C, ch, H, W) images in [0, 1] -> one (R*(H+pad), C*(W+pad)[, 3]) array."""
    R, C, ch, H, W = images.shape
    out = np.ones((R * (H + pad) + pad, C * (W + pad) + pad, ch), dtype=np.float32)
    for r in range(R):
        for c in range(C):
            y0, x0 = pad + r * (H + pad), pad + c * (W + pad)
            out[y0:y0 + H, x0:x0 + W] = images[r, c].transpose(1, 2, 0)
    return out[..., 0] if ch == 1 else out


def image_grid_figure(images: np.ndarray, title: str, row_labels: list[str] | None = None,
                      col_labels: list[str] | None = None, cell: float = 0.6) -> Figure:
    """A mosaic of (R, C, ch, H, W) images with optional row / column labels."""
    R, C = images.shape[:2]
    label_room = 0.09 * max((len(s) for s in row_labels or []), default=0)
    fig = new_figure(max(3.0, C * cell + 0.8 + label_room), max(2.0, R * cell + 0.8))
    ax = fig.add_subplot()
    ax.imshow(np.clip(mosaic(images), 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    H, W = images.shape[-2:]
    ax.set_yticks([1 + r * (H + 1) + H / 2 for r in range(R)], row_labels or [""] * R)
    ax.set_xticks([1 + c * (W + 1) + W / 2 for c in range(C)], col_labels or [""] * C)
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    ax.set_title(wrapped(title, fig))
    return fig


def square_rows(images: np.ndarray) -> np.ndarray:
    """One long row (1, N, ...) -> a near-square (R, C, ...) grid, padded with blanks."""
    n = images.shape[1]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    flat = np.ones((rows * cols, *images.shape[2:]), dtype=images.dtype)
    flat[:n] = images[0]
    return flat.reshape(rows, cols, *images.shape[2:])
