"""``semivae embed RUN INPUT``: the latent representation of new inputs, for other tools.

Per input: the mean and log-variance of q(z|x) (``mu``, ``logvar``: (N, D), or (N, T, D)
for per-step latents of sequences), each class head's probabilities pi (calibrated where
the run has temperatures), and the row's id. Written as ``.npz`` (arrays, no pickle) or
``.csv`` (one row per input: row, id, z_0.., logvar_0.., p_<class>..).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ..data import ArrayData
from ..errors import UserError
from ..models import model_device
from ..runs import Run, as_run
from .evaluation import read_inputs, row_ids
from .outputs import apply_temperature, model_outputs

FORMATS = (".npz", ".csv")


def _outputs(run: Run, data: ArrayData) -> dict:
    """The model's class probabilities and q(z|x) on ``data``, in one pass; refuses a model
    without a latent."""
    out = model_outputs(run.model, data, device=model_device(run.model), elbo=False, latent=True)
    if "mu" not in out and len(data):
        raise UserError(f"run {run.path} ({run.config.model.model}) has no latent q(z|x), which embed and suggest "
                        "read; use a run of a model that has one (semivae, m2, m1m2, pspec, adgm, sdgm)")
    return out


def latent(run: Run, data: ArrayData) -> tuple[np.ndarray, np.ndarray]:
    """(mu, logvar) of q(z|x) for every row of ``data``: (N, D) or (N, T, D) each."""
    out = _outputs(run, data)
    return out["mu"].astype(np.float32), out["logvar"].astype(np.float32)


def embed(run: Run | str | Path, inputs, device: str | None = None) -> dict[str, np.ndarray]:
    """{"mu", "logvar", "proba/<head>" (N, K_h) per head, "classes/<head>", "ids"} for ``inputs``
    (a path of the training formats, an array or a data frame)."""
    run = as_run(run, device)
    data = read_inputs(run, inputs)
    out = _outputs(run, data)
    emb: dict[str, np.ndarray] = {"mu": out["mu"].astype(np.float32), "logvar": out["logvar"].astype(np.float32),
                                  "ids": np.asarray(row_ids(data), dtype=str)}
    for h in run.model.heads:
        p = out["proba"][h.name]
        emb[f"proba/{h.name}"] = apply_temperature(p / p.sum(1, keepdims=True), run.temperatures.get(h.name, 1.0))
        emb[f"classes/{h.name}"] = np.asarray(h.classes, dtype=str)
    return emb


def check_format(out: str | Path) -> str:
    """The suffix of ``semivae embed --out``, .npz or .csv, or a one-line error."""
    suffix = Path(out).suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"--out {out} must end in {' or '.join(FORMATS)}; e.g. --out z.npz")
    return suffix


def embedding_bytes(emb: dict[str, np.ndarray], out: str | Path) -> bytes:
    """The file ``semivae embed --out`` writes, by the suffix of ``out`` (.npz or .csv)."""
    if check_format(out) == ".npz":
        buf = io.BytesIO()
        np.savez(buf, **{k.replace("/", "_"): v for k, v in emb.items()})
        return buf.getvalue()
    mu, logvar = emb["mu"], emb["logvar"]
    if mu.ndim != 2:
        raise UserError(f"this run has per-step latents {mu.shape[1:]}, which a CSV row cannot hold; use --out z.npz")
    heads = [k.split("/", 1)[1] for k in emb if k.startswith("proba/")]
    several = len(heads) > 1
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    header = ["row", "id"] + [f"z_{j}" for j in range(mu.shape[1])] + [f"logvar_{j}" for j in range(mu.shape[1])]
    for h in heads:
        header += [f"p_{c}" + (f"/{h}" if several else "") for c in emb[f"classes/{h}"]]
    w.writerow(header)
    for i in range(len(mu)):
        row = [i, emb["ids"][i]] + [f"{v:.6g}" for v in mu[i]] + [f"{v:.6g}" for v in logvar[i]]
        for h in heads:
            row += [f"{v:.6g}" for v in emb[f"proba/{h}"][i]]
        w.writerow(row)
    return text.getvalue().encode()
