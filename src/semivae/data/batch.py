"""The batch every model's ``forward`` takes: inputs, masks and supervision, by meaning.

A point is labelled for head f where ``labels[:, f] >= 0``; a target is observed where it is
not NaN. Nothing depends on a point's position in the batch: the sampler decides which labels
a batch reveals (a labelled point drawn for the unlabelled half carries -1), the model reads
only these tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Batch:
    x: torch.Tensor  # (B, *shape) float32, normalised as in training
    labels: torch.Tensor  # (B, F) int64, one column per label head, -1 = missing
    targets: torch.Tensor | None = None  # (B, R) float32 continuous targets, NaN = missing
    mask: torch.Tensor | None = None  # which entries of x are real: (B, T) bool valid steps of padded sequences,
    # or (B, D) bool observed features of vectors with missing ones (filled, normalised to 0); None = all
    soft: torch.Tensor | None = None  # (B, K) a teacher's class probabilities for column 0 (--teacher); None = none

    def __len__(self) -> int:
        return self.x.shape[0]

    def labelled(self, head: int = 0) -> torch.Tensor:
        """(B,) bool: the points whose label for column ``head`` is known."""
        return self.labels[:, head] >= 0

    def to(self, device: torch.device | str) -> "Batch":
        def move(t):
            return None if t is None else t.to(device)
        return Batch(self.x.to(device), self.labels.to(device), move(self.targets), move(self.mask), move(self.soft))


def inputs_batch(x: torch.Tensor, mask: torch.Tensor | None = None, n_heads: int = 1) -> Batch:
    """A batch of inputs alone (no label known): for scoring and prediction."""
    return Batch(x, torch.full((len(x), n_heads), -1, dtype=torch.long, device=x.device), None, mask)
