"""The Stacked-MNIST mode counter: real stacked images reach (nearly) all 1,000 modes, a collapsed
sample set one, and the KL to uniform follows."""

from __future__ import annotations

import math

import torch

from mnistgan.evaluator.modes import STACKED_N, mode_stats, real_stacked


def test_real_stacked_images_cover_the_modes():
    stats = mode_stats(real_stacked(STACKED_N))
    assert stats["n"] == 26_000 and stats["modes_covered"] >= 995
    assert stats["modes_kl"] < 0.05 and stats["confident_share"] > 0.95
    assert sum(stats["histogram"]) == 3 * 26_000


def test_a_collapsed_generator_covers_one_mode():
    one = real_stacked(1).expand(2000, 3, 28, 28).contiguous()
    stats = mode_stats(one)
    assert stats["modes_covered"] == 1
    assert math.isclose(stats["modes_kl"], math.log(1000), rel_tol=1e-9)  # all mass on one of 1,000 modes
    two = torch.cat([one[:1000], real_stacked(2)[1:].expand(1000, 3, 28, 28)])
    assert mode_stats(two)["modes_covered"] <= 2
