"""Building blocks shared by the model families: activations, norms, init."""

from __future__ import annotations

import torch
from torch import nn

N_CLASSES = 10  # digits 0-9 (and the 10 classes of Fashion-MNIST, KMNIST)


def n_labels(cfg) -> int:
    """How many classes G and D are conditioned on: the digits, the k-means clusters, or none."""
    return cfg.n_classes if cfg.conditional else (cfg.clusters or 0)


def activation(name: str) -> nn.Module:
    return {
        "relu": lambda: nn.ReLU(),
        "leaky_relu": lambda: nn.LeakyReLU(0.2),
        "elu": lambda: nn.ELU(),
        "gelu": lambda: nn.GELU(),
        "silu": lambda: nn.SiLU(),
        "tanh": lambda: nn.Tanh(),
    }[name]()


def norm1d(name: str, features: int) -> nn.Module:
    if name == "batch":
        return nn.BatchNorm1d(features)
    if name == "layer":
        return nn.LayerNorm(features)
    return nn.Identity()


def norm2d(name: str, channels: int) -> nn.Module:
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "layer":  # LayerNorm over (C, H, W) without knowing H, W: GroupNorm with one group
        return nn.GroupNorm(1, channels)
    return nn.Identity()


def maybe_spectral(layer: nn.Module, d_norm: str) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) keeps D's layers 1-Lipschitz."""
    if d_norm == "spectral":
        return nn.utils.parametrizations.spectral_norm(layer)
    return layer


def init_weights(module: nn.Module, scheme: str) -> None:
    """dcgan: conv/linear weights ~ N(0, 0.02), norm scales ~ N(1, 0.02) (Radford et al. 2015)."""
    if scheme != "dcgan":
        return
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(w, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif (
            isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm))
            and m.weight is not None
        ):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def to_unit_interval(x: torch.Tensor) -> torch.Tensor:
    """G's output in [-1, 1] -> images in [0, 1]: float32, clamped (the same arithmetic everywhere)."""
    return x.float().add(1).mul(0.5).clamp(0, 1)


def to_image(x: torch.Tensor, channels: int = 1) -> torch.Tensor:
    """(N, C * 784) -> (N, C, 28, 28)."""
    return x.view(x.shape[0], channels, 28, 28)
