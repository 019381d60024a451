"""In-memory data: compact tensors, batches gathered by index.

Images stay ``uint8`` until a batch is taken; ``inputs(idx)`` converts only the rows it
gathers, so the training loop never runs per-sample Python.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

from ..masks import within
from .batch import Batch

# What a data set is, asked in one place: images (N, C, H, W), vectors of features (N, D), or
# sequences (N, T, C) padded to a common length with ``lengths`` the valid steps; vectors and
# sequences with missing values carry ``observed``, the real ones.
KINDS = ("image", "vector", "sequence")
_LEGACY_KINDS = {"tabular": "vector"}  # data.json of runs written before the contract


def data_kind(name: str) -> str:
    """A kind as saved in ``data.json`` (older runs say ``tabular``) -> one of :data:`KINDS`."""
    kind = _LEGACY_KINDS.get(name, name)
    if kind not in KINDS:
        raise ValueError(f"unknown data kind {name!r}; one of {KINDS}")
    return kind


@dataclass(frozen=True)
class LabelColumn:
    """One label column of a data set: the head a model may put on it."""

    name: str
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))


@dataclass
class ArrayData:
    """N samples of one shape, with labels (-1 = missing) in one column per label head.

    ``inputs(idx)`` returns ``(x[idx].float() - shift) * scale``: for uint8 images
    ``shift=0, scale=1/255`` maps pixels into [0, 1]; for vectors ``shift`` and ``scale``
    hold a per-feature standardisation fitted on the training split.
    """

    x: torch.Tensor  # (N, *shape), uint8 or float32
    labels: torch.Tensor  # (N, F) int64, -1 = missing
    shift: torch.Tensor | float = 0.0
    scale: torch.Tensor | float = 1.0
    targets: torch.Tensor | None = None  # (N, R) float32 continuous targets, standardised; NaN = missing
    lengths: torch.Tensor | None = None  # (N,) int64 valid steps of padded sequences (x is (N, T, C))
    ids: np.ndarray | None = None  # (N,) str: the rows' names (a CSV id column, image file names), or None
    soft: torch.Tensor | None = None  # (N, K) float32 a teacher's class probabilities for column 0 (--teacher)
    observed: torch.Tensor | None = None  # (N, *shape) bool the values held (padding False); the missing ones are
    # stored filled: a vector's with the training mean (fill_missing), a series' interpolated (sequences.fill_series)

    def __post_init__(self) -> None:
        if self.labels.dim() == 1:  # one column given as a vector
            self.labels = self.labels[:, None]
        for name in ("labels", "targets", "lengths", "ids", "soft", "observed"):
            t = getattr(self, name)
            if t is not None and t.shape[0] != self.x.shape[0]:
                raise ValueError(f"x has {self.x.shape[0]} rows but {name} has {t.shape[0]}")

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. (1, 28, 28) or (D,)."""
        return tuple(self.x.shape[1:])

    def inputs(self, idx: torch.Tensor) -> torch.Tensor:
        """Float32 inputs for the rows ``idx``: (B, *shape)."""
        return (self.x[idx].float() - self.shift) * self.scale

    def mask(self, idx: torch.Tensor) -> torch.Tensor | None:
        """Which entries of the rows ``idx`` are real (semivae/masks.py): (B, D) or (B, T, C) bool
        observed values where some are missing, else (B, T) valid steps of sequences, or None."""
        if self.observed is not None:
            return self.observed[idx]
        return None if self.lengths is None else self.valid_steps(idx)

    def valid_steps(self, idx: torch.Tensor | slice = slice(None)) -> torch.Tensor:
        """(B, T) bool: the steps within the sequences' lengths, of the rows ``idx``."""
        return within(self.lengths[idx], self.x.shape[1])

    def batch(self, idx: torch.Tensor, hide: torch.Tensor | None = None) -> Batch:
        """The :class:`Batch` of rows ``idx``; ``hide`` (B,) bool withholds those rows' labels
        and targets (the sampler's unlabelled draws)."""
        labels = self.labels[idx]
        targets = None if self.targets is None else self.targets[idx]
        if hide is not None:
            labels = labels.masked_fill(hide[:, None], -1)
            if targets is not None:
                targets = targets.masked_fill(hide[:, None], float("nan"))
        return Batch(self.inputs(idx), labels, targets, self.mask(idx), None if self.soft is None else self.soft[idx])

    def to(self, device: torch.device | str) -> "ArrayData":
        """The same data with every tensor on ``device``."""
        def move(v):
            return v.to(device) if isinstance(v, torch.Tensor) else v
        return ArrayData(self.x.to(device), self.labels.to(device), move(self.shift), move(self.scale),
                         move(self.targets), move(self.lengths), self.ids, move(self.soft), move(self.observed))

    def take(self, idx: torch.Tensor | slice, labels: torch.Tensor | None = None) -> "ArrayData":
        """The rows ``idx`` (optionally with other labels), same normalisation."""
        def rows(v):
            return None if v is None else v[idx]
        ids = None if self.ids is None else self.ids[idx.cpu().numpy() if isinstance(idx, torch.Tensor) else idx]
        return ArrayData(self.x[idx], self.labels[idx] if labels is None else labels, self.shift, self.scale,
                         rows(self.targets), rows(self.lengths), ids, rows(self.soft), rows(self.observed))

    def fingerprint(self) -> dict:
        """{"n": rows, "ids": a digest of the rows' names (None without names)}: what a run's
        ``split.json`` row numbers rely on; a folder that lost, gained or moved files differs."""
        digest = None
        if self.ids is not None:
            digest = hashlib.sha256("\n".join(map(str, self.ids.tolist())).encode()).hexdigest()[:16]
        return {"n": len(self), "ids": digest}

    def observed_mask(self) -> torch.Tensor:
        """(N, *shape) bool: ``observed``, or every entry (every valid step's) where nothing is missing."""
        if self.observed is not None:
            return self.observed
        if self.lengths is None:
            return torch.ones(self.x.shape, dtype=torch.bool)
        return self.valid_steps()[..., None].expand(self.x.shape).clone()

    def gaps(self) -> torch.Tensor | None:
        """(N, *shape) bool: the missing values (padding is not missing), or None where none are."""
        if self.observed is None:
            return None
        if self.lengths is None:
            return ~self.observed
        return ~self.observed & self.valid_steps()[..., None]

    def stored(self) -> np.ndarray:
        """The rows as stored, NaN where a value is missing (as they were read)."""
        x, gaps = self.x.numpy(), self.gaps()
        return x if gaps is None else np.where(gaps.numpy(), np.nan, x).astype(x.dtype)

    def append(self, other: "ArrayData", labels: torch.Tensor) -> "ArrayData":
        """These rows then ``other``'s (inputs of the same form and normalisation), with ``labels``
        (N + M, F) for all of them; what some rows lack (targets, ids, a teacher's targets) is dropped."""
        gaps = self.observed is not None or other.observed is not None
        observed = torch.cat([self.observed_mask(), other.observed_mask()]) if gaps else None
        lengths = None if self.lengths is None or other.lengths is None else torch.cat([self.lengths, other.lengths])
        return ArrayData(torch.cat([self.x, other.x.to(self.x.dtype)]), labels, self.shift, self.scale,
                         lengths=lengths, observed=observed)


def fill_missing(x: np.ndarray, fill: np.ndarray | torch.Tensor | float) -> tuple[np.ndarray, torch.Tensor | None]:
    """Vectors (N, D) with NaN where a feature is missing -> (x with those cells set to ``fill``
    (D,), the training mean, which the normalisation maps to 0; observed (N, D) bool, or None
    where nothing is missing). Models read around the missing cells through the batch's mask."""
    missing = np.isnan(x)
    if not missing.any():
        return x, None
    fill = np.broadcast_to(np.asarray(fill.numpy() if isinstance(fill, torch.Tensor) else fill, x.dtype), x.shape)
    return np.where(missing, fill, x), torch.from_numpy(~missing)


@dataclass
class DataBundle:
    """What a loader returns: a train and a test split, and what the data is.

    ``kind`` is one of :data:`KINDS`. ``heads`` names the label columns (one for most data,
    named after its label column). ``likelihood`` is the natural default for the data:
    ``"bernoulli"`` for images, ``"gaussian"`` for real-valued features.
    """

    name: str
    train: ArrayData
    test: ArrayData
    heads: list[LabelColumn]
    kind: str  # one of KINDS
    likelihood: str = "bernoulli"
    meta: dict = field(default_factory=dict)  # e.g. {"source": path, "feature_names": [...]}
