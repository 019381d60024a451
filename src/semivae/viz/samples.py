"""Figures made by decoding: conditional generation, latent traversals, reconstructions.

Every function takes a trained model (the run's, in eval mode) and returns a matplotlib
Figure; the array-producing halves (``generation_grid``, ``traversal_grid``) are separate so
tests and users can check the numbers. The data's kind picks the drawing: images give image
mosaics, vectors line plots over the features, sequences one panel per channel over the
steps (``series.py``).
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure

from ..data.dataset import ArrayData
from ..masks import steps
from ..models import BaseModel, Head, model_device
from ..objectives.steps import mean_steps
from .canvas import image_grid_figure, new_figure, square_rows, wrapped
from .series import sequence_panels_figure, sequence_reconstructions_figure


def on(model: BaseModel, t: torch.Tensor | None) -> torch.Tensor | None:
    """``t`` on the model's device (figures draw on the CPU, models may run elsewhere)."""
    return None if t is None else t.to(model_device(model))


def is_image(model: BaseModel) -> bool:
    return model.spec.kind == "image"


def generation_head(model: BaseModel) -> Head | None:
    """The head whose classes the generation grid's rows are: the first one the decoder reads
    (None: unconditional samples)."""
    return next((h for h in model.heads if h.feeds_decoder), None) if model.has_decoder else None


def to_data_units(x: torch.Tensor, data: ArrayData | None, kind: str) -> np.ndarray:
    """Model-space values -> the data's own units (images stay in [0, 1])."""
    return unstandardised(x, None if data is None else (data.shift, data.scale), kind)


def unstandardised(x: torch.Tensor, norm: tuple | None, kind: str) -> np.ndarray:
    """``to_data_units`` by the run's (shift, scale) (``runs.run.preprocessing``; None: as they are)."""
    x = x.detach().float().cpu()
    if norm is not None and kind != "image":  # standardised features and series: undo it
        return (x / norm[1] + norm[0]).numpy()
    return x.numpy()


@torch.no_grad()
def generation_grid(model: BaseModel, n: int, classes: list[int] | None,
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decoded means (R, n, *shape): one row per class in ``classes`` of the generation head
    (one row of unconditional samples when None), the same draw eps ~ N(0, I) down each column.
    Returns (grid, eps (n, [T,] D), the codes decoded (R, n, [T,] D)): eps itself, or where the
    model has class latents, eps placed in each row's class mixture (models/latents.py)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, *model.prior_shape, generator=g)  # (n, [T,] D)
    head = generation_head(model)
    if not classes or head is None:
        return model.generate(on(model, z)).cpu()[None], z, z[None]
    rows, codes = [], []
    for k in classes:
        c = {head.name: on(model, torch.full((n,), k, dtype=torch.long))}
        rows.append(model.generate(on(model, z), c).cpu())
        codes.append(model.class_codes(on(model, z), c).cpu())
    return torch.stack(rows), z, torch.stack(codes)


def _rows_figure(model: BaseModel, grid: torch.Tensor, labels: list[str], title: str, data: ArrayData | None,
                 channel_names: list[str] | None, sweep: bool = False, col_labels: list[str] | None = None) -> Figure:
    """Rows of decoded samples (R, N, *shape), drawn as the data's kind asks."""
    if is_image(model):
        return image_grid_figure(grid.clamp(0, 1).numpy(), title, row_labels=labels, col_labels=col_labels)
    if model.spec.kind == "sequence":
        values = to_data_units(grid.flatten(0, 1), data, model.spec.kind).reshape(*grid.shape)
        return sequence_panels_figure(values, labels, title, channel_names, sweep=sweep)
    return series_figure(grid.numpy(), labels, title, sweep=sweep, names=channel_names)  # standardised features


def generate_figure(model: BaseModel, n: int = 10, only_class: int | None = None, seed: int = 0,
                    data: ArrayData | None = None, channel_names: list[str] | None = None) -> Figure:
    """Paper Figures 2 and 3: rows = classes of the generation head, columns = one z each
    (style fixed down a column); unconditional samples for a model without such a head."""
    head = generation_head(model)
    class_names = list(head.classes) if head is not None else []
    classes = [only_class] if only_class is not None else (list(range(len(class_names))) if head else None)
    grid, eps, codes = generation_grid(model, n, classes, seed)
    placed = not torch.equal(codes[0], eps)  # the draws moved into each class's region of z
    title = "samples" if not classes else ("class " + class_names[classes[0]] if len(classes) == 1
                                           else "one row per class, the same draw down each column" +
                                           (" (placed in each class's region of z)" if placed else ""))
    if is_image(model) and len(grid) == 1 and n > 16:
        return image_grid_figure(square_rows(grid.clamp(0, 1).numpy()), title)
    labels = [class_names[k] for k in classes] if classes else (None if is_image(model) else ["unconditional"])
    return _rows_figure(model, grid, labels, title, data, channel_names)


@torch.no_grad()
def kl_per_dim(model: BaseModel, x: torch.Tensor, mask: torch.Tensor | None = None) -> np.ndarray:
    """Mean KL(q(z_d | x) || N(0, 1)) per latent dimension over the batch: (D,)."""
    inf = model.inference(on(model, x), on(model, mask), sample=False)
    kl = (0.5 * (inf.mu.pow(2) + inf.logvar.exp() - 1.0 - inf.logvar)).cpu()  # (B, [T,] D)
    return (mean_steps(kl, mask) if kl.dim() == 3 else kl).mean(0).numpy()


@torch.no_grad()
def traversal_grid(model: BaseModel, x0: torch.Tensor, dims: list[int], values: torch.Tensor,
                   mask0: torch.Tensor | None = None) -> torch.Tensor:
    """(len(dims), V, *shape): row i sweeps z[dims[i]] over ``values``, the other dimensions
    fixed at the code of ``x0`` (1, *shape), each head's class at its predicted one."""
    inf = model.inference(on(model, x0), on(model, mask0), sample=False)
    y0 = {name: (mean_steps(torch.softmax(v, -1), on(model, mask0)) if v.dim() == 3 else v).argmax(-1).repeat(len(values))
          for name, v in inf.logits.items()}  # each head's predicted class (per-step heads: over the valid steps)
    rows = []
    for d in dims:
        z = inf.mu.expand(len(values), *inf.mu.shape[1:]).clone()  # (V, [T,] D)
        z[..., d] = on(model, values).view(-1, *([1] * (z.dim() - 2)))
        rows.append(model.decode(z, y0 or None).cpu())
    return torch.stack(rows)


def rank_dims(model: BaseModel, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[list[int], np.ndarray]:
    """Latent dimensions by decreasing mean KL over ``x`` (unused ones last), and the KLs."""
    kl = kl_per_dim(model, x, mask)
    return [int(d) for d in np.argsort(-kl, kind="stable")], kl


def traverse_figure(model: BaseModel, x: torch.Tensor, index: int = 0, span: float = 3.0, steps: int = 9,
                    max_dims: int | None = None, data: ArrayData | None = None,
                    mask: torch.Tensor | None = None, channel_names: list[str] | None = None,
                    dim_factors: dict[int, str] | None = None) -> Figure:
    """One row per latent dimension, ranked by mean KL over ``x`` (unused ones last), each
    swept over [-span, span] with the others at the code of ``x[index]``; ``dim_factors``
    names the factor each dimension captures best (from ``semivae disentangle``)."""
    order, kl = rank_dims(model, x, mask)
    order = order[: max_dims or len(order)]
    values = torch.linspace(-span, span, steps)
    grid = traversal_grid(model, x[index:index + 1], order, values, None if mask is None else mask[index:index + 1])
    labels = [f"z{d} (KL {kl[d]:.2f})" + (f": {dim_factors[d]}" if dim_factors and d in dim_factors else "")
              for d in order]
    title = f"latent traversals of point {index}, z_d from {-span:g} to {span:g}, ranked by KL"
    return _rows_figure(model, grid, labels, title, data, channel_names, sweep=True,
                        col_labels=[f"{v:.1f}" for v in values.tolist()])


@torch.no_grad()
def reconstructions_figure(model: BaseModel, x: torch.Tensor, data: ArrayData | None = None,
                           mask: torch.Tensor | None = None, channel_names: list[str] | None = None) -> Figure:
    """Images: input row over reconstruction row. Features: mean absolute error per feature.
    Sequences: input against reconstruction per channel, a row per series (the first four)."""
    rec = model.reconstruct(on(model, x), on(model, mask)).cpu()
    if model.spec.kind == "sequence":
        n = min(4, len(x))
        lengths = np.full(n, x.shape[1]) if mask is None else steps(mask)[:n].sum(1).numpy()
        units = [to_data_units(v[:n], data, "sequence") for v in (x, rec)]
        if mask is not None and mask.dim() == 3:  # missing values: gaps in the input's line
            units[0] = np.where(mask[:n].numpy(), units[0], np.nan)
        return sequence_reconstructions_figure(*units, lengths, channel_names)
    if is_image(model):
        return image_grid_figure(torch.stack([x, rec]).clamp(0, 1).numpy(), "inputs (top) and reconstructions",
                                 row_labels=["input", "reconstruction"])
    err = np.abs(x.numpy() - rec.numpy()).mean(0)  # (F,) standardised: comparable across features' units
    fig = new_figure(max(4.0, 0.25 * len(err) + 1.5), 3.0 + (1.0 if channel_names else 0.0))
    ax = fig.add_subplot()
    ax.bar(np.arange(len(err)), err)
    ax.set(xlabel="feature", ylabel="mean |input - reconstruction|\n(feature standard deviations)",
           title=wrapped(f"reconstruction error per feature ({len(x)} points)", fig))
    _feature_ticks(ax, len(err), channel_names)
    return fig


def _feature_ticks(ax, n: int, names: list[str] | None) -> None:
    """Feature names under the x axis, where the data has them."""
    if names and len(names) == n:
        ax.set_xticks(np.arange(n), names, rotation=90, fontsize="small")


def series_figure(values: np.ndarray, row_labels: list[str], title: str, sweep: bool = False,
                  names: list[str] | None = None) -> Figure:
    """Non-image rows (R, N, F) of standardised features: one panel per row, its N vectors
    overlaid over the features (named on the axis where ``names`` are given)."""
    R, N, F = values.shape[:3]
    fig = new_figure(max(5.5, 0.15 * F + 3.0), 1.6 * R + 0.6 + (1.0 if names else 0.0))  # room for the labels
    axes = fig.subplots(R, 1, squeeze=False, sharex=True)[:, 0]
    colours = colormaps["viridis"](np.linspace(0, 1, N)) if sweep else [None] * N
    for ax, rows, label in zip(axes, values, row_labels):
        for v, c in zip(rows, colours):
            ax.plot(np.arange(F), v.reshape(-1), color=c, alpha=0.9 if sweep else 0.5, lw=1)
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
    axes[-1].set_xlabel(wrapped("feature, standardised (0: the training mean, 1: one standard deviation above)", fig))
    _feature_ticks(axes[-1], F, names)
    fig.suptitle(wrapped(title, fig))
    return fig
