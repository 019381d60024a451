"""Model registry: ``--model NAME`` picks a class and its config; every class honours models.base."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError
from ..nn import INITS, ArchConfig
from .adgm import ADGM, SDGM, ADGMConfig, SDGMConfig
from .base import (BaseModel, Head, Inference, LossOutput, Model, ModelConfig, ModelSpec, Stage, declare_heads,
                   model_device)
from .capabilities import ClassifierHeads, Decoder, ImportanceWeights, Regressor
from .classifier import Classifier, ClassifierConfig
from .m2 import M1M2, M2, M1M2Config, M2Config
from .pspec import PartiallySpecifiedVAE, PSpecConfig
from .semivae import MODES, SemiVAE, SemiVAEConfig


@dataclass(frozen=True)
class ModelEntry:
    cls: type[BaseModel]
    config: type[ModelConfig]


MODELS: dict[str, ModelEntry] = {
    "semivae": ModelEntry(SemiVAE, SemiVAEConfig),  # Berkhahn et al. 2019 (by --mode also its VAE and classifier)
    "m2": ModelEntry(M2, M2Config),  # Kingma et al. 2014
    "m1m2": ModelEntry(M1M2, M1M2Config),  # Kingma et al. 2014, stacked
    "pspec": ModelEntry(PartiallySpecifiedVAE, PSpecConfig),  # Siddharth et al. 2017
    "adgm": ModelEntry(ADGM, ADGMConfig),  # Maaloe et al. 2016: M2 with an auxiliary variable
    "sdgm": ModelEntry(SDGM, SDGMConfig),  # Maaloe et al. 2016: the auxiliary variable also feeds the decoder
    "classifier": ModelEntry(Classifier, ClassifierConfig),  # an encoder and a head: fine-tuning, the plain baseline
}


def model_entry(name: str) -> ModelEntry:
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name]


def build_model(spec: ModelSpec, arch: ArchConfig, cfg: ModelConfig) -> BaseModel:
    """The model ``cfg.model`` names, its dense and conv layers initialised by ``arch.weight_init``."""
    model = model_entry(cfg.model).cls(spec, arch, cfg)
    INITS[arch.weight_init](model)
    return model


__all__ = ["ADGM", "ADGMConfig", "MODELS", "MODES", "BaseModel", "Classifier", "ClassifierConfig", "ClassifierHeads",
           "Decoder", "Head", "ImportanceWeights", "Inference", "LossOutput", "M1M2", "M1M2Config", "M2", "M2Config",
           "Model", "ModelConfig", "ModelEntry", "ModelSpec", "PSpecConfig", "PartiallySpecifiedVAE", "Regressor",
           "SDGM", "SDGMConfig", "SemiVAE", "SemiVAEConfig", "Stage", "build_model", "declare_heads", "model_device",
           "model_entry"]
