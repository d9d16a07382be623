"""Generators with randomised weights and running statistics for the export tests: a converter that
drops or misorders a weight fails on them (trained tiny generators draw near-flat images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from mnistgan.config import Config, ModelConfig
from mnistgan.generator.format import save_generator
from mnistgan.models import build_generator

Z_DIM = 8
VARIANTS = {  # the two families with their default (batch) norm, plus the other norms and activations
    "mlp": dict(model="mlp", g_width=8, g_depth=2),
    "dcgan": dict(model="dcgan", g_width=4),
    "mlp-layer-leaky": dict(model="mlp", g_width=8, g_depth=2, g_norm="layer", g_activation="leaky_relu"),
    "dcgan-group-gelu": dict(model="dcgan", g_width=4, g_norm="layer", g_activation="gelu"),
    "dcgan-none-silu": dict(model="dcgan", g_width=4, g_norm="none", g_activation="silu"),
    "mlp-none-elu": dict(model="mlp", g_width=8, g_depth=1, g_norm="none", g_activation="elu"),
}


def make_run(root: Path, **model) -> Path:
    """A run folder holding only generator/, with randomised norm weights and running stats
    (so a converter that drops or misorders them fails)."""
    mc = ModelConfig(z_dim=Z_DIM, **model)
    torch.manual_seed(0)
    G = build_generator(mc)
    if mc.clusters:  # uneven cluster sizes, so the thresholds differ from the defaults
        G.set_cluster_sizes(torch.arange(1, mc.clusters + 1))
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
            if isinstance(m, (nn.Linear, nn.ConvTranspose2d)):
                m.weight.normal_(0, 0.3)  # larger than the N(0, 0.02) init so tanh is not ~0 everywhere
    save_generator(G, Config(model=mc), root / "generator")
    return root


def random_z(n: int, seed: int = 7) -> np.ndarray:
    return np.random.RandomState(seed).normal(size=[n, Z_DIM]).astype(np.float32)
