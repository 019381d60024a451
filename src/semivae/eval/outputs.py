"""A model's outputs on one ArrayData, and the numbers validation and ``evaluate`` report."""

from __future__ import annotations

import numpy as np
import torch

from ..data.dataset import ArrayData
from ..models import BaseModel
from ..models.base import ModelSpec, class_probabilities
from . import metrics


def apply_temperature(proba: np.ndarray, t: float) -> np.ndarray:
    """softmax(log p / T) row-wise, (N, K) -> (N, K): temperature scaling of probabilities
    (= softmax(logits / T) for a plain softmax head; see ``calibration.py``)."""
    if t == 1.0:
        return proba
    logits = np.log(np.clip(proba, 1e-12, None)) / t
    logits -= logits.max(1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(1, keepdims=True)


@torch.no_grad()
def model_outputs(model: BaseModel, data: ArrayData, batch_size: int = 1024, device: torch.device | str = "cpu",
                  elbo: bool = True, latent: bool = False) -> dict:
    """Per-point outputs, in one pass over ``data``: ``proba`` {head: (N, K_h)} for the heads the
    model predicts; ``log_px`` and ``kl`` (N,) (one-sample ELBO terms) if it has a decoder and
    ``elbo`` is asked for; ``mu`` and ``logvar`` of q(z|x) ((N, D) or (N, T, D)) with ``latent``,
    for a model that has them; ``targets`` (N, R) (standardised) if it predicts continuous
    targets."""
    was_training = model.training
    model.eval()
    proba: dict[str, list] = {h.name: [] for h in model.heads}
    out: dict[str, list] = {"log_px": [], "kl": [], "targets": [], "mu": [], "logvar": []}
    data = data.to(device)
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)), device=device)
        x, mask = data.inputs(idx).to(device), data.mask(idx)
        mask = None if mask is None else mask.to(device)
        if model.heads or latent:
            inf = model.inference(x, mask, sample=False)  # the latents at their means
            for name, p in class_probabilities(inf.logits, mask).items():
                proba[name].append(p.float().cpu())
            if latent and inf.mu is not None:
                out["mu"].append(inf.mu.float().cpu())
                out["logvar"].append(inf.logvar.float().cpu())
        if elbo and model.has_decoder:
            log_px, kl = model.elbo_terms(x, mask)
            out["log_px"].append(log_px.float().cpu())
            out["kl"].append(kl.float().cpu())
        if model.n_targets:
            out["targets"].append(model.predict_targets(x, mask).float().cpu())
    model.train(was_training)

    def cat(v):
        return torch.cat(v).numpy().astype(np.float64)
    res: dict = {k: cat(v) for k, v in out.items() if v}
    if model.heads and len(data):
        res["proba"] = {name: cat(v) for name, v in proba.items()}
    return res


def evaluate_split(model: BaseModel, data: ArrayData, batch_size: int = 1024,
                   device: torch.device | str = "cpu", confusion: bool = False,
                   target_std: list[float] | None = None, temperatures: dict[str, float] | None = None) -> dict:
    """Per head: accuracy, log loss and expected calibration error on the points with a
    visible label (keys named by ``spec.key``: ``accuracy`` for one head, ``accuracy/<head>``
    for several); ELBO terms on all points; RMSE (in the data's units, given ``target_std``)
    and R^2 of continuous targets. A head with a fitted temperature (``temperatures``) is
    scored calibrated, with ``ece_uncalibrated`` / ``log_loss_uncalibrated`` beside.
    ``confusion`` adds each head's confusion matrix and reliability bins."""
    res: dict = {"n": len(data)}
    if not len(data):
        return res
    out = model_outputs(model, data, batch_size, device)
    if "log_px" in out:
        res["recon"] = float(-out["log_px"].mean())
        res["kl"] = float(out["kl"].mean())
        res["elbo"] = float((out["log_px"] - out["kl"]).mean())
    res.update(score_heads(model.spec, data, out.get("proba", {}), temperatures, confusion))
    if "targets" in out and data.targets is not None and (~np.isnan(data.targets.numpy())).any():
        t = data.targets.numpy()
        res["target_r2"] = metrics.r2(t, out["targets"]).tolist()
        res["target_rmse"] = (metrics.rmse(t, out["targets"]) * np.asarray(target_std or 1.0)).tolist()
    return res


def score_heads(spec: ModelSpec, data: ArrayData, proba: dict[str, np.ndarray],
                temperatures: dict[str, float] | None = None, confusion: bool = False) -> dict:
    """Per head of ``spec`` with probabilities in ``proba`` ({head: (N, K)}) and visible labels in
    ``data``: accuracy, log loss, calibration error (and the uncalibrated pair where a
    temperature is given), top-5 accuracy, with ``confusion`` the matrix and reliability bins."""
    res: dict = {}
    for f, head in enumerate(spec.heads):
        if head.name not in proba:
            continue
        y = data.labels[:, f].numpy()
        has = y >= 0
        if not has.any():
            continue
        p = proba[head.name][has]
        p = p / p.sum(1, keepdims=True)
        t = (temperatures or {}).get(head.name)
        if t is not None:
            res[spec.key("temperature", head.name)] = t
            res[spec.key("ece_uncalibrated", head.name)] = metrics.expected_calibration_error(y[has], p)
            res[spec.key("log_loss_uncalibrated", head.name)] = metrics.log_loss(y[has], p)
            p = apply_temperature(p, t)
        res[spec.key("n_labelled", head.name)] = int(has.sum())
        res[spec.key("accuracy", head.name)] = metrics.accuracy(y[has], p)
        res[spec.key("log_loss", head.name)] = metrics.log_loss(y[has], p)
        res[spec.key("ece", head.name)] = metrics.expected_calibration_error(y[has], p)
        if head.size > 5:
            res[spec.key("top5_accuracy", head.name)] = metrics.top_k_accuracy(y[has], p, 5)
        if confusion:
            res[spec.key("confusion", head.name)] = metrics.confusion_matrix(y[has], p).tolist()
            res[spec.key("reliability", head.name)] = metrics.reliability(y[has], p)
    return res
