"""Model registry: a family name -> (Generator class, Discriminator class)."""

from __future__ import annotations

from torch import nn

from ..config import ModelConfig
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .layers import init_weights
from .mlp import MLPDiscriminator, MLPGenerator

REGISTRY: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "mlp": (MLPGenerator, MLPDiscriminator),
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
}


def build_generator(cfg: ModelConfig) -> nn.Module:
    g = REGISTRY[cfg.model][0](cfg)
    init_weights(g, cfg.init)
    return g


def build_discriminator(cfg: ModelConfig) -> nn.Module:
    d = REGISTRY[cfg.model][1](cfg)
    init_weights(d, cfg.init)
    return d


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
