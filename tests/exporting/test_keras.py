"""The keras-h5 export (generator.json + generator.h5) loaded by Keras itself: Keras 3 with its torch
backend (no TensorFlow), through the calls a course reader makes:

    model = keras.models.model_from_json(open("generator.json").read())
    model.load_weights("generator.h5")
    images = model.predict(z)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import mnistgan
from mnistgan.exporting.api import export
from mnistgan.exporting.traced import VERIFY_TOL
from mnistgan.generator.sample import load_generator

from exporting.toy_runs import VARIANTS, Z_DIM, make_run, random_z
from helpers import run_cli

K = 4  # clusters of the toy cluster generators


@pytest.fixture(scope="module")
def keras():
    """Keras 3 on its torch backend, imported once (the backend is fixed at the first import)."""
    os.environ["KERAS_BACKEND"] = "torch"
    keras = pytest.importorskip("keras")
    assert keras.backend.backend() == "torch" and int(keras.__version__.split(".")[0]) >= 3
    return keras


def keras_predict(keras, files: list[Path], z: np.ndarray) -> np.ndarray:
    json_path, h5_path = files
    model = keras.models.model_from_json(json_path.read_text())
    model.load_weights(str(h5_path))
    return np.asarray(model.predict(z, verbose=0))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_keras_reproduces_every_family_norm_and_activation(keras, variant, tmp_path):
    run = make_run(tmp_path / "run", **VARIANTS[variant])
    files = export(run, "keras-h5")
    assert files == [run / "export" / "generator.json", run / "export" / "generator.h5"]
    z = random_z(5)
    expected = load_generator(run).predict(z)
    got = keras_predict(keras, files, z)
    assert got.shape == (5, 28, 28)
    assert np.abs(got - expected).max() <= VERIFY_TOL
    assert expected.std() > 0.01  # the images are not flat, so the comparison means something


def threshold_z(run: Path) -> tuple[np.ndarray, np.ndarray]:
    """z drawing every cluster, with z_0 exactly on each threshold and 1, 2 float32 steps either side
    (ClusterG's test z_0 > t_k is strict), and ClusterG's clusters for them."""
    G = load_generator(run).module
    t = G.thresholds.numpy()
    z0 = [t]
    for direction in (np.inf, -np.inf):
        x = t
        for _ in range(2):
            x = np.nextafter(x, np.float32(direction))
            z0.append(x)
    z = np.random.RandomState(5).normal(size=[64 + 5 * len(t), Z_DIM]).astype(np.float32)
    z[64:, 0] = np.concatenate(z0)
    clusters = G.clusters_of(torch.from_numpy(z)).numpy()
    assert sorted(set(clusters)) == list(range(K))
    return z, clusters


@pytest.mark.parametrize("family", ["mlp", "dcgan"])
def test_keras_picks_the_cluster_of_a_cluster_generator_exactly(keras, family, tmp_path):
    """A cluster generator is a Functional model whose weightless head reads z_0 and one-hots its
    cluster; Keras picks ClusterG's cluster for every z, on a threshold and one float32 step away."""
    run = make_run(tmp_path / "run", **VARIANTS[family], clusters=K)
    json_path, h5_path = export(run, "keras-h5")
    arch = json.loads(json_path.read_text())
    assert arch["class_name"] == "Functional"
    names = [layer["class_name"] for layer in arch["config"]["layers"][:9]]
    assert names == ["InputLayer", "Reshape", "Cropping1D", "Reshape", "Rescaling", "Discretization",
                     "CategoryEncoding", "Reshape", "Concatenate"]  # fmt: skip
    z, clusters = threshold_z(run)
    model = keras.models.model_from_json(json_path.read_text())
    model.load_weights(str(h5_path))
    one_hot = keras.Model(model.inputs, model.get_layer("reshape_2").output)
    np.testing.assert_array_equal(np.asarray(one_hot.predict(z, verbose=0)), np.eye(K)[clusters])
    expected = load_generator(run).predict(z)
    assert np.abs(np.asarray(model.predict(z, verbose=0)) - expected).max() <= VERIFY_TOL


def test_keras_h5_layout_follows_keras(tmp_path):
    """Dense kernel (in, out); Conv2DTranspose kernel (kh, kw, out, in), no flip; BN in Keras' order."""
    h5py = pytest.importorskip("h5py")
    run = make_run(tmp_path / "run", **VARIANTS["dcgan"])
    _, h5_path = export(run, "keras-h5")
    G = load_generator(run).module
    with h5py.File(h5_path, "r") as f:
        names = [n.decode() for n in f.attrs["layer_names"]]
        assert names[:3] == ["dense", "reshape", "batch_normalization"]
        version = f.attrs["keras_version"]  # h5py returns a bytes scalar as str
        assert (version.decode() if isinstance(version, bytes) else version).startswith("2.")
        assert [n.decode() for n in f["batch_normalization"].attrs["weight_names"]] == [
            f"batch_normalization/{w}:0" for w in ("gamma", "beta", "moving_mean", "moving_variance")
        ]
        assert f["dense/dense/kernel:0"].shape == (Z_DIM, 8 * 49)
        kernel = f["conv2d_transpose/conv2d_transpose/kernel:0"][()]
        conv = next(m for m in G.modules() if isinstance(m, nn.ConvTranspose2d))  # the first one
        np.testing.assert_array_equal(kernel, conv.weight.detach().numpy().transpose(2, 3, 1, 0))
        assert kernel.shape == (4, 4, 4, 8)
        assert len(f["reshape"].attrs["weight_names"]) == 0


# What a course reader runs: Keras and numpy, no mnistgan. Prints the largest difference to
# `mnistgan generate --seed 504 --n 25`, in 1/255 steps.
COURSE_READER = textwrap.dedent("""
    import sys
    import numpy as np
    import keras
    model = keras.models.model_from_json(open(sys.argv[1] + "/generator.json").read())
    model.load_weights(sys.argv[1] + "/generator.h5")
    z_dim = model.input_shape[-1]
    np.random.seed(504)
    z = np.random.normal(size=[25, z_dim])
    generated_images = model.predict(z, verbose=0)
    reference = np.load(sys.argv[2])["images"]
    print(np.abs(generated_images * 255.0 - reference).max())
""")


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory) -> dict[str, Path]:
    """Three briefly trained generators: the MLP, the DCGAN, and the default cluster generator
    (10,000 images, so the default 100 k-means clusters are on)."""
    root = tmp_path_factory.mktemp("keras_trained")
    tiny = dict(epochs=1, g_width=8, d_width=8, batch_size=64, progress=False)
    runs = {
        "mlp": dict(model="mlp", limit=2000),
        "dcgan": dict(clusters=0, limit=2000),
        "clusters": dict(limit=10_000),
    }
    return {name: mnistgan.train(run_dir=root / name, **tiny, **kw) for name, kw in runs.items()}


@pytest.mark.parametrize("name", ["mlp", "dcgan", "clusters"])
def test_the_course_reader_draws_what_mnistgan_generate_draws(trained_runs, name, tmp_path):
    run = trained_runs[name]
    if name == "clusters":
        assert load_generator(run).config.model.clusters == 100
    run_cli("generate", "--generator", run, "--seed", 504, "--n", 25, "--out", tmp_path / "ref.npz")
    run_cli("export", "--generator", run, "--format", "keras-h5", "--out", tmp_path / "keras")
    env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": ""}
    args = [sys.executable, "-c", COURSE_READER, str(tmp_path / "keras"), str(tmp_path / "ref.npz")]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert float(proc.stdout.split()[-1]) <= 1.0  # within 1/255 of the uint8 images
    assert "Warning" not in proc.stderr, proc.stderr[-2000:]
