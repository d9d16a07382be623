"""The evaluator's metric functions against closed forms and hand-computed answers on tiny inputs."""

import math

import numpy as np
import pytest
import torch

from mnistgan.errors import MnistganError
from mnistgan.evaluator import metrics


def exact_moments(n: int, mean: np.ndarray, cov: np.ndarray, seed: int) -> torch.Tensor:
    """n points whose sample mean and (1/(n-1)) sample covariance are exactly `mean` and `cov`."""
    d = len(mean)
    x = np.random.default_rng(seed).normal(size=(n, d))
    x -= x.mean(0)
    white = np.linalg.cholesky(np.cov(x, rowvar=False))  # x = white_part @ white.T
    x = x @ np.linalg.inv(white).T  # sample covariance now exactly I
    return torch.from_numpy(x @ np.linalg.cholesky(cov).T + mean)


def psd_sqrt(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_closed_form(m1, s1, m2, s2) -> float:
    """||m1 - m2||^2 + Tr(s1 + s2 - 2 (s1^1/2 s2 s1^1/2)^1/2): symmetric square roots only."""
    r = psd_sqrt(s1)
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(psd_sqrt(r @ s2 @ r)))


# ----------------------------------------------------------------------------- FID


def test_fid_of_identical_sets_is_zero():
    x = torch.randn(500, 16, generator=torch.Generator().manual_seed(0))
    assert metrics.fid(x, x.clone()) == pytest.approx(0.0, abs=1e-6)


def test_fid_of_diagonal_gaussians_matches_hand_computation():
    m1, m2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    # ||m1 - m2||^2 = 1 + 0 + 4; sum (sqrt v1 - sqrt v2)^2 = 1 + 0 + 4
    real = exact_moments(400, m1, np.diag(v1), 1)
    fake = exact_moments(300, m2, np.diag(v2), 2)
    assert metrics.fid(real, fake) == pytest.approx(10.0, rel=1e-9)


def test_fid_of_correlated_gaussians_matches_closed_form():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    m1, m2 = rng.normal(size=5), rng.normal(size=5)
    expected = frechet_closed_form(m1, s1, m2, s2)
    got = metrics.fid(exact_moments(600, m1, s1, 4), exact_moments(700, m2, s2, 5))
    assert got == pytest.approx(expected, rel=1e-8)


def test_fid_of_gaussian_samples_approaches_the_population_value():
    """Plain draws (not moment-matched) land near the population distance: the estimator, not just
    the formula."""
    g = torch.Generator().manual_seed(6)
    real = torch.randn(20000, 3, generator=g, dtype=torch.float64)
    fake = torch.randn(20000, 3, generator=g, dtype=torch.float64) * 2 + torch.tensor([1.0, 0.0, 0.0])
    # ||mu||^2 = 1; each dimension (sqrt(1) - sqrt(4))^2 = 1
    assert metrics.fid(real, fake) == pytest.approx(4.0, abs=0.1)


def test_fid_needs_two_images_per_side():
    with pytest.raises(MnistganError, match="at least 2"):
        metrics.fid(torch.randn(10, 4), torch.randn(1, 4))


# ----------------------------------------------------------------------------- IS and class statistics


def one_hot(labels, c=10) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.as_tensor(labels), c).double()


def test_inception_score_known_values():
    assert metrics.inception_score(one_hot(np.arange(100) % 10)) == pytest.approx(10.0, rel=1e-12)
    assert metrics.inception_score(one_hot([3] * 50)) == pytest.approx(1.0, rel=1e-12)
    assert metrics.inception_score(one_hot(np.arange(40) % 4)) == pytest.approx(4.0, rel=1e-12)
    assert metrics.inception_score(torch.full((20, 10), 0.1, dtype=torch.float64)) == pytest.approx(1.0)
    # half the images sure of class 0, half split evenly between 0 and 1: marginal (3/4, 1/4)
    p = torch.tensor([[1.0, 0.0]] * 10 + [[0.5, 0.5]] * 10, dtype=torch.float64)
    kl_sure = math.log(1 / 0.75)
    kl_split = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert metrics.inception_score(p) == pytest.approx(math.exp((kl_sure + kl_split) / 2), rel=1e-12)


def test_class_stats_histogram_coverage_kl_and_confidence():
    balanced = metrics.class_stats(one_hot(np.arange(200) % 10))
    assert balanced["histogram"] == [20] * 10 and balanced["classes_covered"] == 10
    assert balanced["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12)
    single = metrics.class_stats(one_hot([7] * 30))
    assert single["histogram"] == [0] * 7 + [30, 0, 0] and single["classes_covered"] == 1
    assert single["kl_to_uniform"] == pytest.approx(math.log(10))
    halves = metrics.class_stats(one_hot([0] * 5 + [1] * 5))
    assert halves["kl_to_uniform"] == pytest.approx(math.log(5))  # log 10 - H(1/2, 1/2)
    # 1 image of class 9 among 200 is 0.5% < 1%: not a covered class
    assert metrics.class_stats(one_hot([0] * 199 + [9]))["classes_covered"] == 1
    p = torch.tensor([[0.95, 0.05], [0.6, 0.4], [0.1, 0.9], [0.5, 0.5]], dtype=torch.float64)
    stats = metrics.class_stats(p, requested=torch.tensor([0, 1, 1, 0]))
    assert stats["confident_share"] == pytest.approx(0.5)  # 0.95 and 0.9 reach the 0.9 bar
    assert stats["label_accuracy"] == pytest.approx(0.75)  # argmax 0, 0, 1, 0 (ties go to the first)


# ----------------------------------------------------------------------------- k-NN metrics


def line(xs) -> torch.Tensor:
    """Points on the x axis of a plane, (N, 2)."""
    x = torch.tensor(xs, dtype=torch.float64)
    return torch.stack([x, torch.zeros_like(x)], 1)


def test_knn_radii_match_brute_force():
    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    d = np.linalg.norm(x.numpy()[:, None] - x.numpy()[None], axis=-1)
    brute = np.sort(d, axis=1)
    radii = metrics.knn_radii(x, (3, 5))
    np.testing.assert_allclose(radii[3].numpy(), brute[:, 3], rtol=1e-9)
    np.testing.assert_allclose(radii[5].numpy(), brute[:, 5], rtol=1e-9)


def test_prdc_on_two_clusters_when_only_one_is_generated():
    """Reals: 0..5 and 100..105 on a line. Fakes: 0.5..4.5, inside the first cluster only.

    k=3 real radii are 3,2,2,2,2,3 per cluster, so every fake is inside a real ball: precision 1.
    k=3 fake radii are 3,2,2,2,3: they reach all of 0..5 and nothing of 100..105: recall 6/12.
    k=5 real radii are 5,4,3,3,4,5: each first-cluster ball holds a fake (coverage 6/12), and
    every fake lies in all six first-cluster balls: density = 6 / 5.
    """
    real = line([0, 1, 2, 3, 4, 5, 100, 101, 102, 103, 104, 105])
    fake = line([0.5, 1.5, 2.5, 3.5, 4.5])
    got = metrics.prdc(real, fake)
    assert got == pytest.approx({"precision": 1.0, "recall": 0.5, "density": 1.2, "coverage": 0.5})


def test_prdc_when_samples_sit_between_modes():
    """Fakes at 50..53 are far from both real clusters: nothing precise, nothing covered."""
    real = line([0, 1, 2, 3, 4, 5, 100, 101, 102, 103, 104, 105])
    fake = line([50, 51, 52, 53])
    # fake k=3 radii: 3, 2, 2, 3 -> no real point within reach either
    assert metrics.prdc(real, fake) == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_prdc_of_identical_sets():
    """Each point lies in its own ball and, on average, in k others: density (k + 1) / k."""
    x = torch.randn(400, 8, generator=torch.Generator().manual_seed(8))
    got = metrics.prdc(x, x.clone())
    assert got["precision"] == 1.0 and got["recall"] == 1.0 and got["coverage"] == 1.0
    assert got["density"] == pytest.approx((metrics.K_DC + 1) / metrics.K_DC)


def test_prdc_radii_cache_gives_the_same_answer():
    g = torch.Generator().manual_seed(9)
    real, fake = torch.randn(200, 4, generator=g), torch.randn(150, 4, generator=g) + 0.3
    cached = metrics.knn_radii(real, (metrics.K_PR, metrics.K_DC))
    assert metrics.prdc(real, fake, real_radii=cached) == metrics.prdc(real, fake)


def test_too_few_samples_for_knn_is_one_clear_error():
    real = torch.randn(50, 4)
    with pytest.raises(MnistganError, match=r"at least 4 samples \(k = 3\), got 3"):
        metrics.prdc(real, torch.randn(3, 4))
    with pytest.raises(MnistganError, match=r"at least 6 reference images \(k = 5\), got 5"):
        metrics.prdc(real[:5], torch.randn(10, 4))
    with pytest.raises(MnistganError, match="at least 4 samples"):
        metrics.all_metrics(real, torch.randn(3, 4), one_hot([0, 1, 2]))
