"""The contract every model honours, so the trainer and evaluators stay generic.

A model is an ``nn.Module`` with:

- ``inference(x) -> Inference``: the inference model q, evaluated on a batch;
- ``generative(z, pi) -> params``: the generative model p(x | ...), as likelihood parameters;
- ``loss(x, y, labelled) -> LossTerms``: the training objective on a batch, as named terms;
- ``predict_proba(x) -> (B, K)`` when ``has_classifier``;
- ``elbo_terms(x) -> (log p(x|.), KL)`` and ``log_weights(x, k) -> (k, B)`` (for the IWAE
  bound) when ``has_decoder``;
- optionally ``stages(epochs) -> [Stage]`` when training runs in steps (M1, then M2);
  each stage's module honours this contract itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Inference:
    """What q produces for a batch. Absent parts (no decoder / no classifier) are None."""

    h: torch.Tensor  # (B, H) top encoder layer
    mu: torch.Tensor | None = None  # (B, D)
    logvar: torch.Tensor | None = None  # (B, D)
    z: torch.Tensor | None = None  # (B, D) reparameterised sample
    logits: torch.Tensor | None = None  # (B, K) class logits; pi = softmax(logits)


@dataclass
class LossTerms:
    """Named terms of one batch's objective. ``total`` is minimised; the rest is logged.

    ``recon`` is the mean negative log-likelihood per point (nats), ``kl`` the mean KL per
    point, ``ce`` the mean cross-entropy over the labelled points of the batch.
    """

    total: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    ce: torch.Tensor
    n_labelled: torch.Tensor  # () number of labelled points in the batch


@dataclass(frozen=True)
class ModelSpec:
    """What a model must know about the data to be built (and re-built from a run)."""

    data_shape: tuple[int, ...]
    n_classes: int
    likelihood: str
    n_targets: int = 0  # continuous supervised variables (regression targets)


@dataclass
class Stage:
    """One training stage: the trainer runs ``fit(module, ...)`` for ``epochs``."""

    name: str
    module: torch.nn.Module
    epochs: int
