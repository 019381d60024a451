"""KL divergences and the reparameterised Gaussian posterior."""

from __future__ import annotations

import torch


def gaussian_kl_standard(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag(exp(logvar))) || N(0, I) ), summed over latent dims: (B, D) -> (B,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I): a differentiable sample of q(z|x). (B, D)"""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
