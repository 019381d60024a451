"""Consistency regularisation of the class heads, a hook any model with heads can use.

A perturbation that should not change the class (small shifts for images, noise for feature
vectors, jitter and scaling for sequences) must not change pi either. On every point of the
batch, labelled or not (UDA, Xie et al. 2020):

    target   = softmax(logits(x) / 0.4), held fixed (no gradient), kept where max pi(x) >= tau
               (with ``--consistency-labels``: the one-hot label where it is known, always kept)
    term     = mean_i [ max pi(x_i) >= tau ] * KL(target_i || pi(perturb(x_i)))
    loss    += weight * term                      (``--consistency``, ``--consistency-threshold``)

Options, off by default (measured in docs/benchmarks.md section 11): ``temperature`` replaces
the 0.4 (0 = pi's argmax as a hard target, FixMatch); ``align`` multiplies pi(x) by the labels'
class frequencies over pi's running mean before sharpening (ReMixMatch); ``mix`` blends each
perturbed copy with another point of the batch and the two targets alike (mixup, as MixMatch);
``warp`` also bends a series' time axis (``warp_series``).
The model's hook (models/hooks.py) can also move the copy ``adversarial`` far along the
direction in which pi changes most (VAT, Miyato et al. 2018), for any data kind.

The unlabelled points thus teach the classifier directly: a confident prediction spreads to
the point's perturbed neighbours, so decision boundaries move into low-density regions.
Perturbations act on the normalised inputs the model sees and keep the padding mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .. import masks
from .steps import mean_steps

SHARPEN = 0.4  # UDA's temperature for the target distribution


def elastic_field(b: int, h: int, w: int, pixels: float, device, dtype) -> torch.Tensor:
    """A smooth random displacement per image (Simard et al. 2003): uniform noise blurred by a
    Gaussian of sigma = 4 pixels, rescaled so each image's displacements have standard deviation
    ``pixels`` per axis; both are for 28 x 28 images and scale with the image's size (8 x 8:
    sigma 1.1, 1.5 pixels -> 0.43). In grid_sample's [-1, 1] units: (B, H, W, 2)."""
    size = min(h, w) / 28
    sigma, pixels = max(1.0, 4.0 * size), pixels * size
    radius = int(math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    kernel = torch.exp(-taps ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()  # (R,)
    field = torch.rand(b * 2, 1, h, w, device=device, dtype=dtype) * 2 - 1  # (2B, 1, H, W)
    field = F.conv2d(F.pad(field, (radius, radius, 0, 0), mode="reflect" if radius < w else "replicate"),
                     kernel.view(1, 1, 1, -1))
    field = F.conv2d(F.pad(field, (0, 0, radius, radius), mode="reflect" if radius < h else "replicate"),
                     kernel.view(1, 1, -1, 1))
    field = field.view(b, 2, h, w)
    field = field / field.std(dim=(2, 3), keepdim=True).clamp(min=1e-6) * pixels  # (B, 2, H, W) pixels
    scale = torch.tensor([2.0 / w, 2.0 / h], device=device, dtype=dtype).view(1, 2, 1, 1)
    return (field * scale).permute(0, 2, 3, 1)  # (B, H, W, 2)


def affine_grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``F.affine_grid(theta, (B, C, h, w), align_corners=False)`` as broadcast multiply-adds:
    the same grid to float rounding, 10x faster on the CPU than PyTorch's batched matmul of
    (B, H*W, 3) by (B, 3, 2). theta (B, 2, 3) -> (B, H, W, 2)."""
    xs = (torch.arange(w, device=theta.device, dtype=theta.dtype) * 2 + 1) / w - 1  # (W,) pixel centres in [-1, 1]
    ys = (torch.arange(h, device=theta.device, dtype=theta.dtype) * 2 + 1) / h - 1  # (H,)
    t = theta[:, :, :, None, None]  # (B, 2, 3, 1, 1)
    grid = t[:, :, 0] * xs.view(1, 1, 1, w) + t[:, :, 1] * ys.view(1, 1, h, 1) + t[:, :, 2]  # (B, 2, H, W)
    return grid.permute(0, 2, 3, 1)  # (B, H, W, 2)


def shift_images(x: torch.Tensor, pixels: float, degrees: float = 0.0, elastic: float = 0.0,
                 flip: bool = False) -> torch.Tensor:
    """Each image moved by its own random offset of up to ``pixels`` in x and y and, with
    ``degrees``, rotated by up to that angle and scaled by up to the same fraction of 90 degrees
    (15 degrees: +-17 %) about its centre; with ``elastic``, also deformed by a smooth random field
    of that many pixels (standard deviation); with ``flip``, mirrored left-right half the time
    (bilinear, zero fill; one resampling for all of them): (B, C, H, W) -> (B, C, H, W)."""
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
    if flip:  # mirror the sampling grid's x for a random half of the images
        mirror = torch.where(torch.rand(b, device=x.device) < 0.5, -1.0, 1.0).to(x.dtype)  # (B,)
        theta[:, :, 0] = theta[:, :, 0] * mirror[:, None]
    grid = affine_grid(theta, h, w)  # (B, H, W, 2)
    if elastic > 0:
        grid = grid + elastic_field(b, h, w, elastic, x.device, x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def erase_squares(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """Cutout (DeVries & Taylor 2017): in each image, a square of side ``fraction`` of the
    image's shorter side, centred anywhere (clipped at the borders), set to 0 - the fill of the
    shifts: (B, C, H, W) -> (B, C, H, W)."""
    b, _, h, w = x.shape
    side = max(1, round(fraction * min(h, w)))
    cy = torch.randint(0, h, (b, 1, 1), device=x.device)  # (B, 1, 1)
    cx = torch.randint(0, w, (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1) - cy + side // 2  # (B, H, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w) - cx + side // 2  # (B, 1, W)
    inside = (rows >= 0) & (rows < side) & (cols >= 0) & (cols < side)  # (B, H, W)
    return x.masked_fill(inside[:, None], 0.0)


def scale_intensity(x: torch.Tensor, gain: float) -> torch.Tensor:
    """Each image's intensities times its own factor drawn from [1 - gain, 1 + gain], clipped to
    [0, 1] (a darker or brighter print of the same object; zero stays zero):
    (B, C, H, W) -> (B, C, H, W)."""
    factor = 1.0 + (torch.rand(len(x), 1, 1, 1, device=x.device, dtype=x.dtype) * 2 - 1) * gain  # (B, 1, 1, 1)
    return (x * factor).clamp(0.0, 1.0)


def jitter_series(x: torch.Tensor, noise: float) -> torch.Tensor:
    """Each sequence's channels scaled by N(1, noise^2), plus N(0, (noise/3)^2) per value:
    (B, T, C) -> (B, T, C)."""
    scale = 1.0 + noise * torch.randn(x.shape[0], 1, x.shape[2], device=x.device, dtype=x.dtype)
    return x * scale + (noise / 3) * torch.randn_like(x)


def warp_source(valid: torch.Tensor | None, b: int, t: int, strength: float, device, dtype) -> torch.Tensor:
    """Where each step of a time-warped copy reads its series: (B, T) fractional steps. Step t
    reads (u + d(u)) (L - 1), u = t / (L - 1), with d(u) = strength (a sin(pi u) + b sin(2 pi u) / 2),
    a, b ~ U(-1, 1) per series; the ends stay put, the map stays monotone for strength < 1 / (2 pi),
    and steps past a series' length L (``valid`` (B, T)) read themselves."""
    steps = torch.arange(t, device=device, dtype=dtype).expand(b, t)  # (B, T)
    last = (valid.sum(1) - 1 if valid is not None else torch.full((b,), t - 1, device=device)).to(dtype)  # (B,)
    u = (steps / last.clamp(min=1)[:, None]).clamp(max=1.0)  # (B, T): 0 -> 1 over each series
    a, c = (torch.rand(2, b, 1, device=device, dtype=dtype) * 2 - 1).unbind(0)  # (B, 1) each
    bent = u + strength * (a * torch.sin(math.pi * u) + c * torch.sin(2 * math.pi * u) / 2)
    return torch.where(steps <= last[:, None], bent.clamp(0.0, 1.0) * last[:, None], steps)


def resample(x: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """x (B, T, C) read at the fractional steps ``source`` (B, T), linearly interpolated between
    the two neighbouring steps (a step reading itself is returned exactly): (B, T, C)."""
    t = x.shape[1]
    lo = source.floor().long()  # (B, T)
    hi = (lo + 1).clamp(max=t - 1)
    both = torch.gather(x, 1, torch.cat([lo, hi], 1)[..., None].expand(-1, -1, x.shape[2]))  # (B, 2T, C)
    return torch.lerp(both[:, :t], both[:, t:], (source - lo).to(x.dtype)[..., None])


def warp_series(x: torch.Tensor, valid: torch.Tensor | None, strength: float) -> torch.Tensor:
    """Each series read along a smoothly bent time axis (``warp_source``), linearly interpolated;
    padding past each length (``valid`` (B, T)) is left as it is: (B, T, C) -> (B, T, C)."""
    return resample(x, warp_source(valid, x.shape[0], x.shape[1], strength, x.device, x.dtype))


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
    warp: float = 0.0  # sequences: time-axis bend (fraction of the length); 0 = off
    rotate: float = 0.0  # images: degrees (and the scale that goes with them)
    elastic: float = 0.0  # images: elastic deformation, pixels (standard deviation)
    flip: bool = False  # images: mirror left-right half the time
    erase: float = 0.0  # images: cutout square, as a fraction of the side
    gain: float = 0.0  # images: intensity factor in [1 - gain, 1 + gain]
    labels: bool = False  # labelled points' perturbed copies are taught their label, not pi(x)
    align: bool = False  # distribution alignment of the targets (ReMixMatch)
    mix: float = 0.0  # images and vectors: mixup's Beta(mix, mix) between points of the batch; 0 = off
    temperature: float = SHARPEN  # of the target; 0 = pi's argmax as a hard label (FixMatch)
    adversarial: float = 0.0  # any kind: L2 length of the step towards pi's steepest change (VAT); 0 = off
    momentum: float = 0.99  # align: of the running means of pi(x) and of the labels seen
    _mixing: tuple | None = field(default=None, repr=False)  # mix: the last perturb's (partner (B,), lambda (B,))
    _warping: torch.Tensor | None = field(default=None, repr=False)  # warp: the last perturb's source steps (B, T)

    def perturb(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """A perturbed copy of a batch of normalised inputs, by the data's kind (``mask``: the
        batch's mask, which bounds a series' time warp); with ``mix``, each copy is then blended
        with another point's (MixMatch: lambda ~ Beta, kept >= 0.5 so the point stays the larger
        part), which ``term`` blends the targets by in the same way."""
        self._mixing = self._warping = None
        if self.kind == "image":
            x = shift_images(x, self.shift, self.rotate, self.elastic, self.flip)
            x = erase_squares(x, self.erase) if self.erase > 0 else x
            x = scale_intensity(x, self.gain) if self.gain > 0 else x
        elif self.kind == "sequence":
            if self.warp > 0:
                self._warping = warp_source(masks.steps(mask), x.shape[0], x.shape[1], self.warp, x.device, x.dtype)
                x = resample(x, self._warping)
            return jitter_series(x, self.noise)
        else:
            x = noisy_vectors(x, self.noise)
        if self.mix > 0:
            lam = torch.distributions.Beta(self.mix, self.mix).sample((len(x),)).to(x)  # (B,)
            lam = torch.maximum(lam, 1 - lam)
            partner = torch.randperm(len(x), device=x.device)  # (B,)
            self._mixing = (partner, lam)
            lam = lam.view(-1, *([1] * (x.dim() - 1)))
            x = lam * x + (1 - lam) * x[partner]
        return x

    def aligned(self, probs: torch.Tensor, labels: torch.Tensor | None, state: torch.Tensor) -> torch.Tensor:
        """Distribution alignment (Berthelot et al. 2020, ReMixMatch): pi(x) times the class
        frequencies of the labels seen over the running mean of pi(x), renormalised, so the
        targets cannot drift towards the classes pi already favours: (B[, T], K) -> same.
        ``state`` (2, K), the running mean of pi and the labels' frequencies (all zero: not yet
        seen; the model keeps it as a buffer so a resumed run goes on with it), is updated in place."""
        k = probs.shape[-1]
        batch_mean = probs.reshape(-1, k).mean(0)  # (K,)
        seen = torch.zeros(k, device=probs.device, dtype=probs.dtype)
        if labels is not None and (labels >= 0).any():
            seen = F.one_hot(labels[labels >= 0], k).to(probs.dtype).mean(0)  # (K,)
        if not state.any():  # the first batch starts both means
            state[0] = batch_mean
            state[1] = seen if seen.sum() > 0 else torch.full_like(seen, 1.0 / k)
        m = self.momentum
        state[0] = m * state[0] + (1 - m) * batch_mean
        if seen.sum() > 0:
            state[1] = m * state[1] + (1 - m) * seen
        out = probs * (state[1] / state[0].clamp(min=1e-6))
        return out / out.sum(-1, keepdim=True)

    def term(self, logits: torch.Tensor, logits_perturbed: torch.Tensor,
             mask: torch.Tensor | None = None, labels: torch.Tensor | None = None,
             align_state: torch.Tensor | None = None) -> torch.Tensor:
        """The masked KL above, averaged over the batch: (). Per-step logits (B, T, K) are
        compared step by step and averaged over the valid steps. ``labels`` (B,), -1 = unknown,
        replace the target where known when the hook's ``labels`` is on. With ``align``, the
        head's ``align_state`` (2, K) (``aligned``) is required. After a time warp, per-step logits
        of x are read at the steps the copy's steps came from, so each step is taught by its own."""
        with torch.no_grad():
            if self._warping is not None and logits.dim() == 3:
                logits = resample(logits, self._warping)  # (B, T, K): step t of the copy is x at source t
            probs, scores = torch.softmax(logits, -1), logits  # (B[, T], K) each
            if self.align:
                probs = self.aligned(probs, labels, align_state)
                scores = torch.log(probs.clamp(min=1e-12))
            confident = probs.amax(-1) >= self.threshold  # (B[, T])
            if self.temperature > 0:
                target = torch.softmax(scores / self.temperature, -1)  # (B[, T], K)
            else:
                target = F.one_hot(scores.argmax(-1), scores.shape[-1]).to(scores.dtype)
            if self.labels and labels is not None:
                known = (labels >= 0).view(-1, *([1] * (logits.dim() - 2)))  # (B[, 1])
                one_hot = F.one_hot(labels.clamp(min=0), logits.shape[-1]).to(target.dtype)  # (B, K)
                one_hot = one_hot.view(len(labels), *([1] * (logits.dim() - 2)), -1)  # (B[, 1], K)
                target = torch.where(known[..., None], one_hot, target)
                confident = confident | known
            if self._mixing is not None:  # the blend of the two points' targets; both must teach
                partner, lam = self._mixing
                target = lam[:, None] * target + (1 - lam[:, None]) * target[partner]
                confident = confident & confident[partner]
        kl = (target * (torch.log(target.clamp(min=1e-12)) - torch.log_softmax(logits_perturbed, -1))).sum(-1)
        kl = kl * confident.to(kl.dtype)  # (B[, T])
        if kl.dim() == 2:
            kl = mean_steps(kl[..., None], mask)[:, 0]
        return kl.mean()
