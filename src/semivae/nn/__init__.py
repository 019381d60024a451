"""Encoder/decoder blocks behind one interface, chosen by name.

Every encoder maps x (B, *shape) [and an optional mask (semivae/masks.py)] -> h (B,
encoder.out_features), or (B, T, out_features) when ``encoder.per_step``; every decoder maps a
code (B, D_in) [or (B, T, D_in)] -> likelihood parameters (B, *shape), or (B, P, *shape) for a
likelihood with P parameters per value, [for ``steps`` steps of a sequence]. ``ARCHS`` is the
registry ``--arch`` reads: each family names its encoder, decoder, the options it reads from
``[arch]`` and the data kinds it accepts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from torch import nn

from .config import ArchConfig
from .conv import ConvDecoder, ConvEncoder, ConvOptions
from .dense import DenseDecoder, DenseEncoder, DenseOptions, mlp
from .dropout import Dropout
from .init import INITS
from .recurrent import RecurrentDecoder, RecurrentEncoder, RecurrentOptions


@dataclass(frozen=True)
class Arch:
    encoder: type[nn.Module]
    decoder: type[nn.Module]
    options: type  # the dataclass of the options the family reads
    kinds: tuple[str, ...]  # data kinds it accepts (semivae.data.KINDS)


ARCHS: dict[str, Arch] = {
    "dense": Arch(DenseEncoder, DenseDecoder, DenseOptions, ("image", "vector", "sequence")),
    "conv": Arch(ConvEncoder, ConvDecoder, ConvOptions, ("image",)),
    "recurrent": Arch(RecurrentEncoder, RecurrentDecoder, RecurrentOptions, ("sequence",)),
}


def decoder_family(arch: ArchConfig) -> str:
    """The decoder's family: ``--decoder-arch`` where given, else ``--arch``."""
    return arch.decoder_arch or arch.arch


def arch_options(arch: ArchConfig, family: str | None = None):
    """The options of ``family`` (default ``--arch``'s), picked out of the flat ``[arch]`` section."""
    klass = ARCHS[family or arch.arch].options
    return klass(**{f.name: getattr(arch, f.name) for f in fields(klass)})


def make_encoder(arch: ArchConfig, data_shape: tuple[int, ...]) -> nn.Module:
    return ARCHS[arch.arch].encoder(data_shape, arch_options(arch))


def make_decoder(arch: ArchConfig, in_features: int, data_shape: tuple[int, ...], n_params: int = 1) -> nn.Module:
    family = decoder_family(arch)
    return ARCHS[family].decoder(in_features, data_shape, arch_options(arch, family), n_params)


__all__ = ["ARCHS", "Arch", "ArchConfig", "ConvDecoder", "ConvEncoder", "ConvOptions", "DenseDecoder", "DenseEncoder",
           "DenseOptions", "Dropout", "INITS", "RecurrentDecoder", "RecurrentEncoder", "RecurrentOptions",
           "arch_options", "decoder_family", "make_decoder", "make_encoder", "mlp"]
