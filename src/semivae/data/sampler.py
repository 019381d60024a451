"""Mixed batches: labelled and unlabelled points at a fixed ratio (paper section 2.3).

An epoch is one pass over the unlabelled pool; the labelled pool is cycled through
re-shuffled permutations as often as needed (upsampled when scarce). The remainder of a
pool smaller than a batch is left for a later epoch's shuffle (drop-last), so every batch
keeps the ratio exactly. With one pool
empty (unsupervised or supervised training), batches come from the other pool alone.

The labelled pool holds the points labelled for any head. A point drawn for the unlabelled
part of a batch contributes its inputs only: :func:`mixed_batch` withholds its labels and
targets, so models read "labelled" from the labels themselves, never from batch positions.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .batch import Batch
from .dataset import ArrayData


class MixedBatchSampler:
    def __init__(self, unlabelled: torch.Tensor, labelled: torch.Tensor, batch_size: int,
                 label_ratio: float = 1.0, generator: torch.Generator | None = None):
        self.unlabelled, self.labelled = unlabelled.long(), labelled.long()
        self.generator = generator
        if len(self.unlabelled) and len(self.labelled):
            self.n_lab = min(batch_size - 1, max(1, round(batch_size * label_ratio / (1.0 + label_ratio))))
            self.n_unl = batch_size - self.n_lab
        else:
            self.n_lab = batch_size if len(self.labelled) else 0
            self.n_unl = batch_size if len(self.unlabelled) else 0
        if not len(self.unlabelled) and not len(self.labelled):
            raise ValueError("both pools are empty: nothing to train on")
        self._stream = torch.zeros(0, dtype=torch.long)  # labelled indices not yet used

    def __len__(self) -> int:
        main, per = (self.unlabelled, self.n_unl) if self.n_unl else (self.labelled, self.n_lab)
        return max(1, len(main) // per)

    def state(self) -> dict[str, torch.Tensor]:
        """Everything the next epoch's batches depend on (a checkpoint keeps it)."""
        return {"generator": self.generator.get_state(), "stream": self._stream.clone()}

    def set_state(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])
        self._stream = state["stream"].clone()

    def _perm(self, pool: torch.Tensor) -> torch.Tensor:
        return pool[torch.randperm(len(pool), generator=self.generator)]

    def _take_labelled(self, k: int) -> torch.Tensor:
        while len(self._stream) < k:
            self._stream = torch.cat([self._stream, self._perm(self.labelled)])
        out, self._stream = self._stream[:k], self._stream[k:]
        return out

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yields (unlabelled_idx (U,), labelled_idx (L,)) per step."""
        empty = torch.zeros(0, dtype=torch.long)
        steps = len(self)
        if not self.n_unl:  # supervised: plain epochs over the labelled pool
            perm = self._perm(self.labelled)
            for i in range(steps):
                yield empty, perm[i * self.n_lab: (i + 1) * self.n_lab]
            return
        perm = self._perm(self.unlabelled)
        for i in range(steps):
            unl = perm[i * self.n_unl: (i + 1) * self.n_unl]
            yield unl, (self._take_labelled(self.n_lab) if self.n_lab else empty)


def mixed_batch(data: ArrayData, unlabelled: torch.Tensor, labelled: torch.Tensor) -> Batch:
    """The batch of one sampler step (indices on ``data``'s device): the unlabelled draws, with
    their labels and targets withheld, then the labelled draws with theirs."""
    idx = torch.cat([unlabelled, labelled])
    hide = torch.arange(len(idx), device=idx.device) < len(unlabelled)
    return data.batch(idx, hide)
