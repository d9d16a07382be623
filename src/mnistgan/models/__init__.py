"""The networks: G and D per family (mlp.py, dcgan.py, vae.py), the label wrappers
(conditioning.py), the registry that builds them (registry.py) and the DCGAN's faster CPU
training formulations (cpu_formulations.py)."""

from .conditioning import ClusterG, ConditionalG, ProjectionD, Unconditional
from .registry import (
    REGISTRY,
    Built,
    build_discriminator,
    build_generator,
    build_models,
    count_params,
    default_of,
)

__all__ = [
    "REGISTRY",
    "ClusterG",
    "ConditionalG",
    "ProjectionD",
    "Unconditional",
    "Built",
    "build_discriminator",
    "build_models",
    "build_generator",
    "count_params",
    "default_of",
]
