"""Model registry: a family name -> (Generator class, Discriminator class)."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .layers import N_CLASSES, init_weights, maybe_spectral
from .mlp import MLPDiscriminator, MLPGenerator
from .vae import VAEDecoder, VAEEncoder

REGISTRY: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "mlp": (MLPGenerator, MLPDiscriminator),
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
    "vae": (VAEDecoder, VAEEncoder),  # not a GAN: the "discriminator" slot holds the encoder
}


def build_generator(cfg: ModelConfig) -> nn.Module:
    """G(z, labels=None) -> (N, 1, 28, 28) in [-1, 1]; labels are used only when cfg.conditional."""
    g = REGISTRY[cfg.model][0](cfg)
    init_weights(g, cfg.init)
    return ConditionalG(g) if cfg.conditional else Unconditional(g)


def build_discriminator(cfg: ModelConfig) -> nn.Module:
    """D(x, labels=None) -> logits (N,)."""
    d = REGISTRY[cfg.model][1](cfg)
    init_weights(d, cfg.init)
    return ProjectionD(d, cfg) if cfg.conditional else Unconditional(d)


class Unconditional(nn.Module):
    """Ignores labels, so the loop calls every model the same way."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.net(x)


class ConditionalG(nn.Module):
    """G(z, y) = G'([z, one_hot(y)]) (Mirza & Osindero 2014)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        if labels is None:
            raise ValueError("a conditional generator needs labels")
        return self.net(torch.cat([z, F.one_hot(labels, N_CLASSES).to(z.dtype)], dim=1))


class ProjectionD(nn.Module):
    """D(x, y) = fc(h) + <embed(y), h>, h = features(x) (Miyato & Koyama 2018)."""

    def __init__(self, net: nn.Module, cfg: ModelConfig):
        super().__init__()
        self.net = net
        self.embed = maybe_spectral(nn.Embedding(N_CLASSES, net.fc.in_features), cfg.d_norm)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.net.features(x)
        return self.net.fc(h).squeeze(1) + (self.embed(labels).to(h.dtype) * h).sum(1)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
