"""Data with known factors of variation, and samplers the disentanglement metrics draw from.

``dsprites`` is drawn, not stored: an image is a pure function of its five factor indices
(shape 3, scale 6, orientation 40, position x 32, position y 32 at 64 x 64; Matthey et al.
2017), rendered in torch on whatever device the batch lives on, so all 737,280 combinations
are addressable and the set never sits in memory (``RenderedData`` holds factor indices only).
``dsprites-small`` is the same generator with fewer values per factor and 32 x 32 images, for
tests and CPU benchmarks. The real ``dsprites_ndarray_*.npz`` and Small-NORB's binary files
are read when a user has them.

A factor sampler (``FactorSampler``) gives the metrics what they need: ``factor_sizes``,
``sample_factors(n, rng)`` and ``observations(factors, rng)``. ``GridSampler`` serves any data
set where every combination of its factors appears (the real dSprites, Small-NORB, an
``.npz`` of such a grid): an observation for given factors is a random point with exactly them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError
from .dataset import ArrayData, DataBundle, LabelColumn


class FactorSampler(Protocol):
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, F) factor indices, each uniform over its values."""

    def observations(self, factors: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """Inputs (n, *shape), in the model's units, for the given factor indices."""


# --------------------------------------------------------------------------- dSprites


@dataclass(frozen=True)
class Sprites:
    """The dSprites generator: factor indices (B, 5) -> binary images (B, 1, size, size).

    shape: square, ellipse, heart; scale: ``scales`` values in [0.5, 1]; orientation:
    ``orientations`` angles in [0, 2 pi); position: ``positions`` values per axis, the sprite's
    centre in [0.2, 0.8] of the image."""

    size: int = 64
    scales: int = 6
    orientations: int = 40
    positions: int = 32

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return (3, self.scales, self.orientations, self.positions, self.positions)

    def render(self, factors: torch.Tensor) -> torch.Tensor:
        """(B, 5) factor indices -> (B, 1, size, size) images in {0, 1}, on the factors' device."""
        f = factors.long()
        dev = f.device
        scale = 0.5 + 0.5 * f[:, 1].float() / max(self.scales - 1, 1)
        angle = f[:, 2].float() * (2 * math.pi / self.orientations)
        cx = 2 * (0.2 + 0.6 * f[:, 3].float() / max(self.positions - 1, 1)) - 1  # in [-1, 1] image units
        cy = 2 * (0.2 + 0.6 * f[:, 4].float() / max(self.positions - 1, 1)) - 1
        r = 2 * 0.2 * scale  # half the sprite's extent, in the same units
        cos, sin = angle.cos() / r, angle.sin() / r
        theta = torch.stack([torch.stack([cos, sin, -(cos * cx + sin * cy)], 1),
                             torch.stack([-sin, cos, sin * cx - cos * cy], 1)], 1)  # (B, 2, 3): image -> sprite frame
        grid = F.affine_grid(theta, [len(f), 1, self.size, self.size], align_corners=False)  # (B, S, S, 2)
        out = torch.zeros(len(f), 1, self.size, self.size, device=dev)
        for k, template in enumerate(sprite_templates(dev)):  # one template, all its sprites in one call
            rows = (f[:, 0] == k).nonzero()[:, 0]
            if len(rows):
                flat = grid[rows].reshape(1, -1, self.size, 2)  # (1, B_k * S, S, 2)
                drawn = F.grid_sample(template[None], flat, mode="nearest", padding_mode="zeros", align_corners=False)
                out[rows] = drawn.view(len(rows), 1, self.size, self.size)
        return out


def _templates(resolution: int = 128) -> torch.Tensor:
    """The three shapes in their own frame, [-1, 1] across: (3, 1, R, R)."""
    t = (torch.arange(resolution, dtype=torch.float32) + 0.5) / resolution * 2 - 1
    v, u = torch.meshgrid(t, t, indexing="ij")
    square = (u.abs() <= 0.8) & (v.abs() <= 0.8)
    ellipse = u**2 + (v / 0.5) ** 2 <= 1.0
    hx, hy = 1.15 * u, -1.15 * v + 0.25  # the heart curve (x^2 + y^2 - 1)^3 <= x^2 y^3
    heart = (hx**2 + hy**2 - 1) ** 3 - hx**2 * hy**3 <= 0
    return torch.stack([square, ellipse, heart])[:, None].float()


_TEMPLATES: dict[str, torch.Tensor] = {}


def sprite_templates(device: torch.device) -> torch.Tensor:
    key = str(device)
    if key not in _TEMPLATES:
        _TEMPLATES[key] = _templates().to(device)
    return _TEMPLATES[key]


SPRITE_FACTORS = ("shape", "scale", "orientation", "position_x", "position_y")
SPRITE_SETS = {"dsprites": Sprites(), "dsprites-small": Sprites(size=32, scales=4, orientations=10, positions=16)}


@dataclass
class RenderedData(ArrayData):
    """Images drawn on demand: ``x`` holds each point's factor indices (N, F) and ``render``
    turns a batch of them into images on their device."""

    render: object = None  # Sprites
    sample_shape: tuple[int, ...] = field(default=())

    @property
    def shape(self) -> tuple[int, ...]:
        return self.sample_shape

    def inputs(self, idx: torch.Tensor) -> torch.Tensor:
        return self.render.render(self.x[idx])

    def to(self, device: torch.device | str) -> "RenderedData":
        return RenderedData(self.x.to(device), self.labels.to(device), render=self.render, sample_shape=self.sample_shape)

    def take(self, idx, labels: torch.Tensor | None = None) -> "RenderedData":
        return RenderedData(self.x[idx], self.labels[idx] if labels is None else labels, render=self.render,
                            sample_shape=self.sample_shape)


def load_sprites(name: str, test_fraction: float = 0.05, seed: int = 0) -> DataBundle:
    """Every combination of the generator's factors; a fixed random ``test_fraction`` is the test split."""
    sprites = SPRITE_SETS[name]
    sizes = sprites.factor_sizes
    grid = torch.cartesian_prod(*[torch.arange(s) for s in sizes])  # (prod sizes, 5)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(grid)))
    n_test = int(round(test_fraction * len(grid)))
    shape = (1, sprites.size, sprites.size)

    def part(idx):
        f = grid[idx.sort().values]
        return RenderedData(f, f.clone(), render=sprites, sample_shape=shape)
    heads = [LabelColumn(n, tuple(str(v) for v in range(s))) for n, s in zip(SPRITE_FACTORS, sizes)]
    heads[0] = LabelColumn("shape", ("square", "ellipse", "heart"))
    meta = {"source": f"{name} generator", "feature_names": None, "factor_sizes": list(sizes)}
    return DataBundle(name, part(perm[n_test:]), part(perm[:n_test]), heads, "image", "bernoulli", meta)


@dataclass
class SpriteSampler:
    """Factor sampler of the generator (every combination exists)."""

    sprites: Sprites
    factor_names: tuple[str, ...] = SPRITE_FACTORS

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return self.sprites.factor_sizes

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(0, s, n) for s in self.factor_sizes], 1)

    def observations(self, factors: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        return self.sprites.render(torch.from_numpy(np.asarray(factors)))


# ------------------------------------------------------------------- grids of real data


@dataclass
class GridSampler:
    """A data set in which every combination of the factors in ``latent`` appears: an
    observation for given factors is a random point with exactly them (the other label
    columns, e.g. Small-NORB's instance, vary at random)."""

    data: ArrayData
    factors: np.ndarray  # (N, F_all) every point's factor indices
    latent: list[int]
    names: tuple[str, ...]
    _rows: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        keys = self.factors[:, self.latent]
        sizes = keys.max(0) + 1
        codes = np.ravel_multi_index(keys.T, sizes)
        order = np.argsort(codes, kind="stable")
        bounds = np.flatnonzero(np.diff(codes[order])) + 1
        for group in np.split(order, bounds):
            self._rows[int(codes[group[0]])] = group
        self._sizes = tuple(int(s) for s in sizes)
        if len(self._rows) != int(np.prod(sizes)):
            raise UserError(f"the factors {list(self.names)} do not form a complete grid ({len(self._rows)} of "
                            f"{int(np.prod(sizes))} combinations appear); the metrics need every combination")

    @property
    def factor_names(self) -> tuple[str, ...]:
        return self.names

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return self._sizes

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(0, s, n) for s in self._sizes], 1)

    def observations(self, factors: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        codes = np.ravel_multi_index(np.asarray(factors).T, self._sizes)
        rows = np.array([rng.choice(self._rows[int(c)]) for c in codes])
        return self.data.inputs(torch.from_numpy(rows))


def bundle_sampler(bundle: DataBundle) -> FactorSampler:
    """The factor sampler of a data set with known factors (every label column a factor)."""
    if bundle.name in SPRITE_SETS:
        return SpriteSampler(SPRITE_SETS[bundle.name])
    parts = [bundle.train, bundle.test]
    labels = torch.cat([d.labels for d in parts]).numpy()
    if not len(bundle.heads) or (labels < 0).any():
        raise UserError(f"the disentanglement metrics need data whose every point has every factor label; "
                        f"{bundle.name} has {'no label columns' if not bundle.heads else 'missing labels'}; use "
                        "--dataset dsprites, dsprites-small, a dSprites or Small-NORB file, or an .npz of such a grid")
    latent = [i for i, h in enumerate(bundle.heads) if h.name not in bundle.meta.get("nuisance_factors", ())]
    if len(latent) < 2:
        raise UserError(f"the disentanglement metrics need at least two factors (label columns); {bundle.name} has "
                        f"{len(latent)}; use --dataset dsprites, dsprites-small, a dSprites or Small-NORB file, or an "
                        ".npz of a factor grid")
    data = ArrayData(torch.cat([d.x for d in parts]), torch.from_numpy(labels), parts[0].shift, parts[0].scale)
    return GridSampler(data, labels, latent, tuple(bundle.heads[i].name for i in latent))
