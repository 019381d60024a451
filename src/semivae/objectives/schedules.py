"""KL-term schedules any model can use: the penalty on KL(q(z|x) || p(z)) as training goes.

``constant``  beta * KL                                   (beta-VAE; beta = 1 is the plain ELBO)
``warmup``    beta * min(1, t / warmup_epochs) * KL        (KL warm-up, linear from 0)
``capacity``  gamma * |KL - C(t)|,  C(t) = capacity_max * min(1, t / capacity_epochs)
              (controlled capacity, Burgess et al. 2018, eq. 8; per data point)

``t`` is the training progress in epochs (fractional), held in a non-persistent buffer that
the trainer fills before each step (:func:`set_progress`), so a compiled step reads it as
an input instead of re-compiling.

``LR_SCHEDULES`` are the learning-rate schedules (``--lr-schedule``): a factor of ``--lr`` at
training progress t in [0, 1] (epochs done / epochs planned), which the trainer applies per step.
A pure function of progress, so a resumed run continues on the same curve with nothing to save.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn


def _ramp(t: torch.Tensor, length: float) -> torch.Tensor:
    return (t / length).clamp(max=1.0) if length > 0 else torch.ones_like(t)


SCHEDULES: dict[str, Callable[["KLSchedule", torch.Tensor], torch.Tensor]] = {
    "constant": lambda s, kl: s.beta * kl,
    "warmup": lambda s, kl: s.beta * _ramp(s.t, s.warmup_epochs) * kl,
    "capacity": lambda s, kl: s.gamma * (kl - s.capacity()).abs(),
}


LR_SCHEDULES: dict[str, Callable[[float], float]] = {
    "constant": lambda t: 1.0,
    "cosine": lambda t: 0.5 * (1.0 + math.cos(math.pi * min(max(t, 0.0), 1.0))),  # from 1 to 0
}


class KLSchedule(nn.Module):
    """``penalty(kl)``: the scheduled KL term, (B,) -> (B,)."""

    def __init__(self, name: str = "constant", beta: float = 1.0, warmup_epochs: float = 10.0,
                 gamma: float = 1000.0, capacity_max: float = 25.0, capacity_epochs: float = 20.0):
        super().__init__()
        if name not in SCHEDULES:
            raise ValueError(f"unknown KL schedule {name!r}; choose one of {sorted(SCHEDULES)}")
        self.name, self.beta, self.warmup_epochs = name, beta, warmup_epochs
        self.gamma, self.capacity_max, self.capacity_epochs = gamma, capacity_max, capacity_epochs
        self.register_buffer("t", torch.zeros(()), persistent=False)  # epochs of training so far

    @classmethod
    def from_config(cls, cfg) -> "KLSchedule":
        return cls(cfg.kl_schedule, cfg.beta, cfg.warmup_epochs, cfg.gamma, cfg.capacity_max, cfg.capacity_epochs)

    def capacity(self) -> torch.Tensor:
        """C(t) in nats."""
        return self.capacity_max * _ramp(self.t, self.capacity_epochs)

    def weight(self) -> torch.Tensor:
        """The multiplier on KL now (for constant/warmup; capacity reports gamma)."""
        return self.penalty(torch.ones_like(self.t)) if self.name != "capacity" else self.t.new_tensor(self.gamma)

    def penalty(self, kl: torch.Tensor) -> torch.Tensor:
        return SCHEDULES[self.name](self, kl)


def set_progress(model: nn.Module, epochs: float) -> None:
    """Tell every schedule in ``model`` how far training has gone (in epochs)."""
    for m in model.modules():
        if isinstance(m, KLSchedule):
            m.t.fill_(epochs)
