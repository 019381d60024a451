"""Observation models p(x | decoder output), in one place for every model.

A likelihood turns the decoder's output ``params`` (same shape as the data, (B, *shape))
into a per-sample log-probability summed over features, a mean, and samples. A likelihood
with P > 1 parameters per value (``n_params``) takes (B, P, *shape). A ``mask`` restricts
the sum to the real entries (semivae/masks.py): the valid steps of padded sequences, the
observed values of vectors and series with missing ones; padding and missing values change no
log-probability. Models never write likelihood code themselves: they look one
up by name in ``LIKELIHOODS``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..masks import entries


def _sum_features(t: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, *shape) -> (B,), over the real entries only when ``mask`` (semivae/masks.py) is given."""
    if mask is not None:
        t = t * entries(mask, t)
    return t.flatten(1).sum(1)


class Bernoulli(nn.Module):
    """x in [0, 1]; ``params`` are logits. log p(x) = -BCE(logits, x), summed per sample."""

    n_params = 1

    def log_prob(self, x: torch.Tensor, params: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # (B,)
        if torch.onnx.is_in_onnx_export():  # the exporter's BCE is log(sigmoid): inf at logit -30 where x = 0
            bce = params.clamp(min=0) - x * params + torch.log1p(torch.exp(-params.abs()))  # the same, stable
        else:
            bce = F.binary_cross_entropy_with_logits(params, x, reduction="none")  # one fused kernel in training
        return -_sum_features(bce, mask)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(params), generator=generator)


class Gaussian(nn.Module):
    """Real-valued x; ``params`` are the means. The standard deviation is either fixed
    (``learn_scale=False``, ``sigma``) or one learned parameter per feature (per channel for
    sequences, so any length fits)."""

    n_params = 1

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


class GaussianHetero(nn.Module):
    """Real-valued x whose mean and variance the decoder produces for every value (paper
    Table 15: a linear mean and a softplus variance per step and channel): ``params`` is
    (B, 2, *shape), [mean, raw variance]; variance = softplus(raw) + ``floor``."""

    n_params = 2

    def __init__(self, floor: float = 1e-3):
        super().__init__()
        self.floor = floor

    def variance(self, params: torch.Tensor) -> torch.Tensor:
        return F.softplus(params[:, 1]) + self.floor

    def log_prob(self, x: torch.Tensor, params: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # (B,)
        var = self.variance(params)
        return _sum_features(-0.5 * ((x - params[:, 0]) ** 2 / var + torch.log(var) + math.log(2 * math.pi)), mask)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params[:, 0]

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(params[:, 0].shape, generator=generator, device=params.device)
        return params[:, 0] + noise * self.variance(params).sqrt()


# name -> factory(feature shape): "gaussian" learns a per-feature scale, "gaussian-fixed" keeps
# sigma = 1, "gaussian-hetero" has the decoder produce a variance per value
LIKELIHOODS = {
    "bernoulli": lambda shape: Bernoulli(),
    "gaussian": lambda shape: Gaussian(shape, learn_scale=True),
    "gaussian-fixed": lambda shape: Gaussian(shape, learn_scale=False),
    "gaussian-hetero": lambda shape: GaussianHetero(),
}


def n_params(name: str) -> int:
    """How many parameters per value the likelihood ``name`` reads from a decoder."""
    return LIKELIHOODS[name]((1,)).n_params


def log_prob_leading(likelihood: nn.Module, x: torch.Tensor, params: torch.Tensor,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    """``likelihood.log_prob`` of one batch x (B, *shape) under parameters with leading dims, one
    set per sample or class: (L..., B, [P,] *shape) -> (L..., B)."""
    lead = params.shape[: params.dim() - x.dim() - (likelihood.n_params > 1)]
    xs = x.expand(*lead, *x.shape).flatten(0, len(lead))
    ms = None if mask is None else mask.expand(*lead, *mask.shape).flatten(0, len(lead))
    return likelihood.log_prob(xs, params.flatten(0, len(lead)), ms).view(*lead, x.shape[0])


def make_likelihood(name: str, shape: tuple[int, ...]) -> nn.Module:
    """The likelihood ``name`` for values of ``shape`` (a sequence's channels, (C,), so that a
    learned scale fits any length)."""
    return LIKELIHOODS[name](shape)
