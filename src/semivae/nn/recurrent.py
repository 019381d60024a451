"""Recurrent encoder and decoder for sequences (paper Table 15 at its preset sizes).

Encoder, per step t of x (B, T, C): a dense layer (hidden[0], ReLU), an LSTM or GRU
(``rnn_hidden``, optionally bidirectional), a dense layer (hidden[-1], ReLU). Padded steps
are never read (the forward direction runs over the series as they lie, the backward one over
each series reversed within its length; what the padded steps then hold is masked out), so a
sequence's code does not depend on how much padding its batch has. On a CPU this trains a third
faster than packing the sequences (docs/benchmarks.md section 6), and it is the same code the
ONNX graph runs. Missing values (a (B, T, C) mask) are read as the data holds them
(interpolated between the observed ones, data/sequences.py). The encoder returns either one
feature per step, (B, T, H) (``per_step``: the paper's latent and pi per time step), or their
mean over the valid steps, (B, H) (a sequence-level latent and pi).

Decoder: a sequence-level code (B, D) is repeated at every step; a per-step code is (B, T, D).
Per step: a dense layer (hidden[-1], ReLU), a unidirectional LSTM or GRU, a dense layer
(hidden[0], ReLU), and a linear output of the likelihood's parameters per channel. Being
unidirectional, a real step's output never depends on the padding after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..masks import steps
from .dropout import Dropout

CELLS: dict[str, type[nn.Module]] = {"lstm": nn.LSTM, "gru": nn.GRU}


@dataclass(frozen=True)
class RecurrentOptions:
    """What the recurrent family reads from ``[arch]``."""

    hidden: list[int]  # widths of the per-step dense layers before and after the recurrent one
    rnn_hidden: int
    cell: str = "lstm"
    bidirectional: bool = False
    sequence_latent: str = "pooled"  # pooled | per-step
    dropout: float = 0.0
    step_features: int = 0  # sinusoidal features of the step index given to the decoder with the code


def _widths(opts: RecurrentOptions) -> tuple[int, int]:
    if not opts.hidden:
        raise ValueError("the recurrent family needs --hidden with one or two widths (before, after the recurrent layer)")
    return opts.hidden[0], opts.hidden[-1]


def _step_dense(n_in: int, n_out: int, dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(n_in, n_out), nn.ReLU()]
    if dropout > 0:
        layers.append(Dropout(dropout))
    return nn.Sequential(*layers)


class RecurrentEncoder(nn.Module):
    """x (B, T, C) [mask (B, T) or (B, T, C)] -> h (B, H), or (B, T, H) with ``per_step``."""

    has_feature_maps = False

    def __init__(self, data_shape: tuple[int, ...], opts: RecurrentOptions):
        super().__init__()
        if len(data_shape) != 2:
            raise ValueError(f"the recurrent encoder reads sequences (T, C), got shape {data_shape}")
        before, after = _widths(opts)
        self.pre = _step_dense(data_shape[1], before)
        self.rnn = CELLS[opts.cell](before, opts.rnn_hidden, batch_first=True, bidirectional=opts.bidirectional)
        self.post = _step_dense(opts.rnn_hidden * (2 if opts.bidirectional else 1), after, opts.dropout)
        self.per_step = opts.sequence_latent == "per-step"
        self.out_features = after

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = steps(mask)  # (B, T) valid steps (padding is never read: it comes after them)
        h = self.pre(x)  # (B, T, before)
        out = self.rnn(h)[0] if mask is None else self.unpacked(h, mask.sum(1).clamp(min=1))  # (B, T, rnn)
        h = self.post(out)  # (B, T, after)
        if self.per_step:
            return h
        if mask is None:
            return h.mean(1)
        m = mask[..., None].to(h.dtype)  # (B, T, 1)
        return (h * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, after) mean over the valid steps

    def unpacked(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The recurrent layer over each series' first ``lengths`` (B,) steps, without packing: the
        forward direction reads the series as they lie (a valid step never reads a later one);
        the backward one reads each series reversed within its length, so that it starts at the
        last valid step, and its outputs are reversed back. Each direction runs once.
        (B, T, rnn): on the valid steps what packed sequences give; the padded steps hold other values."""
        if not self.rnn.bidirectional:
            return self.rnn(h)[0]  # (B, T, rnn)
        t = torch.arange(h.shape[1], device=h.device)[None, :]
        flip = (lengths[:, None] - 1 - t).clamp(min=0)[..., None]  # (B, T, 1) step t <-> length - 1 - t; padding 0
        back = self.direction(h.gather(1, flip.expand(-1, -1, h.shape[2])), "_reverse")  # (B, T, half)
        return torch.cat([self.direction(h, ""), back.gather(1, flip.expand(-1, -1, self.rnn.hidden_size))], -1)

    def direction(self, h: torch.Tensor, suffix: str) -> torch.Tensor:
        """One direction of the (one-layer, bidirectional) recurrent layer run forward over h:
        the forward weights (``suffix`` "") or the backward ones ("_reverse"). (B, T, half)."""
        r = self.rnn
        weights = [getattr(r, f"{name}_l0{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        state = h.new_zeros(1, h.shape[0], r.hidden_size)  # (1, B, half)
        # (input, state, weights, has_biases, layers, dropout, train, bidirectional, batch_first), as nn.LSTM calls it
        if isinstance(r, nn.LSTM):
            return torch.lstm(h, (state, state), weights, True, 1, 0.0, self.training, False, True)[0]
        return torch.gru(h, state, weights, True, 1, 0.0, self.training, False, True)[0]


class RecurrentDecoder(nn.Module):
    """code (B, D) or (B, T, D) -> likelihood parameters (B, T, C), or (B, P, T, C) for a
    likelihood with P parameters per value."""

    def __init__(self, in_features: int, data_shape: tuple[int, ...], opts: RecurrentOptions, n_params: int = 1):
        super().__init__()
        before, after = _widths(opts)
        self.steps, self.channels, self.n_params = data_shape[0], data_shape[1], n_params
        self.step_features = opts.step_features
        self.pre = _step_dense(in_features + self.step_features, after, opts.dropout)
        self.rnn = CELLS[opts.cell](after, opts.rnn_hidden, batch_first=True)
        self.post = _step_dense(opts.rnn_hidden, before)
        self.out = nn.Linear(before, n_params * self.channels)

    def forward(self, code: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        if code.dim() == 2:  # a sequence-level code, the same input at every step
            code = code[:, None, :].expand(-1, steps or self.steps, -1)
        B, T, _ = code.shape
        if self.step_features:
            code = torch.cat([code, step_encoding(T, self.step_features, code)[None].expand(B, -1, -1)], -1)
        h = self.post(self.rnn(self.pre(code))[0])  # (B, T, before)
        out = self.out(h)  # (B, T, P * C)
        if self.n_params == 1:
            return out
        return out.view(B, T, self.n_params, self.channels).movedim(2, 1)  # (B, P, T, C)


def step_encoding(steps: int, features: int, like: torch.Tensor) -> torch.Tensor:
    """Sinusoids of the step index (as in Vaswani et al. 2017): (T, features)."""
    t = torch.arange(steps, device=like.device, dtype=like.dtype)[:, None]
    freq = torch.exp(-torch.arange(0, features, 2, device=like.device, dtype=like.dtype) * (4.0 / features))
    angles = t * freq  # (T, features / 2)
    return torch.cat([angles.sin(), angles.cos()], -1)[:, :features]
