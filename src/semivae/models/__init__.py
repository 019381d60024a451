"""Model registry: ``--model NAME`` picks a class; every class honours models.base."""

from __future__ import annotations

from torch import nn

from ..config import ArchConfig, ModelConfig
from ..errors import UserError
from .base import Inference, LossTerms, ModelSpec, Stage
from .m2 import M1M2, M2
from .pspec import PartiallySpecifiedVAE
from .semivae import MODES, SemiVAE

MODELS: dict[str, type[nn.Module]] = {
    "semivae": SemiVAE,  # Berkhahn et al. 2019 (and, by --mode, its VAE and classifier siblings)
    "m2": M2,  # Kingma et al. 2014
    "m1m2": M1M2,  # Kingma et al. 2014, stacked
    "pspec": PartiallySpecifiedVAE,  # Siddharth et al. 2017
}


def build_model(spec: ModelSpec, arch: ArchConfig, cfg: ModelConfig) -> nn.Module:
    if cfg.model not in MODELS:
        raise UserError(f"unknown model {cfg.model!r}; choose one of {sorted(MODELS)}")
    if cfg.mode not in MODES:
        raise UserError(f"unknown mode {cfg.mode!r}; choose one of {sorted(MODES)}")
    if cfg.model != "semivae" and cfg.mode != "semi":
        raise UserError(f"--mode {cfg.mode} applies to --model semivae only; drop --mode or use --model semivae")
    return MODELS[cfg.model](spec, arch, cfg)


def stages(model: nn.Module, epochs: int) -> list[Stage]:
    """The model's training stages; one stage of ``epochs`` unless the model declares more."""
    return model.stages(epochs) if hasattr(model, "stages") else [Stage("train", model, epochs)]


__all__ = ["MODELS", "MODES", "Inference", "LossTerms", "ModelSpec", "PartiallySpecifiedVAE", "SemiVAE",
           "Stage", "build_model", "stages"]
