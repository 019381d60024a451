"""Encoder/decoder blocks behind one interface, chosen by name.

Every encoder maps x (B, *shape) -> h (B, encoder.out_features); every decoder maps a code
(B, D_in) -> likelihood parameters (B, *shape). ``ARCHS`` is the registry ``--arch`` reads.
"""

from __future__ import annotations

from dataclasses import asdict

from torch import nn

from ..config import ArchConfig
from .conv import ConvDecoder, ConvEncoder
from .dense import DenseDecoder, DenseEncoder, mlp

ARCHS: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "dense": (DenseEncoder, DenseDecoder),
    "conv": (ConvEncoder, ConvDecoder),
}


def make_encoder(arch: ArchConfig, data_shape: tuple[int, ...]) -> nn.Module:
    return ARCHS[arch.arch][0](data_shape, **asdict(arch))


def make_decoder(arch: ArchConfig, in_features: int, data_shape: tuple[int, ...]) -> nn.Module:
    return ARCHS[arch.arch][1](in_features, data_shape, **asdict(arch))


__all__ = ["ARCHS", "ConvDecoder", "ConvEncoder", "DenseDecoder", "DenseEncoder", "make_decoder", "make_encoder", "mlp"]
