"""Fully connected encoder and decoder (paper Table 13 at its preset sizes)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..masks import entries, unread
from .dropout import Dropout


@dataclass(frozen=True)
class DenseOptions:
    """What the dense family reads from ``[arch]``."""

    hidden: list[int]
    dropout: float = 0.0
    batch_norm: bool = False


def mlp(in_features: int, widths: list[int], dropout: float = 0.0, batch_norm: bool = False) -> nn.Sequential:
    """Linear -> [BatchNorm] -> ReLU -> [Dropout] for each width."""
    layers: list[nn.Module] = []
    for w in widths:
        layers.append(nn.Linear(in_features, w))
        if batch_norm:
            layers.append(nn.BatchNorm1d(w))
        layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(Dropout(dropout))
        in_features = w
    return nn.Sequential(*layers)


class DenseEncoder(nn.Module):
    """x (B, *shape) -> h (B, hidden[-1]): flatten, then an MLP. With a ``mask``, padded steps
    and a vector's missing features are zeroed first (``masks.unread``), so the
    values in padded steps and missing cells do not matter."""

    per_step = False
    has_feature_maps = False

    def __init__(self, data_shape: tuple[int, ...], opts: DenseOptions):
        super().__init__()
        self.net = mlp(math.prod(data_shape), opts.hidden, opts.dropout, opts.batch_norm)
        self.out_features = opts.hidden[-1] if opts.hidden else math.prod(data_shape)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:
            x = x * entries(unread(mask), x)  # padded steps, a vector's missing features -> 0
        return self.net(x.flatten(1))  # (B, H)


class DenseDecoder(nn.Module):
    """code (B, D_in) -> likelihood parameters (B, *shape), or (B, P, *shape) for a likelihood
    with P parameters per value: mirrored MLP, linear output."""

    def __init__(self, in_features: int, data_shape: tuple[int, ...], opts: DenseOptions, n_params: int = 1):
        super().__init__()
        widths = list(reversed(opts.hidden))
        self.net = mlp(in_features, widths, opts.dropout, opts.batch_norm)
        self.out = nn.Linear(widths[-1] if widths else in_features, n_params * math.prod(data_shape))
        self.param_shape = tuple(data_shape) if n_params == 1 else (n_params, *data_shape)

    def forward(self, code: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        if steps is not None and steps != self.param_shape[-2]:
            raise ValueError(f"the dense decoder makes {self.param_shape[-2]} steps, not {steps}")
        return self.out(self.net(code)).view(-1, *self.param_shape)  # (B, [P,] *shape)
