"""Model registry: a family name -> its G and D classes and its default widths and depths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from torch import nn

from ..config import ModelConfig, custom_model_spec
from . import dcgan, mlp
from .conditioning import ClusterG, ConditionalG, ProjectionD, Unconditional
from .cpu_formulations import TrainingDCGANDiscriminator, TrainingDCGANGenerator
from .custom import Classes, adapt_instances, build_custom
from .layers import init_weights, n_labels
from .vae import VAEDecoder, VAEEncoder, VAETrainingDecoder


@dataclass(frozen=True)
class Family:
    generator: type[nn.Module]
    discriminator: type[nn.Module]  # the VAE's encoder sits in this slot
    defaults: dict[str, int]  # g_width, d_width, g_depth, d_depth when the config leaves them unset
    # subclasses with the same weights and faster CPU training formulations (cpu_formulations.py)
    training_generator: Optional[type[nn.Module]] = None
    training_discriminator: Optional[type[nn.Module]] = None


DCGAN_DEFAULTS = {
    "g_width": dcgan.DEFAULT_WIDTH,
    "d_width": dcgan.DEFAULT_WIDTH,
    "d_depth": dcgan.DEFAULT_D_DEPTH,
}
REGISTRY: dict[str, Family] = {
    "mlp": Family(
        mlp.MLPGenerator,
        mlp.MLPDiscriminator,
        {
            "g_width": mlp.DEFAULT_WIDTH,
            "d_width": mlp.DEFAULT_WIDTH,
            "g_depth": mlp.DEFAULT_DEPTH,
            "d_depth": mlp.DEFAULT_DEPTH,
        },
    ),
    "dcgan": Family(
        dcgan.DCGANGenerator,
        dcgan.DCGANDiscriminator,
        DCGAN_DEFAULTS,
        TrainingDCGANGenerator,
        TrainingDCGANDiscriminator,
    ),
    "vae": Family(VAEDecoder, VAEEncoder, DCGAN_DEFAULTS, VAETrainingDecoder),
}


def default_of(model: str, name: str) -> Optional[int]:
    """The family's default for a width or depth field left unset (None where it has none)."""
    family = REGISTRY.get(model)
    return family.defaults.get(name) if family else None


def build_generator(cfg: ModelConfig, training: bool = False) -> nn.Module:
    """G(z, labels=None) -> (N, 1, 28, 28) in [-1, 1]; labels are used only when cfg.conditional.

    training: the subclass with CPU training formulations where the family has one (same weights)."""
    family = REGISTRY[cfg.model]
    g = (training and family.training_generator or family.generator)(cfg)
    init_weights(g, cfg.init)
    if cfg.clusters:
        return ClusterG(g, cfg.clusters)
    return ConditionalG(g, cfg.n_classes) if cfg.conditional else Unconditional(g)


def build_discriminator(cfg: ModelConfig, training: bool = False) -> nn.Module:
    """D(x, labels=None) -> logits (N,)."""
    family = REGISTRY[cfg.model]
    d = (training and family.training_discriminator or family.discriminator)(cfg)
    init_weights(d, cfg.init)
    return ProjectionD(d, cfg) if n_labels(cfg) else Unconditional(d)


@dataclass
class Built:
    """The G and D of a run, what was adapted to fit the loop (your own classes), and where they came from."""

    G: nn.Module
    D: nn.Module
    notes: list[str]
    classes: Optional[Classes] = None  # your own classes (--model FILE.py:G,D)


def build_models(
    cfg: ModelConfig, training: bool = False, instances: Optional[tuple] = None, source_copy=None
) -> Built:
    """G and D for a config: a family of the registry, your own classes (--model FILE.py:G,D), or
    module instances (mnistgan.train(generator=..., discriminator=...)). source_copy: the copy of
    FILE.py that a resumed run falls back on."""
    if instances is not None:
        return Built(*adapt_instances(*instances, cfg))
    if custom_model_spec(cfg.model):
        G, D, notes, classes = build_custom(cfg, source_copy)
        return Built(G, D, notes, classes)
    return Built(build_generator(cfg, training), build_discriminator(cfg, training), [])


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
