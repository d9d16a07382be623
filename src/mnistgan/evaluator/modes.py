"""Mode coverage on Stacked-MNIST (Srivastava et al. 2017; Lin et al. 2018): each image's three channels
are classified by the bundled MNIST classifier, and the digit triple (d_R, d_G, d_B) is one of
1,000 modes. A generator is scored by how many modes its samples reach and by
KL(mode histogram || uniform over the 1,000 modes) = sum_m p_m log(1000 p_m), with 0 log 0 = 0,
on 26,000 samples (the literature's count). Real stacked images, scored the same way, give the
finite-sample floor.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from ..data import load_images, stacked, stacked_mode
from .classifier import classify
from .metrics import CONFIDENT

MODES = 1000
STACKED_N = 26_000  # samples scored (VEEGAN, PacGAN, R3GAN)
REAL_SEED = 1  # the real reference draws its triples apart from the training set's (seed 0)


def mode_stats(images: torch.Tensor, device: Optional[torch.device] = None) -> dict:
    """uint8 (N, 3, 28, 28) -> {"n", "modes_covered", "modes_kl", "confident_share", "histogram"}.

    confident_share: the share of images whose three digits are all classified with p >= 0.9;
    histogram: digit counts over all channels (the classifier's ten classes)."""
    n = images.shape[0]
    _, probs = classify(images.reshape(n * 3, 28, 28), "mnist", device)
    top, digits = probs.max(1)
    digits = digits.view(n, 3)
    modes = stacked_mode(digits)
    counts = torch.bincount(modes, minlength=MODES).double()
    p = counts / n
    kl = float((torch.special.xlogy(p, p) + p * math.log(MODES)).sum())
    return {
        "n": n,
        "modes_covered": int((counts > 0).sum()),
        "modes_kl": max(0.0, kl),
        "confident_share": float((top.view(n, 3) >= CONFIDENT).all(1).double().mean()),
        "histogram": [int(v) for v in torch.bincount(digits.flatten(), minlength=10)],
    }


def real_stacked(n: int, data_dir: Optional[str] = None) -> torch.Tensor:
    """n real stacked images from the MNIST test set (never trained on): uint8 (n, 3, 28, 28)."""
    return stacked(load_images("mnist", data_dir, "test", with_labels=True), n, seed=REAL_SEED).images
