"""The ``[arch]`` options: one flat section for every encoder/decoder family.

Each family reads only its own options (``DenseOptions``, ``ConvOptions``), picked out of
this section by :func:`semivae.nn.arch_options`; ``latent_dim`` belongs to the model.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError
from ..options import opt
from .init import INITS


@dataclass
class ArchConfig:
    arch: str = opt("dense", "encoder/decoder family: dense, conv or recurrent (which series get unless "
                              "told otherwise)")
    decoder_arch: str = opt("", "decoder family where it differs from --arch: --arch conv --decoder-arch dense reads "
                                "images with convolutions and draws them with the dense decoder (--hidden mirrored), "
                                "cheaper where a latent-class model decodes once per class")
    hidden: list[int] = opt([512, 256], "dense: widths of the encoder layers (decoder mirrors them); recurrent: the "
                                        "per-step dense layers before and after the recurrent one")
    channels: list[int] = opt([16, 32], "conv: channels of the encoder conv layers (decoder mirrors them)")
    strides: list[int] = opt([2, 2], "conv: stride of each conv layer (3x3 kernels)")
    fc: int = opt(128, "conv: width of the fully connected layer after the convolutions")
    rnn_hidden: int = opt(64, "recurrent: units of the LSTM / GRU layer (the dense layers around it: --hidden before,after)")
    cell: str = opt("lstm", "recurrent: lstm or gru")
    bidirectional: bool = opt(True, "recurrent: read the sequence both ways in the encoder")
    step_features: int = opt(8, "recurrent: sinusoidal features of the step index the decoder reads beside the code")
    sequence_latent: str = opt("pooled", "recurrent: pooled (one z and pi per sequence, from the mean over its valid "
                                         "steps) or per-step (a z and pi at every step, the paper's)")
    latent_dim: int = opt(16, "size of z")
    dropout: float = opt(0.5, "dropout rate after hidden layers")
    batch_norm: bool = opt(False, "batch normalisation after hidden layers")
    weight_init: str = opt("torch", "weight initialisation: torch (PyTorch's defaults) or glorot (Keras' defaults: "
                             "Glorot-uniform weights and zero biases in every dense and conv layer)")

    @property
    def any_length(self) -> bool:
        """Whether the networks read series of any length (recurrent ones; a dense net reads
        series flattened at the training length)."""
        return self.arch == "recurrent"

    def validate(self) -> None:
        """Checks of the options; each failure is a one-line UserError."""
        if self.weight_init not in INITS:
            raise UserError(f"unknown --weight-init {self.weight_init!r}; choose {' or '.join(INITS)}")
        if self.cell not in ("lstm", "gru"):
            raise UserError(f"unknown --cell {self.cell!r}; choose lstm or gru")
        if self.sequence_latent not in ("pooled", "per-step"):
            raise UserError(f"unknown --sequence-latent {self.sequence_latent!r}; choose pooled or per-step")
        if self.latent_dim < 1 or self.rnn_hidden < 1 or any(w < 1 for w in self.hidden + self.channels):
            raise UserError("--latent-dim, --rnn-hidden and every width in --hidden / --channels must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"--dropout {self.dropout} is outside [0, 1); give e.g. 0.5")
        if self.decoder_arch not in ("", self.arch) and "recurrent" in (self.arch, self.decoder_arch):
            raise UserError(f"--decoder-arch {self.decoder_arch} under --arch {self.arch}: a recurrent encoder or "
                            "decoder goes with its own family only; drop --decoder-arch")
        if "conv" in (self.arch, self.decoder_arch) and len(self.channels) != len(self.strides):
            raise UserError(f"--channels has {len(self.channels)} layer(s) but --strides {len(self.strides)}; give one "
                            f"stride per conv layer, e.g. --channels {','.join(map(str, self.channels))} --strides "
                            f"{','.join(['2'] * len(self.channels))}")
