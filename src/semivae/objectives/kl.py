"""KL divergences and the reparameterised Gaussian posterior."""

from __future__ import annotations

import math

import torch


def gaussian_kl_standard(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag(exp(logvar))) || N(0, I) ), summed over latent dims: (B, D) -> (B,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I): a differentiable sample of q(z|x). (B, D)"""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


LOG_2PI = 1.8378770664093453


def gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dim: (..., D) -> (...)."""
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dim: (..., D) -> (...)."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


def categorical_kl_uniform(logits: torch.Tensor) -> torch.Tensor:
    """KL( Cat(softmax(logits)) || uniform over K ) = log K - H: (..., K) -> (...)."""
    logq = torch.log_softmax(logits, -1)
    return (logq.exp() * logq).sum(-1) + math.log(logits.shape[-1])
