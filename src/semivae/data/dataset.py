"""In-memory data: compact tensors, batches gathered by index.

Images stay ``uint8`` until a batch is taken; ``batch(idx)`` converts only the rows it
gathers, so the training loop never runs per-sample Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ArrayData:
    """N samples of one shape, with labels (-1 = unlabelled).

    ``batch(idx)`` returns ``(x[idx].float() - shift) * scale``: for uint8 images
    ``shift=0, scale=1/255`` maps pixels into [0, 1]; for tabular features ``shift`` and
    ``scale`` hold a per-feature standardisation fitted on the training split.
    """

    x: torch.Tensor  # (N, *shape), uint8 or float32
    y: torch.Tensor  # (N,) int64, -1 = unlabelled
    shift: torch.Tensor | float = 0.0
    scale: torch.Tensor | float = 1.0
    t: torch.Tensor | None = None  # (N, T) float32 continuous targets, standardised; NaN = unobserved

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} rows but y has {self.y.shape[0]}")
        if self.t is not None and self.t.shape[0] != self.x.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} rows but t has {self.t.shape[0]}")

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. (1, 28, 28) or (D,)."""
        return tuple(self.x.shape[1:])

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        """Float32 inputs for the rows ``idx``: (B, *shape)."""
        return (self.x[idx].float() - self.shift) * self.scale

    def to(self, device: torch.device | str) -> "ArrayData":
        """The same data with every tensor on ``device``."""
        def move(v):
            return v.to(device) if isinstance(v, torch.Tensor) else v
        return ArrayData(self.x.to(device), self.y.to(device), move(self.shift), move(self.scale), move(self.t))

    def take(self, idx: torch.Tensor | slice, y: torch.Tensor | None = None) -> "ArrayData":
        """The rows ``idx`` (optionally with other labels ``y``), same normalisation."""
        t = None if self.t is None else self.t[idx]
        return ArrayData(self.x[idx], self.y[idx] if y is None else y, self.shift, self.scale, t)


@dataclass
class DataBundle:
    """What a loader returns: a train and a test split, and what the data is.

    ``kind`` is ``"image"`` (x is (N, C, H, W), values mapped into [0, 1] by ``batch``) or
    ``"tabular"`` (x is (N, D) float32). ``likelihood`` is the natural default for the
    data: ``"bernoulli"`` for images, ``"gaussian"`` for tabular features.
    """

    name: str
    train: ArrayData
    test: ArrayData
    classes: list[str]
    kind: str  # "image" | "tabular"
    likelihood: str = "bernoulli"
    meta: dict = field(default_factory=dict)  # e.g. {"source": path, "feature_names": [...]}

    @property
    def n_classes(self) -> int:
        return len(self.classes)
