"""Convolutional encoder and transposed-convolution decoder (paper Table 14 at its preset).

Encoder: 3x3 convs (channels[i], strides[i]) each with [BN] + ReLU, flatten, FC ``fc`` with
[BN] + ReLU + [dropout]. Decoder: FC to the encoder's last feature map with [BN] + ReLU +
[dropout], reshape, 3x3 transposed convs mirroring the encoder's channels (layer i outputs
the channels that fed encoder layer L-1-i, the last keeps channels[0]) with the strides in the
encoder's order (Table 14 applies the stride-2 layer last in both), then a 1x1 conv to the
data's channels, cropped to the data's height and width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .dropout import Dropout


@dataclass(frozen=True)
class ConvOptions:
    """What the conv family reads from ``[arch]``."""

    channels: list[int]
    strides: list[int]
    fc: int
    dropout: float = 0.0
    batch_norm: bool = True


def _norm_act(layers: list[nn.Module], n: int, batch_norm: bool, dims: int) -> None:
    if batch_norm:
        layers.append(nn.BatchNorm2d(n) if dims == 2 else nn.BatchNorm1d(n))
    layers.append(nn.ReLU())


class ConvEncoder(nn.Module):
    """x (B, C, H, W) -> h (B, fc)."""

    per_step = False
    has_feature_maps = True  # ``features(x)`` -> (B, C', H', W'), ``feature_shape``

    def __init__(self, data_shape: tuple[int, ...], opts: ConvOptions):
        super().__init__()
        channels, strides, fc, dropout, batch_norm = opts.channels, opts.strides, opts.fc, opts.dropout, opts.batch_norm
        if len(data_shape) != 3:
            raise ValueError(f"conv encoder needs image data (C, H, W), got shape {data_shape}")
        if len(channels) != len(strides):
            raise ValueError("channels and strides must have the same length")
        layers: list[nn.Module] = []
        c_in = data_shape[0]
        for c, s in zip(channels, strides):
            layers.append(nn.Conv2d(c_in, c, 3, stride=s, padding=1, bias=not batch_norm))
            _norm_act(layers, c, batch_norm, 2)
            c_in = c
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            self.feature_shape = tuple(self.features(torch.zeros(1, *data_shape)).shape[1:])  # (C', H', W')
        n_flat = self.feature_shape[0] * self.feature_shape[1] * self.feature_shape[2]
        head: list[nn.Module] = [nn.Flatten(), nn.Linear(n_flat, fc)]
        _norm_act(head, fc, batch_norm, 1)
        if dropout > 0:
            head.append(Dropout(dropout))
        self.head = nn.Sequential(*head)
        self.out_features = fc

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:
            raise ValueError("the conv encoder reads images, which have no mask")
        return self.head(self.features(x))  # (B, fc)


class ConvDecoder(nn.Module):
    """code (B, D_in) -> likelihood parameters (B, C, H, W), or (B, P, C, H, W)."""

    def __init__(self, in_features: int, data_shape: tuple[int, ...], opts: ConvOptions, n_params: int = 1):
        super().__init__()
        channels, strides, dropout, batch_norm = opts.channels, opts.strides, opts.dropout, opts.batch_norm
        c_data, h, w = data_shape
        fh, fw = h, w
        for s in strides:  # the encoder's feature map size: ceil(size / stride) per layer
            fh, fw = -(-fh // s), -(-fw // s)
        self.start_shape = (channels[-1], fh, fw)
        head: list[nn.Module] = [nn.Linear(in_features, channels[-1] * fh * fw)]
        _norm_act(head, channels[-1] * fh * fw, batch_norm, 1)
        if dropout > 0:
            head.append(Dropout(dropout))
        self.head = nn.Sequential(*head)
        layers: list[nn.Module] = []
        c_in = channels[-1]
        outs = list(reversed(channels))[1:] + [channels[0]]  # mirror: 64,32 -> 32,32 (Table 14: 64,64,64)
        for c, s in zip(outs, strides):
            layers.append(nn.ConvTranspose2d(c_in, c, 3, stride=s, padding=1, output_padding=s - 1,
                                             bias=not batch_norm))
            _norm_act(layers, c, batch_norm, 2)
            c_in = c
        layers.append(nn.Conv2d(c_in, n_params * c_data, 1))
        self.body = nn.Sequential(*layers)
        self.data_shape, self.n_params = (c_data, h, w), n_params

    def forward(self, code: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        x = self.head(code).view(-1, *self.start_shape)  # (B, C', H', W')
        x = self.body(x)[:, :, : self.data_shape[1], : self.data_shape[2]]  # (B, P * C, H, W)
        return x if self.n_params == 1 else x.reshape(x.shape[0], self.n_params, *self.data_shape)  # (B, [P,] C, H, W)
