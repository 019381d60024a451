"""Fit and write a run's feature bank (models/neighbours.py): its training points as the encoder
sees them, for the ``knn`` anomaly score.

``fit_feature_bank(run)`` encodes the run's training split (at most ``MAX_POINTS``, a seeded
subsample beyond) and, for a run ``semivae feedback`` wrote, the false positives it was given
(normal points by the user's word, so an input like one of them is no longer far from the bank),
keeps the unit-norm top encoder layer of each point in half precision and
writes ``RUN/feature_bank.safetensors``. ``semivae anomaly`` calls it before scoring, so the bank
always matches the weights it scores with (a ``feedback`` run refits its own).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as safetensors_bytes

from ..atomic import write_atomic
from ..data.dataset import ArrayData
from ..models import BaseModel, model_device
from ..models.neighbours import MAX_POINTS, FeatureBank, unit_features
from ..runs import Run, as_run
from ..runs.run import FEATURE_BANK
from .evaluation import read_inputs


@torch.no_grad()
def top_features(model: BaseModel, data: ArrayData, batch_size: int = 1024) -> torch.Tensor | None:
    """Unit-norm top encoder layer of every point of ``data``: (N, H), or None where the layer
    is not one vector per point (a per-step sequence encoder)."""
    model.eval()
    dev, parts = model_device(model), []
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)))
        mask = data.mask(idx)
        h = model.inference(data.inputs(idx).to(dev), None if mask is None else mask.to(dev), sample=False).h
        if h.dim() != 2:
            return None
        parts.append(unit_features(h).cpu())  # (B, H)
    return torch.cat(parts) if parts else None


def fit_feature_bank(run: Run | str | Path, *, data_dir: str | None = None, seed: int = 0,
                     device: str | None = None) -> FeatureBank | None:
    """Fit, write and attach the run's feature bank; None where the model has no per-point top
    layer (see ``top_features``)."""
    run = as_run(run, device)
    data = run.split_data("train", data_dir)
    if len(data) > MAX_POINTS:
        keep = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:MAX_POINTS]
        data = data.take(keep.sort().values)
    feedback = run.path / "feedback.npz"
    if feedback.is_file():
        with np.load(feedback) as f:
            if "false_positives" in f.files:  # as stored, NaN where a value was missing; series with their lengths
                marked = read_inputs(run, {"x": f["false_positives"], "lengths": f.get("false_positives_lengths")})
                data = data.append(marked, torch.full((len(data) + len(marked), data.labels.shape[1]), -1))
    features = top_features(run.model, data)
    if features is None or not len(features):
        return None
    bank = FeatureBank(features.half())
    write_atomic(run.path / FEATURE_BANK, safetensors_bytes(bank.tensors()))
    run.model.feature_bank = bank
    return bank
