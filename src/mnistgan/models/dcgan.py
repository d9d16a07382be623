"""Convolutional G and D after Radford et al. 2015, sized for 28x28 (7 -> 14 -> 28)."""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .dropout import Dropout
from .layers import activation, maybe_spectral, n_labels, norm2d

DEFAULT_WIDTH = 64
DEFAULT_D_DEPTH = 2  # conv layers of D (3 adds a stride-1 conv)


class DCGANGenerator(nn.Module):
    """z (N, z_dim) -> Linear -> (2w, 7, 7) -> ConvT -> (w, 14, 14) -> ConvT -> (C, 28, 28), Tanh."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        w = cfg.g_width or DEFAULT_WIDTH
        bias = cfg.g_norm != "batch"  # a bias before BatchNorm is cancelled by its mean
        self.fc = nn.Linear(cfg.z_dim + n_labels(cfg), 2 * w * 7 * 7, bias=bias)
        self.net = nn.Sequential(
            norm2d(cfg.g_norm, 2 * w),
            activation(cfg.g_activation),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=bias),
            norm2d(cfg.g_norm, w),
            activation(cfg.g_activation),
            nn.ConvTranspose2d(w, cfg.channels, 4, 2, 1),
            nn.Tanh(),
        )
        self.w = w

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(z.shape[0], 2 * self.w, 7, 7))


class DCGANDiscriminator(nn.Module):
    """(C, 28, 28) -> Conv s2 -> (w, 14, 14) -> Conv s2 -> (2w, 7, 7) [-> Conv -> (4w, 7, 7)]
    -> Linear -> logit."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        w = cfg.d_width or DEFAULT_WIDTH
        sn, norm = cfg.d_norm, ("none" if cfg.d_norm == "spectral" else cfg.d_norm)

        def block(conv: nn.Module, channels: int, first: bool = False) -> list[nn.Module]:
            layers = [maybe_spectral(conv, sn)]
            if not first:
                layers.append(norm2d(norm, channels))
            layers.append(activation(cfg.d_activation))
            if cfg.dropout > 0:
                layers.append(Dropout(cfg.dropout))
            return layers

        layers = block(nn.Conv2d(cfg.channels, w, 4, 2, 1), w, first=True) + block(
            nn.Conv2d(w, 2 * w, 4, 2, 1), 2 * w
        )
        out_ch = 2 * w
        if (cfg.d_depth or DEFAULT_D_DEPTH) == 3:
            layers += block(nn.Conv2d(2 * w, 4 * w, 3, 1, 1), 4 * w)
            out_ch = 4 * w
        self.net = nn.Sequential(*layers)
        self.fc = maybe_spectral(nn.Linear(out_ch * 7 * 7, 1), sn)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C * 7 * 7): what the last layer (and a projection D's embedding) reads."""
        return self.net(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x)).squeeze(1)
