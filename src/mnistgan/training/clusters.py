"""k-means pseudo-labels for cluster-conditioning (--clusters K): images only, no labels.

An unconditional G maps one connected latent space onto digits that form separate groups, so
it draws in-between shapes (a 4 melting into a 9). Conditioning G and D on clusters found
without labels removes most of them (Liu et al. 2020, "Diverse image generation via
self-conditioned GANs"; Sage et al. 2018, "Logo synthesis and manipulation with clustered
GANs"). Here the clusters are k-means on the top principal components of the pixels,
computed once before training in float64 on the CPU, so every process and every resume gets
the same labels.
"""

from __future__ import annotations

import torch

from ..errors import MnistganError

PCA_DIMS = 50
ITERATIONS = 30


@torch.no_grad()
def kmeans_labels(images: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Cluster uint8 images (N, 28, 28) into k groups; returns int64 labels (N,), every cluster non-empty."""
    n = images.shape[0]
    if n < k:
        raise MnistganError(f"--clusters {k} needs at least {k} training images, got {n}; lower --clusters")
    x = images.reshape(n, -1).to("cpu", torch.float64) / 255.0
    x -= x.mean(0)
    # principal components from the (784 x 784) covariance: cheap, and enough for k-means
    _, vecs = torch.linalg.eigh(x.T @ x)
    x = x @ vecs[:, -PCA_DIMS:]
    gen = torch.Generator().manual_seed(seed)
    centres = _kmeans_pp(x, k, gen)
    sq = (x * x).sum(1, keepdim=True)
    for _ in range(ITERATIONS):
        labels = (sq - 2 * x @ centres.T + (centres * centres).sum(1)).argmin(1)
        counts = torch.bincount(labels, minlength=k)
        sums = torch.zeros_like(centres).index_add_(0, labels, x)
        empty = counts == 0
        centres = torch.where(empty[:, None], centres, sums / counts.clamp(min=1)[:, None])
        if empty.any():  # re-seed an empty cluster at the points farthest from their centre
            far = (sq - 2 * x @ centres.T + (centres * centres).sum(1)).min(1).values.argsort(descending=True)
            centres[empty] = x[far[: int(empty.sum())]]
    labels = (sq - 2 * x @ centres.T + (centres * centres).sum(1)).argmin(1)
    # a cluster emptied by the last step cannot stay empty: G draws every cluster
    for c in torch.nonzero(torch.bincount(labels, minlength=k) == 0).flatten():
        labels[torch.randint(n, (1,), generator=gen)] = c
    return labels


def _kmeans_pp(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007)."""
    centres = [x[torch.randint(x.shape[0], (1,), generator=gen)].squeeze(0)]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        i = torch.multinomial(d2 / d2.sum(), 1, generator=gen)
        centres.append(x[i].squeeze(0))
        d2 = torch.minimum(d2, ((x - centres[-1]) ** 2).sum(1))
    return torch.stack(centres)
