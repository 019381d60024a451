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
import torch

from ..data import ArrayData
from ..errors import UserError
from ..models import model_device
from ..runs import Run, as_run
from .evaluation import read_inputs, row_ids
from .outputs import apply_temperature

FORMATS = (".npz", ".csv")


@torch.no_grad()
def latent(run: Run, data: ArrayData, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(mu, logvar) of q(z|x) for every row of ``data``: (N, D) or (N, T, D) each."""
    model, dev = run.model, model_device(run.model)
    mus, logvars = [], []
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)))
        mask = data.mask(idx)
        inf = model.inference(data.inputs(idx).to(dev), None if mask is None else mask.to(dev), sample=False)
        if inf.mu is None:
            raise UserError(f"run {run.path} ({run.config.model.model}) has no latent q(z|x) to embed with; "
                            "embed with a run of a model that has one (semivae, m2, m1m2, pspec)")
        mus.append(inf.mu.float().cpu())
        logvars.append(inf.logvar.float().cpu())
    return torch.cat(mus).numpy(), torch.cat(logvars).numpy()


def embed(run: Run | str | Path, inputs, device: str | None = None) -> dict[str, np.ndarray]:
    """{"mu", "logvar", "proba/<head>" (N, K_h) per head, "classes/<head>", "ids"} for ``inputs``
    (a path of the training formats, an array or a data frame)."""
    run = as_run(run, device)
    data = read_inputs(run, inputs)
    mu, logvar = latent(run, data)
    out: dict[str, np.ndarray] = {"mu": mu, "logvar": logvar, "ids": np.asarray(row_ids(data), dtype=str)}
    if run.model.heads:
        dev = model_device(run.model)
        with torch.no_grad():
            parts: dict[str, list] = {h.name: [] for h in run.model.heads}
            for start in range(0, len(data), 1024):
                idx = torch.arange(start, min(start + 1024, len(data)))
                mask = data.mask(idx)
                for name, p in run.model.predict_proba(data.inputs(idx).to(dev),
                                                       None if mask is None else mask.to(dev)).items():
                    parts[name].append(p.double().cpu())
        for h in run.model.heads:
            p = torch.cat(parts[h.name]).numpy()
            out[f"proba/{h.name}"] = apply_temperature(p / p.sum(1, keepdims=True), run.temperatures.get(h.name, 1.0))
            out[f"classes/{h.name}"] = np.asarray(h.classes, dtype=str)
    return out


def embedding_bytes(emb: dict[str, np.ndarray], suffix: str) -> bytes:
    """The file ``semivae embed --out`` writes, by its suffix (.npz or .csv)."""
    if suffix not in FORMATS:
        raise UserError(f"--out must end in {' or '.join(FORMATS)}; e.g. --out z.npz")
    if suffix == ".npz":
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
