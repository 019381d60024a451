"""Evaluate a model on one ArrayData: the numbers validation and ``evaluate`` both report."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.dataset import ArrayData
from . import metrics


@torch.no_grad()
def model_outputs(model: nn.Module, data: ArrayData, batch_size: int = 1024,
                  device: torch.device | str = "cpu") -> dict[str, np.ndarray]:
    """Per-point outputs: ``proba`` (N, K) if the model classifies; ``log_px`` and ``kl``
    (N,) (one-sample ELBO terms) if it has a decoder; ``targets`` (N, T) (standardised) if
    it predicts continuous targets."""
    was_training = model.training
    model.eval()
    out: dict[str, list] = {"proba": [], "log_px": [], "kl": [], "targets": []}
    regresses = getattr(model, "T", 0) > 0
    data = data.to(device)
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)), device=device)
        x = data.batch(idx)
        if model.has_classifier:
            out["proba"].append(model.predict_proba(x).float().cpu())
        if model.has_decoder:
            log_px, kl = model.elbo_terms(x)
            out["log_px"].append(log_px.float().cpu())
            out["kl"].append(kl.float().cpu())
        if regresses:
            out["targets"].append(model.predict_targets(x).float().cpu())
    model.train(was_training)
    return {k: torch.cat(v).numpy().astype(np.float64) for k, v in out.items() if v}


def evaluate_split(model: nn.Module, data: ArrayData, batch_size: int = 1024,
                   device: torch.device | str = "cpu", confusion: bool = False,
                   target_std: list[float] | None = None) -> dict:
    """Accuracy and log loss on the points with a visible label, ELBO terms on all points,
    RMSE (in the data's units, given ``target_std``) and R^2 of continuous targets."""
    res: dict = {"n": len(data)}
    if not len(data):
        return res
    out = model_outputs(model, data, batch_size, device)
    if "log_px" in out:
        res["recon"] = float(-out["log_px"].mean())
        res["kl"] = float(out["kl"].mean())
        res["elbo"] = float((out["log_px"] - out["kl"]).mean())
    y = data.y.numpy()
    has = y >= 0
    if "proba" in out and has.any():
        p = out["proba"][has]
        p = p / p.sum(1, keepdims=True)
        res["n_labelled"] = int(has.sum())
        res["accuracy"] = metrics.accuracy(y[has], p)
        res["log_loss"] = metrics.log_loss(y[has], p)
        if confusion:
            res["confusion"] = metrics.confusion_matrix(y[has], p).tolist()
    if "targets" in out and data.t is not None and (~np.isnan(data.t.numpy())).any():
        t = data.t.numpy()
        res["target_r2"] = metrics.r2(t, out["targets"]).tolist()
        res["target_rmse"] = (metrics.rmse(t, out["targets"]) * np.asarray(target_std or 1.0)).tolist()
    return res
