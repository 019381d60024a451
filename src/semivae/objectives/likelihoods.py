"""Observation models p(x | decoder output), in one place for every model.

A likelihood turns the decoder's output ``params`` (same shape as the data, (B, *shape))
into a per-sample log-probability summed over features, a mean, and samples. For padded
sequences (B, T, ...) a ``mask`` (B, T) restricts the sum to the valid steps, so padding
changes no log-probability. Models never write likelihood code themselves: they look one
up by name in ``LIKELIHOODS``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _sum_features(t: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, *shape) -> (B,), over the valid steps only when ``mask`` (B, T) is given."""
    if mask is not None:
        t = t * mask.view(*mask.shape, *([1] * (t.dim() - 2))).to(t.dtype)
    return t.flatten(1).sum(1)


class Bernoulli(nn.Module):
    """x in [0, 1]; ``params`` are logits. log p(x) = -BCE(logits, x), summed per sample."""

    def log_prob(self, x: torch.Tensor, params: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # (B,)
        return -_sum_features(F.binary_cross_entropy_with_logits(params, x, reduction="none"), mask)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(params), generator=generator)


class Gaussian(nn.Module):
    """Real-valued x; ``params`` are the means. The standard deviation is either fixed
    (``learn_scale=False``, ``sigma``) or one learned parameter per feature."""

    def __init__(self, shape: tuple[int, ...], sigma: float = 1.0, learn_scale: bool = True):
        super().__init__()
        log_sigma = torch.full(shape, math.log(sigma))
        if learn_scale:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    def log_prob(self, x: torch.Tensor, params: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # (B,)
        log_sigma = self.log_sigma.clamp(-7.0, 5.0)
        z = (x - params) * torch.exp(-log_sigma)
        return _sum_features(-0.5 * z * z - log_sigma - 0.5 * math.log(2 * math.pi), mask)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(params.shape, generator=generator, device=params.device)
        return params + noise * torch.exp(self.log_sigma.clamp(-7.0, 5.0))


# name -> factory(shape) ; "gaussian" learns a per-feature scale, "gaussian-fixed" keeps sigma=1
LIKELIHOODS = {
    "bernoulli": lambda shape: Bernoulli(),
    "gaussian": lambda shape: Gaussian(shape, learn_scale=True),
    "gaussian-fixed": lambda shape: Gaussian(shape, learn_scale=False),
}


def make_likelihood(name: str, shape: tuple[int, ...]) -> nn.Module:
    return LIKELIHOODS[name](shape)
