"""Consistency regularisation of the class heads, a hook any model with heads can use.

A perturbation that should not change the class (small shifts for images, noise for feature
vectors, jitter and scaling for sequences) must not change pi either. On every point of the
batch, labelled or not (UDA, Xie et al. 2020):

    target   = softmax(logits(x) / 0.4), held fixed (no gradient), kept where max pi(x) >= tau
    term     = mean_i [ max pi(x_i) >= tau ] * KL(target_i || pi(perturb(x_i)))
    loss    += weight * term                      (``--consistency``, ``--consistency-threshold``)

The unlabelled points thus teach the classifier directly: a confident prediction spreads to
the point's perturbed neighbours, so decision boundaries move into low-density regions.
Perturbations act on the normalised inputs the model sees and keep the padding mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .steps import mean_steps

SHARPEN = 0.4  # UDA's temperature for the target distribution


def shift_images(x: torch.Tensor, pixels: float, degrees: float = 0.0) -> torch.Tensor:
    """Each image moved by its own random offset of up to ``pixels`` in x and y and, with
    ``degrees``, rotated by up to that angle and scaled by up to the same fraction of 90 degrees
    (15 degrees: +-17 %) about its centre (bilinear, zero fill): (B, C, H, W) -> (B, C, H, W)."""
    b, _, h, w = x.shape
    offset = (torch.rand(b, 2, device=x.device, dtype=x.dtype) * 2 - 1) * pixels  # (B, 2) pixels
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    if degrees > 0:  # no draws otherwise: shifts alone stay the same random stream as before
        angle = (torch.rand(b, device=x.device, dtype=x.dtype) * 2 - 1) * math.radians(degrees)  # (B,)
        scale = 1.0 + (torch.rand(b, device=x.device, dtype=x.dtype) * 2 - 1) * degrees / 90.0  # (B,)
        theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle) / scale, -torch.sin(angle) / scale
        theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle) / scale, torch.cos(angle) / scale
    theta[:, 0, 2], theta[:, 1, 2] = offset[:, 0] * 2 / w, offset[:, 1] * 2 / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def jitter_series(x: torch.Tensor, noise: float) -> torch.Tensor:
    """Each sequence's channels scaled by N(1, noise^2), plus N(0, (noise/3)^2) per value:
    (B, T, C) -> (B, T, C)."""
    scale = 1.0 + noise * torch.randn(x.shape[0], 1, x.shape[2], device=x.device, dtype=x.dtype)
    return x * scale + (noise / 3) * torch.randn_like(x)


def noisy_vectors(x: torch.Tensor, noise: float) -> torch.Tensor:
    """x + N(0, noise^2) per feature (features standardised, so noise is in standard deviations)."""
    return x + noise * torch.randn_like(x)


@dataclass
class Consistency:
    weight: float
    threshold: float
    kind: str  # image | vector | sequence
    shift: float  # images: pixels
    noise: float  # vectors and sequences
    rotate: float = 0.0  # images: degrees (and the scale that goes with them)

    def perturb(self, x: torch.Tensor) -> torch.Tensor:
        """A perturbed copy of a batch of normalised inputs, by the data's kind."""
        if self.kind == "image":
            return shift_images(x, self.shift, self.rotate)
        if self.kind == "sequence":
            return jitter_series(x, self.noise)
        return noisy_vectors(x, self.noise)

    def term(self, logits: torch.Tensor, logits_perturbed: torch.Tensor,
             mask: torch.Tensor | None = None) -> torch.Tensor:
        """The masked KL above, averaged over the batch: (). Per-step logits (B, T, K) are
        compared step by step and averaged over the valid steps."""
        with torch.no_grad():
            confident = torch.softmax(logits, -1).amax(-1) >= self.threshold  # (B[, T])
            target = torch.softmax(logits / SHARPEN, -1)
        kl = (target * (torch.log(target.clamp(min=1e-12)) - torch.log_softmax(logits_perturbed, -1))).sum(-1)
        kl = kl * confident.to(kl.dtype)  # (B[, T])
        if kl.dim() == 2:
            kl = mean_steps(kl[..., None], mask)[:, 0]
        return kl.mean()


def make_consistency(weight: float, threshold: float, kind: str, shift: float, noise: float,
                     rotate: float = 0.0) -> Consistency | None:
    """The hook's settings, or None when it is off (weight 0)."""
    if weight <= 0:
        return None
    return Consistency(weight, threshold, kind, shift, noise, rotate)
