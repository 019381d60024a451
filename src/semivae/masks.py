"""What a batch's mask says, read in one place (data, nn and objectives all read it).

A mask marks the real entries of x (B, *shape):

- None: every entry is real;
- (B, T) bool: the valid steps of padded sequences (the rest is padding);
- (B, D) bool: the observed features of vectors with missing ones;
- (B, T, C) bool: the observed values of sequences with missing ones (padding is False too).

Entry-wise readers (likelihoods) broadcast it to x with :func:`entries`; step-wise readers
(the recurrent layer, per-step latents and heads) take the valid steps from :func:`steps`;
encoders zero what :func:`unread` marks unread (a series' missing values hold an interpolation,
which its encoder reads; a vector's hold the mean, which its encoder reads as 0).
"""

from __future__ import annotations

import torch


def within(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, T) bool: the steps within each series' length, from ``lengths`` (B,): a step mask."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]


def entries(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``mask`` (B, ...) as ``like``'s dtype, shaped to broadcast over ``like`` (B, ...): a step
    mask (B, T) against (B, T, C) becomes (B, T, 1)."""
    return mask.view(*mask.shape, *([1] * (like.dim() - mask.dim()))).to(like.dtype)


def steps(mask: torch.Tensor | None) -> torch.Tensor | None:
    """The valid steps (B, T) of a sequence mask: a (B, T) mask as it is; for (B, T, C), every
    step up to the last one holding an observed value (a step whose channels are all missing
    inside a series is still a step of it)."""
    if mask is None or mask.dim() == 2:
        return mask
    seen = mask.any(-1)  # (B, T)
    t = torch.arange(1, mask.shape[1] + 1, device=mask.device)
    last = (seen * t).amax(1)  # (B,) the number of steps through the last observed one
    return t[None, :] <= last[:, None]


def unread(mask: torch.Tensor | None) -> torch.Tensor | None:
    """What an encoder reads, True, and zeroes, False: a (B, T, C) mask's valid steps (B, T); any
    other mask as it is."""
    return steps(mask) if mask is not None and mask.dim() == 3 else mask
