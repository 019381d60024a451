"""Model registry: ``--model NAME`` picks a class; every class honours models.base."""

from __future__ import annotations

from torch import nn

from ..config import ArchConfig, ModelConfig
from ..errors import UserError
from .base import Inference, LossTerms, ModelSpec
from .semivae import MODES, SemiVAE

MODELS: dict[str, type[nn.Module]] = {"semivae": SemiVAE}


def build_model(spec: ModelSpec, arch: ArchConfig, cfg: ModelConfig) -> nn.Module:
    if cfg.model not in MODELS:
        raise UserError(f"unknown model {cfg.model!r}; choose one of {sorted(MODELS)}")
    if cfg.mode not in MODES:
        raise UserError(f"unknown mode {cfg.mode!r}; choose one of {sorted(MODES)}")
    return MODELS[cfg.model](spec, arch, cfg)


__all__ = ["MODELS", "MODES", "Inference", "LossTerms", "ModelSpec", "SemiVAE", "build_model"]
