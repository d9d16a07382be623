"""Cluster-conditioning (--clusters K): k-means labels, G as a plain function of z, training and resume."""

import numpy as np
import pytest
import torch

import mnistgan
from mnistgan.config import AUTO_CLUSTERS, AUTO_MIN_IMAGES, ModelConfig, auto_clusters
from mnistgan.errors import MnistganError
from mnistgan.models import build_discriminator, build_generator
from mnistgan.training.clusters import kmeans_labels
from mnistgan.training.state import load_checkpoint

from helpers import TINY, make_dataset_dir, resume_from_epoch_1, run_cli


def blobs(n_per: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three well-separated kinds of image (a bright square in one of three places) plus noise."""
    rng = np.random.default_rng(seed)
    images = (rng.random((3 * n_per, 28, 28)) * 40).astype(np.uint8)
    truth = np.repeat(np.arange(3), n_per)
    for i, t in enumerate(truth):
        images[i, 2 + 8 * t : 10 + 8 * t, 10:18] = 250
    order = rng.permutation(len(truth))
    return torch.from_numpy(images[order]), torch.from_numpy(truth[order])


def test_kmeans_finds_separated_groups_and_is_deterministic():
    images, truth = blobs(40)
    labels = kmeans_labels(images, 3, seed=5)
    assert labels.shape == truth.shape and labels.dtype == torch.int64
    # each found cluster is exactly one true group (a permutation of the truth)
    for c in range(3):
        assert len(set(truth[labels == c].tolist())) == 1
    assert torch.bincount(labels).tolist() == [40, 40, 40]
    assert torch.equal(labels, kmeans_labels(images, 3, seed=5))


def test_kmeans_never_leaves_a_cluster_empty():
    images, _ = blobs(10)
    labels = kmeans_labels(images, 25, seed=0)  # more clusters than distinct shapes
    assert (torch.bincount(labels, minlength=25) > 0).all()
    with pytest.raises(MnistganError, match="at least 40 training images"):
        kmeans_labels(images[:5], 40, seed=0)


def test_cluster_generator_draws_clusters_in_proportion_and_uses_them():
    cfg = ModelConfig(model="dcgan", z_dim=8, g_width=4, d_width=4, clusters=4)
    G, D = build_generator(cfg).eval(), build_discriminator(cfg).eval()
    counts = torch.tensor([100, 300, 500, 100])
    G.set_cluster_sizes(counts)
    z = torch.randn(200_000, 8, generator=torch.Generator().manual_seed(0))
    shares = torch.bincount(G.clusters_of(z), minlength=4).double() / len(z)
    assert torch.allclose(shares, counts.double() / counts.sum(), atol=0.005)
    # G is a function of z alone (the course snippet calls it so), and the cluster really matters
    x = G(z[:6])
    assert x.shape == (6, 1, 28, 28)
    assert torch.equal(x, G(z[:6], G.clusters_of(z[:6])))
    assert not torch.allclose(x, G(z[:6], (G.clusters_of(z[:6]) + 1) % 4))
    assert D(x, G.clusters_of(z[:6])).shape == (6,)


def test_clusters_are_on_by_default_only_for_an_unconditional_gan_on_enough_images():
    big, small = AUTO_MIN_IMAGES, AUTO_MIN_IMAGES - 1
    assert auto_clusters(ModelConfig(), big) == AUTO_CLUSTERS
    assert auto_clusters(ModelConfig(model="mlp"), big) == AUTO_CLUSTERS
    assert auto_clusters(ModelConfig(), small) == 0  # one digit, or --limit: too few images per cluster
    assert auto_clusters(ModelConfig(conditional=True), big) == 0
    assert auto_clusters(ModelConfig(model="vae"), big) == 0
    assert auto_clusters(ModelConfig(clusters=0), big) == 0  # an explicit choice is kept
    assert auto_clusters(ModelConfig(clusters=7), small) == 7


def test_clusters_refused_with_labels_or_vae(tmp_path):
    for extra, expected in (
        (["--conditional"], "does not combine"),
        (["--model", "vae"], "does not combine"),
        (["--clusters", "1"], "between 2 and 1000"),
    ):
        args = ["--clusters", "5", *extra] if extra[0] != "--clusters" else extra
        proc = run_cli("train", *TINY, "--run-dir", tmp_path / "r", "--epochs", "1", *args, check=False)
        assert proc.returncode != 0 and expected in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "r").exists()


def test_cluster_run_trains_samples_and_resumes_bit_identically(tmp_path):
    data = make_dataset_dir(tmp_path / "data", n=64)
    args = [
        "--data-dir",
        data,
        "--epochs",
        "2",
        "--clusters",
        "4",
        "--loss",
        "hinge",
        "--d-norm",
        "spectral",
        "--keep-checkpoints",
        "2",
        "--sample-epochs",
        "1",
        *TINY,
    ]
    full = tmp_path / "full"
    out = run_cli("train", "--run-dir", full, *args)
    assert "Clustered 64 images into 4 k-means clusters" in out.stdout
    # resume from the epoch-1 checkpoint: the cluster labels come from the checkpoint, the end is identical
    half = tmp_path / "half"
    out = resume_from_epoch_1(full, half)
    assert "Clustered" not in out.stdout
    a, b = (
        load_checkpoint(full / "checkpoints" / "last.pt"),
        load_checkpoint(half / "checkpoints" / "last.pt"),
    )
    assert torch.equal(a["clusters"], b["clusters"]) and a["step"] == b["step"]
    for part in ("G", "D", "G_ema"):
        for name, t in a[part].items():
            assert torch.equal(t, b[part][name]), f"{part}.{name} differs after resume"
    # the saved generator is an unconditional G(z): the course snippet and `generate` work unchanged
    gen = mnistgan.load_generator(full / "generator")
    assert not gen.conditional
    z = np.random.RandomState(504).normal(size=[25, 8])
    x = gen.predict(z)
    assert x.shape == (25, 28, 28) and np.isfinite(x).all()
    proc = run_cli(
        "generate",
        "--generator",
        full / "generator",
        "--digit",
        "3",
        "--out",
        tmp_path / "g.png",
        check=False,
    )
    assert proc.returncode != 0 and "unconditional" in proc.stderr
