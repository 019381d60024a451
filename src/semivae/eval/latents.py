"""Fit and write a run's class latents (models/latents.py): where each class lives in z.

``fit_latents(run)`` encodes the run's training split (z at the mean of q(z|x)), assigns each
point pi's most probable class, fits a Gaussian mixture per class to its confident points and
writes ``RUN/class_latents.safetensors``; from then on the run's ``generate`` draws class c's
samples from class c's mixture. Training calls it at the end for models that declare a
``latent_head``; runs trained before it existed keep z ~ N(0, I).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save as safetensors_bytes

from ..atomic import write_atomic
from ..models import model_device
from ..models.latents import ClassLatents, fit_class_latents
from ..runs import Run, as_run
from ..runs.run import LATENTS
from .outputs import model_outputs


def training_codes(run: Run, data_dir: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """What the class latents are fitted to: the training split's codes mu (N, D) and the
    ``latent_head``'s probabilities (N, K)."""
    model = run.model
    out = model_outputs(model, run.split_data("train", data_dir), device=model_device(model), elbo=False, latent=True)
    return torch.from_numpy(out["mu"]), torch.from_numpy(out["proba"][model.latent_head.name])


def fit_latents(run: Run | str | Path, *, data_dir: str | None = None, device: str | None = None) -> ClassLatents | None:
    """Fit, write and attach the run's class latents; None for a model without a ``latent_head``."""
    run = as_run(run, device)
    if run.model.latent_head is None:
        return None
    latents = fit_class_latents(*training_codes(run, data_dir))
    write_atomic(run.path / LATENTS, safetensors_bytes(latents.tensors()))
    run.model.class_latents = latents
    return latents
