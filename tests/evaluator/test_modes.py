"""The Stacked-MNIST mode counter: real stacked images reach (nearly) all 1,000 modes, a collapsed
sample set one, and the KL to uniform follows."""

from __future__ import annotations

import math

import torch

from mnistgan.evaluator.modes import STACKED_N, mode_stats, real_stacked


def test_real_stacked_images_cover_the_modes():
    n = STACKED_N // 2  # half the benchmark's count keeps the test short; 13 draws per mode on average
    stats = mode_stats(real_stacked(n))
    assert stats["n"] == n and stats["modes_covered"] >= 995
    # sampling noise alone gives KL ~ (modes - 1) / (2 n) = 0.038 at n = 13,000
    assert stats["modes_kl"] < 0.06 and stats["confident_share"] > 0.95
    assert sum(stats["histogram"]) == 3 * n


def test_a_collapsed_generator_covers_one_mode():
    one = real_stacked(1).expand(2000, 3, 28, 28).contiguous()
    stats = mode_stats(one)
    assert stats["modes_covered"] == 1
    assert math.isclose(stats["modes_kl"], math.log(1000), rel_tol=1e-9)  # all mass on one of 1,000 modes
    two = torch.cat([one[:1000], real_stacked(2)[1:].expand(1000, 3, 28, 28)])
    assert mode_stats(two)["modes_covered"] <= 2
