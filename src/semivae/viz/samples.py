"""Figures made by decoding: conditional generation, latent traversals, reconstructions.

Every function takes a trained model (the run's, in eval mode) and returns a matplotlib
Figure; the array-producing halves (``generation_grid``, ``traversal_grid``) are separate so
tests and users can check the numbers. Image data gives image mosaics; tabular data gives
line plots over the features instead (never a crash).
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from torch import nn

from ..data.dataset import ArrayData
from .canvas import image_grid_figure, new_figure, square_rows


def is_image(shape: tuple[int, ...]) -> bool:
    return len(shape) == 3


def to_data_units(x: torch.Tensor, data: ArrayData | None) -> np.ndarray:
    """Model-space values -> the data's own units (images stay in [0, 1])."""
    x = x.detach().float().cpu()
    if data is not None and x.dim() == 2:  # tabular: undo the standardisation
        return (x / data.scale + data.shift).numpy()
    return x.numpy()


@torch.no_grad()
def generation_grid(model: nn.Module, n: int, classes: list[int] | None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoded means (R, n, *shape): one row per class in ``classes`` (one row of
    unconditional samples when None), the same z ~ N(0, I) down each column. Returns (grid, z)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, model.prior_dim, generator=g)  # (n, D)
    if not classes:
        return model.generate(z)[None], z
    return torch.stack([model.generate(z, torch.full((n,), k, dtype=torch.long)) for k in classes]), z


def generate_figure(model: nn.Module, class_names: list[str], n: int = 10, only_class: int | None = None,
                    seed: int = 0, data: ArrayData | None = None) -> Figure:
    """Paper Figures 2 and 3: rows = classes, columns = one z each (style fixed down a column)."""
    conditional = getattr(model, "has_classifier", False) and class_names
    classes = [only_class] if only_class is not None else (list(range(len(class_names))) if conditional else None)
    grid, _ = generation_grid(model, n, classes, seed)
    title = "samples" if not classes else ("class " + class_names[classes[0]] if len(classes) == 1
                                           else "one row per class, the same z down each column")
    if not is_image(tuple(grid.shape[2:])):
        labels = [class_names[k] for k in classes] if classes else ["unconditional"]
        return series_figure(to_data_units(grid.flatten(0, 1), data).reshape(*grid.shape), labels, title)
    arr = grid.clamp(0, 1).numpy()
    if len(arr) == 1 and n > 16:
        return image_grid_figure(square_rows(arr), title)
    rows = [class_names[k] for k in classes] if classes else None
    return image_grid_figure(arr, title, row_labels=rows)


@torch.no_grad()
def kl_per_dim(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Mean KL(q(z_d | x) || N(0, 1)) per latent dimension over the batch: (D,)."""
    inf = model.inference(x, sample=False)
    return (0.5 * (inf.mu.pow(2) + inf.logvar.exp() - 1.0 - inf.logvar)).mean(0).numpy()


@torch.no_grad()
def traversal_grid(model: nn.Module, x0: torch.Tensor, dims: list[int], values: torch.Tensor) -> torch.Tensor:
    """(len(dims), V, *shape): row i sweeps z[dims[i]] over ``values``, the other dimensions
    fixed at the code of ``x0`` (1, *shape), the class at its predicted one."""
    inf = model.inference(x0, sample=False)
    y0 = inf.logits.argmax(-1) if inf.logits is not None else None
    rows = []
    for d in dims:
        z = inf.mu.repeat(len(values), 1)  # (V, D)
        z[:, d] = values
        rows.append(model.decode(z, None if y0 is None else y0.repeat(len(values))))
    return torch.stack(rows)


def rank_dims(model: nn.Module, x: torch.Tensor) -> tuple[list[int], np.ndarray]:
    """Latent dimensions by decreasing mean KL over ``x`` (unused ones last), and the KLs."""
    kl = kl_per_dim(model, x)
    return [int(d) for d in np.argsort(-kl, kind="stable")], kl


def traverse_figure(model: nn.Module, x: torch.Tensor, index: int = 0, span: float = 3.0, steps: int = 9,
                    max_dims: int | None = None, data: ArrayData | None = None) -> Figure:
    """One row per latent dimension, ranked by mean KL over ``x`` (unused ones last), each
    swept over [-span, span] with the others at the code of ``x[index]``."""
    order, kl = rank_dims(model, x)
    order = order[: max_dims or len(order)]
    values = torch.linspace(-span, span, steps)
    grid = traversal_grid(model, x[index:index + 1], order, values)
    labels = [f"z{d} (KL {kl[d]:.2f})" for d in order]
    title = f"latent traversals of point {index}, z_d from {-span:g} to {span:g}, ranked by KL"
    if not is_image(tuple(grid.shape[2:])):
        return series_figure(to_data_units(grid.flatten(0, 1), data).reshape(*grid.shape), labels, title, sweep=True)
    return image_grid_figure(grid.clamp(0, 1).numpy(), title, row_labels=labels,
                             col_labels=[f"{v:.1f}" for v in values.tolist()])


@torch.no_grad()
def reconstructions_figure(model: nn.Module, x: torch.Tensor, data: ArrayData | None = None) -> Figure:
    """Images: input row over reconstruction row. Tabular: mean absolute error per feature."""
    rec = model.reconstruct(x)
    if is_image(tuple(x.shape[1:])):
        return image_grid_figure(torch.stack([x, rec]).clamp(0, 1).numpy(), "inputs (top) and reconstructions",
                                 row_labels=["input", "reconstruction"])
    err = np.abs(to_data_units(x, data) - to_data_units(rec, data)).mean(0)
    fig = new_figure(max(4.0, 0.25 * len(err) + 1.5), 3.0)
    ax = fig.add_subplot()
    ax.bar(np.arange(len(err)), err)
    ax.set(xlabel="feature", ylabel="mean |input - reconstruction|", title=f"reconstruction error per feature ({len(x)} points)")
    return fig


def series_figure(values: np.ndarray, row_labels: list[str], title: str, sweep: bool = False) -> Figure:
    """Non-image rows (R, N, F): one panel per row, its N vectors overlaid over the features."""
    R, N, F = values.shape[:3]
    fig = new_figure(max(4.0, 0.15 * F + 3.0), 1.6 * R + 0.6)
    axes = fig.subplots(R, 1, squeeze=False, sharex=True)[:, 0]
    colours = colormaps["viridis"](np.linspace(0, 1, N)) if sweep else [None] * N
    for ax, rows, label in zip(axes, values, row_labels):
        for v, c in zip(rows, colours):
            ax.plot(np.arange(F), v.reshape(-1), color=c, alpha=0.9 if sweep else 0.5, lw=1)
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
    axes[-1].set_xlabel("feature")
    fig.suptitle(title)
    return fig
