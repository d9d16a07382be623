"""Sample-quality metrics on classifier outputs: pure functions of features and probabilities.

Inputs are the bundled classifier's outputs for N images: `features` float (N, D) (its
penultimate layer) and `probs` float64 (N, C) (its softmax). All statistics are computed in
float64. Distances for the k-NN metrics are computed in row chunks, so 10k x 10k pairs need
about 80 MB at a time, not 800 MB.
"""

from __future__ import annotations

import contextlib
import math
from typing import Optional

import torch
from torch import nn

from ..errors import MnistganError

CONFIDENT = 0.9  # a prediction is "confident" when its top softmax probability is at least this
COVERED_SHARE = 0.01  # a class is "covered" when at least 1% of samples (a tenth of a fair share) fall in it
K_PR = 3  # k of precision/recall (Kynkaenniemi et al. 2019)
K_DC = 5  # k of density/coverage (Naeem et al. 2020)
CHUNK = 1024  # rows per distance block: (1024, 10000) float64 = 80 MB


# ----------------------------------------------------------------------------- FID


class PrecomputedFeatures(nn.Module):
    """The "feature extractor" handed to torchmetrics: features computed by the classifier already.

    The classifier runs once per image and its features serve FID, precision/recall and
    density/coverage alike; torchmetrics then does the FID bookkeeping (float64 running sums,
    covariance, the Frechet distance via eigenvalues of sigma_1 sigma_2).
    """

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features  # torchmetrics reads this instead of probing with a dummy image

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features.double()


def fid_metric(num_features: int):
    from torchmetrics.image.fid import FrechetInceptionDistance  # here: ~2 s of start-up (scipy)

    # reset_real_features=False: the reference statistics stay when the fake side is reset
    return FrechetInceptionDistance(feature=PrecomputedFeatures(num_features), reset_real_features=False)


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, D) and (M, D):
    ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)), sample covariances with 1/(N-1)."""
    for name, x in (("reference", real), ("sample", fake)):
        if x.shape[0] < 2:
            raise MnistganError(f"FID needs at least 2 {name} images, got {x.shape[0]}")
    metric = fid_metric(real.shape[1])
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with single_thread():
        value = float(metric.compute())
    return max(0.0, value)  # tiny negative values are round-off of a zero distance


@contextlib.contextmanager
def single_thread():
    """Run small LAPACK calls (a 128x128 eigendecomposition) on one thread: multithreaded MKL spins
    waiting for busy cores when other processes keep them busy (docs/performance.md)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------------------- class statistics


def inception_score(probs: torch.Tensor) -> float:
    """IS = exp(mean_i KL(p(y|x_i) || p(y))), p(y) the mean prediction; in [1, C].

    Computed over the whole set (no splits), so it is 10 exactly for ten equally used
    one-hot predictions and 1 for a single class.
    """
    p = probs.double()
    marginal = p.mean(0, keepdim=True)
    kl = (torch.special.xlogy(p, p) - torch.special.xlogy(p, marginal)).sum(1)  # 0 log 0 = 0
    return float(torch.exp(kl.mean()))


def class_stats(probs: torch.Tensor, requested: Optional[torch.Tensor] = None) -> dict:
    """Histogram of predicted classes, classes covered, KL to uniform, confident share, label accuracy."""
    n, c = probs.shape
    top, pred = probs.max(1)
    counts = torch.bincount(pred, minlength=c)
    share = counts.double() / n
    kl_uniform = float(
        (torch.special.xlogy(share, share) + share * math.log(c)).sum()
    )  # log C - H(share), nats
    out = {
        "histogram": [int(v) for v in counts],
        "classes_covered": int((share >= COVERED_SHARE).sum()),
        "kl_to_uniform": max(0.0, kl_uniform),
        "confident_share": float((top >= CONFIDENT).double().mean()),
    }
    if requested is not None:
        out["label_accuracy"] = float((pred == requested.to(pred.device)).double().mean())
    return out


# ----------------------------------------------------------------------------- k-NN metrics


def _check_k(x: torch.Tensor, k: int, name: str) -> None:
    if x.shape[0] < k + 1:
        raise MnistganError(
            f"the k-NN metrics need at least {k + 1} {name} (k = {k}), got {x.shape[0]}; "
            f"evaluate more samples"
        )


def knn_radii(x: torch.Tensor, ks: tuple = (K_PR,)) -> dict:
    """{k: distance from each row of x (N, D) to its k-th nearest other row, float64 (N,)}.

    The smallest distance of a row is to itself (0), so the k-th neighbour is the (k+1)-th smallest.
    """
    kmax = max(ks)
    _check_k(x, kmax, "images")
    x = x.double()
    nearest = torch.cat(
        [
            torch.cdist(x[i : i + CHUNK], x).topk(kmax + 1, dim=1, largest=False).values
            for i in range(0, x.shape[0], CHUNK)
        ]
    )  # (N, kmax + 1), ascending
    return {k: nearest[:, k].contiguous() for k in ks}


def prdc(
    real: torch.Tensor,
    fake: torch.Tensor,
    k_pr: int = K_PR,
    k_dc: int = K_DC,
    real_radii: Optional[dict] = None,
) -> dict:
    """Precision, recall (k_pr) and density, coverage (k_dc) of fake (M, D) against real (N, D).

    precision = share of fakes inside some real k-NN ball     (Kynkaenniemi et al. 2019)
    recall    = share of reals inside some fake k-NN ball
    density   = mean over fakes of (# real balls containing it) / k   (Naeem et al. 2020; can exceed 1)
    coverage  = share of reals whose ball holds at least one fake
    A ball B(x, r_k(x)) is closed: distance <= radius. `real_radii` {k: (N,) radii} skips recomputing
    the reference set's radii (they depend on the reference only, so they are cached).
    """
    _check_k(real, max(k_pr, k_dc), "reference images")
    _check_k(fake, k_pr, "samples")
    if real_radii is None or k_pr not in real_radii or k_dc not in real_radii:
        real_radii = knn_radii(real, (k_pr, k_dc))
    r_pr, r_dc = real_radii[k_pr].double(), real_radii[k_dc].double()
    f_pr = knn_radii(fake, (k_pr,))[k_pr]
    real, fake = real.double(), fake.double()
    in_real_ball = torch.zeros(fake.shape[0], dtype=torch.bool)  # precision
    balls_holding = torch.zeros(fake.shape[0], dtype=torch.float64)  # density
    in_fake_ball = torch.zeros(real.shape[0], dtype=torch.bool)  # recall
    nearest_fake = torch.full((real.shape[0],), math.inf, dtype=torch.float64)  # coverage
    for i in range(0, fake.shape[0], CHUNK):
        d = torch.cdist(fake[i : i + CHUNK], real)  # (chunk, N): fake i+j to real n
        in_real_ball[i : i + CHUNK] = (d <= r_pr[None, :]).any(1)
        balls_holding[i : i + CHUNK] = (d <= r_dc[None, :]).sum(1).double()
        in_fake_ball |= (d <= f_pr[i : i + CHUNK, None]).any(0)
        nearest_fake = torch.minimum(nearest_fake, d.min(0).values)
    return {
        "precision": float(in_real_ball.double().mean()),
        "recall": float(in_fake_ball.double().mean()),
        "density": float(balls_holding.mean() / k_dc),
        "coverage": float((nearest_fake <= r_dc).double().mean()),
    }


def all_metrics(
    real_feats: torch.Tensor,
    fake_feats: torch.Tensor,
    fake_probs: torch.Tensor,
    requested: Optional[torch.Tensor] = None,
    real_radii: Optional[dict] = None,
) -> dict:
    """Every metric of one sample set against the reference features (see the functions above)."""
    out = {
        "n": int(fake_feats.shape[0]),
        "fid": fid(real_feats, fake_feats),
        "inception_score": inception_score(fake_probs),
    }
    out.update(class_stats(fake_probs, requested))
    out.update(prdc(real_feats, fake_feats, real_radii=real_radii))
    return out
