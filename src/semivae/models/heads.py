"""Softmax class heads on a shared feature, one per declared head (``ModelSpec.heads``).

Each head is a linear layer to its K_h classes. Heads that feed the decoder hand their
probabilities to it (concatenated in head order); every head adds its own cross-entropy on
the points labelled for it, weighted by its alpha:

    CE_h = mean over {i : labels[i, h] >= 0} of -log softmax(W_h f_i)[labels[i, h]]

The mean is over the labelled points of the batch (0 when there are none), computed without
a host sync so a compiled step stays one graph.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..objectives.steps import mean_steps
from .base import Head, ModelSpec


class ClassHeads(nn.ModuleDict):
    """``forward(f) -> {head: logits (B, K_h)}``; parameters ``<name>.weight`` per head."""

    def __init__(self, in_features: int, heads: tuple[Head, ...]):
        super().__init__({h.name: nn.Linear(in_features, h.size) for h in heads})
        self.heads = heads
        self._register_load_state_dict_pre_hook(self._legacy_names)

    def _legacy_names(self, state_dict, prefix, *args) -> None:
        """Runs saved before heads existed hold one head as ``pi.weight``: read it as the first head."""
        if len(self.heads) == 1:
            for p in ("weight", "bias"):
                if prefix + p in state_dict:
                    state_dict[f"{prefix}{self.heads[0].name}.{p}"] = state_dict.pop(prefix + p)

    @property
    def decoder_size(self) -> int:
        """Width of the decoder input the heads provide."""
        return sum(h.size for h in self.heads if h.feeds_decoder)

    def forward(self, f: torch.Tensor) -> dict[str, torch.Tensor]:
        return {h.name: self[h.name](f) for h in self.heads}  # head -> (B, K_h)

    def decoder_input(self, logits: dict[str, torch.Tensor], mode: str = "soft", labels: torch.Tensor | None = None,
                      sample: bool = True) -> torch.Tensor | None:
        """What the decoder-fed heads hand the decoder, concatenated: (..., sum K_h), or None.

        ``mode`` (``--decoder-class``): ``soft`` (the paper's), pi itself; ``detached``, pi with
        no gradient back, so the reconstruction does not train pi; ``hard``, a class, one-hot:
        the label where ``labels`` (B, F) knows it, else a straight-through sample of pi
        (``sample``; its argmax when not), so the decoder is told a class and cannot read style
        from pi's soft values; ``labels``, pi itself where the label is unknown and the label,
        one-hot, where ``labels`` knows it (Berkhahn et al.'s eq. 4 read literally: p(x | y, z)).
        """
        parts = []
        for f, h in enumerate(self.heads):
            if not h.feeds_decoder:
                continue
            v = logits[h.name]  # (B, [T,] K)
            p = torch.softmax(v, -1)
            y = None if labels is None else labels[:, f].reshape(-1, *([1] * (v.dim() - 2))).expand(p.shape[:-1])
            if mode == "detached":
                p = p.detach()
            elif mode == "labels" and y is not None:  # y: (B, [T]), -1 where unknown
                p = torch.where((y >= 0)[..., None], F.one_hot(y.clamp(min=0), h.size).to(p.dtype), p)
            elif mode == "hard":
                idx = torch.distributions.Categorical(probs=p).sample() if sample else p.argmax(-1)  # (B, [T])
                if y is not None:
                    idx = torch.where(y >= 0, y, idx)
                one_hot = F.one_hot(idx, h.size).to(p.dtype)
                p = one_hot + p - p.detach()  # straight-through: forward one-hot, gradient of pi
            parts.append(p)
        return torch.cat(parts, -1) if len(parts) > 1 else (parts[0] if parts else None)

    def one_hot_input(self, classes: dict[str, torch.Tensor] | None, like: torch.Tensor) -> torch.Tensor | None:
        """The decoder input for given classes (B,) per head; a head not given is uniform.
        ``like`` is the z it joins, (B, D) or (B, T, D): per-step z gets the class at every step."""
        parts = []
        n = len(like)
        for h in self.heads:
            if not h.feeds_decoder:
                continue
            if classes is not None and h.name in classes:
                parts.append(F.one_hot(classes[h.name], h.size).to(like.dtype))
            else:
                parts.append(torch.full((n, h.size), 1.0 / h.size, device=like.device, dtype=like.dtype))
        if not parts:
            return None
        out = torch.cat(parts, -1) if len(parts) > 1 else parts[0]  # (B, sum K_h)
        return out[:, None, :].expand(n, like.shape[1], out.shape[-1]) if like.dim() == 3 else out

    def cross_entropy(self, logits: dict[str, torch.Tensor], labels: torch.Tensor, spec: ModelSpec,
                      weights: dict[str, float], mask: torch.Tensor | None = None) -> tuple[torch.Tensor | None, dict, dict]:
        """(sum_h weight_h * CE_h or None without heads, {term: CE_h}, {term: labelled count}).
        Per-step logits (B, T, K) give each point the mean CE over its valid steps."""
        total, terms, counts = None, {}, {}
        for f, h in enumerate(spec.heads):
            if h.name not in self:
                continue
            y = labels[:, f]  # (B,) -1 = missing
            labelled = y >= 0
            n = labelled.sum()
            v = logits[h.name]
            if v.dim() == 3:  # (B, T, K): the sequence's label at every valid step
                steps = F.cross_entropy(v.transpose(1, 2), y.clamp(min=0)[:, None].expand(-1, v.shape[1]), reduction="none")
                per_point = mean_steps(steps[..., None], mask)[:, 0]  # (B,)
            else:
                per_point = F.cross_entropy(v, y.clamp(min=0), reduction="none")  # (B,)
            ce = (per_point * labelled).sum() / n.clamp(min=1)
            weighted = weights[h.name] * ce
            total = weighted if total is None else total + weighted
            key = spec.key("ce", h.name)
            terms[key], counts[key] = ce.detach(), n
        return total, terms, counts
