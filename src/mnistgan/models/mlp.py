"""Fully connected G and D, as in the course material (widths doubling 256 -> 512 -> 1024)."""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .dropout import Dropout
from .layers import activation, maybe_spectral, n_labels, norm1d, to_image

DEFAULT_WIDTH = 256
DEFAULT_DEPTH = 3  # hidden layers of G and of D


class MLPGenerator(nn.Module):
    """z (N, z_dim) -> images (N, C, 28, 28) in [-1, 1]: [Linear, norm, act] x depth, Linear, Tanh."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        width = cfg.g_width or DEFAULT_WIDTH
        layers, fan_in = [], cfg.z_dim + n_labels(cfg)
        for i in range(cfg.g_depth or DEFAULT_DEPTH):
            out = width * 2**i
            layers += [
                nn.Linear(fan_in, out, bias=cfg.g_norm != "batch"),
                norm1d(cfg.g_norm, out),
                activation(cfg.g_activation),
            ]
            fan_in = out
        layers += [nn.Linear(fan_in, cfg.channels * 28 * 28), nn.Tanh()]
        self.channels = cfg.channels
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return to_image(self.net(z), self.channels)


class MLPDiscriminator(nn.Module):
    """images (N, C, 28, 28) -> logits (N,): [Linear, norm, act, dropout] x depth, Linear."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        width = cfg.d_width or DEFAULT_WIDTH
        layers, fan_in = [], cfg.channels * 28 * 28
        for i in reversed(range(cfg.d_depth or DEFAULT_DEPTH)):
            out = width * 2**i
            layers += [
                maybe_spectral(nn.Linear(fan_in, out), cfg.d_norm),
                norm1d(cfg.d_norm, out),
                activation(cfg.d_activation),
            ]
            if cfg.dropout > 0:
                layers.append(Dropout(cfg.dropout))
            fan_in = out
        self.net = nn.Sequential(*layers)
        self.fc = maybe_spectral(nn.Linear(fan_in, 1), cfg.d_norm)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x)).squeeze(1)
