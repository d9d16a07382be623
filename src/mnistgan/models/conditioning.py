"""How G and D take a label: not at all, the digit (--conditional) or a k-means cluster (--clusters)."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .layers import N_CLASSES, maybe_spectral, n_labels


class Unconditional(nn.Module):
    """Ignores labels, so the loop calls every model the same way."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.net(x)


class ConditionalG(nn.Module):
    """G(z, y) = G'([z, one_hot(y)]) (Mirza & Osindero 2014)."""

    def __init__(self, net: nn.Module, n_classes: int = N_CLASSES):
        super().__init__()
        self.net, self.n_classes = net, n_classes

    def forward(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        if labels is None:
            raise ValueError("a conditional generator needs labels")
        return self.net(torch.cat([z, F.one_hot(labels, self.n_classes).to(z.dtype)], dim=1))


class ClusterG(nn.Module):
    """An unconditional G(z) built from a cluster-conditional one: G(z) = G'([z, one_hot(c(z))]).

    The cluster c(z) is read off z's first coordinate: c = #{k : z_0 > t_k}, with thresholds
    t_k = Phi^-1(share of the training images in clusters 0..k), so that z ~ N(0, I) draws each
    cluster as often as it holds images. Training uses the same rule (`clusters_of`), so G sees
    the same (z, cluster) pairs in training and in sampling, and the model stays a plain
    function of z: the course snippet, `generate`, ONNX and TorchScript need nothing extra.
    """

    def __init__(self, net: nn.Module, k: int):
        super().__init__()
        self.net, self.k = net, k
        shares = torch.arange(1, k, dtype=torch.float64) / k  # equal clusters until set_cluster_sizes
        self.register_buffer("thresholds", torch.special.ndtri(shares).float())

    @torch.no_grad()
    def set_cluster_sizes(self, counts: torch.Tensor) -> None:
        cdf = counts.double().cumsum(0)[:-1] / counts.sum()
        self.thresholds.copy_(torch.special.ndtri(cdf.clamp(1e-12, 1 - 1e-12)).to(self.thresholds))

    def clusters_of(self, z: torch.Tensor) -> torch.Tensor:
        return (z[:, :1] > self.thresholds.to(z.dtype)).sum(1)

    def forward(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        c = self.clusters_of(z) if labels is None else labels
        return self.net(torch.cat([z, F.one_hot(c, self.k).to(z.dtype)], dim=1))


class ProjectionD(nn.Module):
    """D(x, y) = fc(h) + <embed(y), h>, h = features(x) (Miyato & Koyama 2018)."""

    def __init__(self, net: nn.Module, cfg: ModelConfig):
        super().__init__()
        self.net = net
        self.embed = maybe_spectral(nn.Embedding(n_labels(cfg), net.fc.in_features), cfg.d_norm)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.net.features(x)
        return self.net.fc(h).squeeze(1) + (self.embed(labels).to(h.dtype) * h).sum(1)
