"""The capabilities a model may declare besides the contract (models/base.py): each a Protocol
that a model with the matching attribute honours (``heads``, ``has_decoder``,
``has_importance_weights``, ``n_targets``)."""

from __future__ import annotations

from typing import Protocol

import torch


class ClassifierHeads(Protocol):
    """Models with ``heads``."""

    def predict_proba(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """head -> (B, K_h) class probabilities."""


class Decoder(Protocol):
    """Models with ``has_decoder``."""

    latent_dim: int  # the size of the z that ``inference`` returns and ``decode`` takes
    prior_shape: tuple[int, ...]  # the shape of one z ~ N(0, I) that ``generate`` takes

    def elbo_terms(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                   sample: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """One-sample (log p(x | .), KL) per point: two (B,) tensors; ``sample=False`` puts
        every latent at its mean: deterministic, one point's value independent of its batch."""

    def decode(self, z: torch.Tensor, classes: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Mean of p(x | z, classes) for a q-space z: (B, *shape); missing heads are uniform."""

    def generate(self, z: torch.Tensor, classes: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Mean of p(x | z, classes) for a prior-space z: (B, *shape)."""

    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of p(x | z = mean of q(z|x), its classes): (B, *shape)."""


class ImportanceWeights(Protocol):
    """Models with ``has_importance_weights``."""

    def log_weights(self, x: torch.Tensor, k: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x, latents_s) - log q(latents_s | x) for k samples: (k, B)."""


class Regressor(Protocol):
    """Models with ``n_targets > 0``."""

    def predict_targets(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of q(r|x) in standardised units: (B, R)."""
