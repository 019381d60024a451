"""--weight-init: Keras' Glorot-uniform weights and zero biases in every dense and conv layer."""

import math

import pytest
import torch
from torch import nn

from semivae.errors import UserError
from semivae.models import build_model
from semivae.nn import ArchConfig
from semivae.nn.init import LAYERS
from tests.conftest import model_config, spec


def _layers(model):
    return [m for m in model.modules() if isinstance(m, LAYERS)]


def _glorot_bound(layer) -> float:
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(layer.weight)
    return math.sqrt(6 / (fan_in + fan_out))


@pytest.mark.parametrize("arch", ["dense", "conv"])
def test_glorot_gives_zero_biases_and_weights_within_the_glorot_bound(arch):
    torch.manual_seed(0)
    a = ArchConfig(arch=arch, hidden=[32], channels=[4, 8], fc=16, latent_dim=2, weight_init="glorot")
    layers = _layers(build_model(spec((1, 8, 8), 3), a, model_config("semivae")))
    assert len(layers) >= 5
    for layer in layers:
        assert layer.bias is None or torch.count_nonzero(layer.bias) == 0
        bound = _glorot_bound(layer)
        assert layer.weight.abs().max() <= bound
        # uniform on (-bound, bound): the largest of many draws sits near the bound
        assert layer.weight.numel() < 50 or layer.weight.abs().max() > 0.8 * bound


def test_torch_default_keeps_pytorchs_initialisation():
    torch.manual_seed(0)
    a = ArchConfig(hidden=[32], latent_dim=2)
    layers = _layers(build_model(spec((1, 8, 8), 3), a, model_config("semivae")))
    assert all(torch.count_nonzero(layer.bias) > 0 for layer in layers)
    first = layers[0]  # 64 -> 32: PyTorch's bound 1/sqrt(64), below Glorot's sqrt(6/96)
    assert first.weight.abs().max() <= 1 / 8


def test_unknown_scheme_is_a_user_error():
    with pytest.raises(UserError, match="--weight-init"):
        ArchConfig(weight_init="he").validate()
