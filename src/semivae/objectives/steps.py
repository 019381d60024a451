"""Reductions over the steps of padded sequences: only the valid steps count (``mask`` (B, T),
or (B, T, C) observed values, whose steps ``masks.steps`` reads)."""

from __future__ import annotations

import torch

from ..masks import steps


def sum_steps(t: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(..., B, T) -> (..., B): the sum over the valid steps of each sequence."""
    if mask is not None:
        t = t * steps(mask).to(t.dtype)
    return t.sum(-1)


def mean_steps(t: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(B, T, K) -> (B, K): the mean over the valid steps of each sequence."""
    if mask is None:
        return t.mean(1)
    m = steps(mask)[..., None].to(t.dtype)
    return (t * m).sum(1) / m.sum(1).clamp(min=1.0)
