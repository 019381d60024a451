"""``semivae impute RUN INPUT``: a table's missing cells filled in by the model.

A run trained on vectors reads around missing features (an empty or ``NA`` CSV cell, NaN in an
array): its encoder sees 0 there (the training mean, normalised) and its likelihood sums over
the observed cells. Its decoder then says what the missing cells likely held, in the data's own
units: for the default model, E[x_missing | x_observed] by self-normalised importance sampling
over ``samples`` draws of z ~ q(z | x_observed), each weighted by how well it explains the
observed cells (Mattei & Frellsen 2019's MIWAE imputation, for a VAE trained on incomplete
data; docs/benchmarks.md section 11 measures it against the next option); for other models, or
with ``samples=0``, the mean of p(x | z, pi) at the mean of q. The draws are seeded and the same
for every row, so a row's values depend on that row alone. Observed cells are kept as given.

Written as ``.csv`` or ``.npz`` (x, observed, ids). A CSV input comes back as itself, every column
and row in place, only its missing feature cells filled in; other inputs as row, id, then the
feature columns.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch

from ..data import ArrayData
from ..data.tables import blank_line
from ..errors import UserError
from ..models import model_device
from ..runs import Run, as_run
from .evaluation import read_inputs, row_ids

FORMATS = (".csv", ".npz")
SAMPLES = 100  # importance-sampling draws per row
ROWS_X_DRAWS = 65536  # a batch's rows times draws: bounds the decoder's work per pass


def check_format(out: str | Path) -> str:
    """The suffix of ``semivae impute --out``, .csv or .npz, or a one-line error."""
    suffix = Path(out).suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"--out {out} must end in {' or '.join(FORMATS)}; e.g. --out filled.csv")
    return suffix


@torch.no_grad()
def fill_in(run: Run, data: ArrayData, samples: int = SAMPLES, seed: int = 0) -> np.ndarray:
    """``data``'s rows with every missing value replaced by the model's (module docstring):
    (N, *shape) float32 in the data's units. Series too, though ``impute`` refuses them (below)."""
    if samples < 0:
        raise UserError(f"--samples {samples} must be >= 0 (0: the decoder at the mean of q)")
    if run.kind == "image":
        raise UserError(f"run {run.path} was trained on images; impute fills the missing cells of tables "
                        "(vectors of features)")
    model = run.model.eval()
    if not model.has_decoder:
        raise UserError(f"run {run.path} ({run.config.model.model}) has no decoder to fill cells with; impute with a "
                        "run of a model that has one (the default semivae, m2, sdgm, ...)")
    x, gaps = data.stored().astype(np.float32), data.gaps()
    if gaps is None:
        return x
    dev = model_device(model)
    weighted = getattr(model, "conditional_mean", None) if samples else None
    eps = torch.randn(samples, model.latent_dim, generator=torch.Generator().manual_seed(seed)).to(dev)  # (k, D)
    batch_size = max(1, ROWS_X_DRAWS // samples) if weighted else 1024
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)))
        missing = gaps[idx]  # (B, *shape)
        if not missing.any():
            continue
        x_in, mask = data.inputs(idx).to(dev), data.mask(idx).to(dev)
        recon = (weighted(x_in, mask, eps) if weighted else model.reconstruct(x_in, mask)).cpu()  # (B, *shape)
        units = recon / data.scale + data.shift  # (B, *shape) the data's units
        rows = x[start:start + len(idx)]
        rows[missing.numpy()] = units[missing].numpy()
    return x


def impute(run: Run | str | Path, inputs, samples: int = SAMPLES, device: str | None = None) -> dict[str, np.ndarray]:
    """{"x" (N, D) float32 with the missing cells filled, "observed" (N, D) bool, "ids" (N,)}
    for ``inputs`` (a .csv or .npz of the training form, an array with NaN, a data frame)."""
    run = as_run(run, device)
    if run.kind == "sequence":  # measured: docs/benchmarks.md section 11, "Missing values in series"
        raise UserError(f"run {run.path} was trained on series; impute fills tables only: in series, linear "
                        "interpolation between a channel's observed values fills gaps better than the decoder "
                        "(e.g. numpy.interp or pandas' DataFrame.interpolate)")
    data = read_inputs(run, inputs)
    return {"x": fill_in(run, data, samples), "observed": data.observed_mask().numpy(),
            "ids": np.asarray(row_ids(data), dtype=str)}


def imputed_bytes(run: Run, filled: dict[str, np.ndarray], out: str | Path, source=None) -> bytes:
    """The file ``semivae impute --out`` writes, by the suffix of ``out``; ``source`` is the input
    (a CSV comes back as itself, gaps filled)."""
    if check_format(out) == ".npz":
        buf = io.BytesIO()
        np.savez(buf, **filled)
        return buf.getvalue()
    if isinstance(source, (str, Path)) and Path(source).suffix.lower() == ".csv":
        return _csv_like(Path(source), run.data_info.get("feature_names") or [], filled)
    x = filled["x"]
    names = run.data_info.get("feature_names") or [f"x_{j}" for j in range(x.shape[1])]
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(["row", "id", *names])
    for i, (ident, row) in enumerate(zip(filled["ids"], x)):
        w.writerow([i, ident, *(f"{v:.7g}" for v in row)])
    return text.getvalue().encode()


def _csv_like(path: Path, names: list[str], filled: dict[str, np.ndarray]) -> bytes:
    """``path``'s text with each missing feature cell replaced by its filled value (rows as
    ``read_csv`` counts them: ``blank_line`` skipped, so row i is ``filled`` row i)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    header = [c.strip() for c in rows[0]]
    cols = [header.index(n) for n in names]
    data = [r for r in rows[1:] if not blank_line(r)]
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(rows[0])
    for r, x, seen in zip(data, filled["x"], filled["observed"]):
        r = list(r)
        for j in np.flatnonzero(~seen):
            r[cols[j]] = f"{x[j]:.7g}"
        w.writerow(r)
    return text.getvalue().encode()
