"""The ``[arch]`` options: one flat section for every encoder/decoder family.

Each family reads only its own options (``DenseOptions``, ``ConvOptions``), picked out of
this section by :func:`semivae.nn.arch_options`; ``latent_dim`` belongs to the model.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..options import opt


@dataclass
class ArchConfig:
    arch: str = opt("dense", "encoder/decoder family: dense or conv")
    hidden: list[int] = opt([512, 256], "dense: widths of the encoder layers (decoder mirrors them)")
    channels: list[int] = opt([16, 32], "conv: channels of the encoder conv layers (decoder mirrors them)")
    strides: list[int] = opt([2, 2], "conv: stride of each conv layer (3x3 kernels)")
    fc: int = opt(128, "conv: width of the fully connected layer after the convolutions")
    latent_dim: int = opt(16, "size of z")
    dropout: float = opt(0.5, "dropout rate after hidden layers")
    batch_norm: bool = opt(False, "batch normalisation after hidden layers")
