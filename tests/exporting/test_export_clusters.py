"""Cluster generators (--clusters K, models.ClusterG) in ONNX and TorchScript (keras-h5: test_keras.py),
and in interpolate/report.

G(z) = net([z, one_hot(c(z))]) with c(z) = #{k : z_0 > t_k}: each export must pick the same
cluster as ClusterG.clusters_of, or its images are those of another cluster.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from mnistgan.exporting.api import export
from mnistgan.exporting.traced import VERIFY_TOL
from mnistgan.generator.interpolate import interpolate
from mnistgan.generator.sample import load_generator
from mnistgan.reporting.arch import model_tables

from exporting.toy_runs import VARIANTS, Z_DIM, make_run

K = 4


@pytest.fixture(scope="module", params=["mlp", "dcgan"])
def cluster_run(request, tmp_path_factory) -> Path:
    return make_run(
        tmp_path_factory.mktemp(f"{request.param}_clusters") / "run", **VARIANTS[request.param], clusters=K
    )


def cluster_z(run: Path) -> tuple[np.ndarray, np.ndarray]:
    """z (N, Z_DIM) drawing every cluster, with z_0 at least 1e-5 from every threshold, and ClusterG's
    clusters."""
    G = load_generator(run).module
    t = G.thresholds.numpy()
    z = np.random.RandomState(3).normal(size=[64 + 2 * len(t), Z_DIM]).astype(np.float32)
    z[64:, 0] = np.concatenate([t - 1e-5, t + 1e-5])  # just either side of each threshold
    assert np.abs(z[:, :1] - t).min() >= 0.9e-5
    clusters = G.clusters_of(torch.from_numpy(z)).numpy()
    assert sorted(set(clusters)) == list(range(K))
    return z, clusters


def test_thresholds_are_not_the_defaults(cluster_run):
    """make_run sets uneven cluster sizes, so an export that ignored the thresholds would fail below."""
    t = load_generator(cluster_run).module.thresholds
    equal = torch.special.ndtri(torch.arange(1, K, dtype=torch.float64) / K).float()
    assert (t - equal).abs().min() > 0.1 and bool((t[1:] > t[:-1]).all())


def test_onnx_and_torchscript_pick_the_same_clusters(cluster_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    z, _ = cluster_z(cluster_run)
    expected = load_generator(cluster_run).predict(z)
    (onnx_path,) = export(cluster_run, "onnx", out=tmp_path)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z"]
    assert np.abs(session.run(["images"], {"z": z})[0] - expected).max() <= VERIFY_TOL
    (ts_path,) = export(cluster_run, "torchscript", out=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torch.jit.load(str(ts_path))
    with torch.no_grad():
        assert np.abs(model(torch.from_numpy(z)).numpy() - expected).max() <= VERIFY_TOL
    # the cluster matters: moving z_0 across a threshold changes the images
    z2 = z.copy()
    z2[:, 0] = np.where(z[:, 0] > load_generator(cluster_run).module.thresholds.numpy()[1], -3.0, 3.0)
    assert np.abs(session.run(["images"], {"z": z2})[0] - expected).max() > 0.01


def test_interpolate_and_the_report_tables_handle_cluster_generators(cluster_run, tmp_path):
    info = interpolate(cluster_run, tmp_path / "i.png", steps=3, rows=2)
    assert (info["rows"], info["steps"]) == (2, 3) and info["png"].is_file() and info["gif"].is_file()
    cfg = load_generator(cluster_run).config
    tables = model_tables(cfg.model)  # D is conditioned on the clusters: it needs labels to run
    assert any(row[0].startswith("Embedding") for row in tables["D"])
    assert f"{Z_DIM + K}→" in tables["G"][0][0]
