"""Export: every format reproduces Generator.predict (z (N, z_dim) -> (N, 28, 28) in [0, 1]).

The keras-h5 check is a pure-numpy forward pass that reads only generator.json and, with
h5py, generator.h5: if it matches PyTorch, the files hold the whole generator.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from mnistgan.config import Config, ModelConfig
from mnistgan.errors import MnistganError
from mnistgan.exporting.api import export, output_paths
from mnistgan.exporting.traced import VERIFY_TOL, write_onnx, write_torchscript
from mnistgan.generator.format import save_generator as export_generator
from mnistgan.generator.sample import Generator, load_generator
from mnistgan.models import build_generator

from helpers import run_cli

Z_DIM = 8
VARIANTS = {  # the two families with their default (batch) norm, plus the other norms and activations
    "mlp": dict(model="mlp", g_width=8, g_depth=2),
    "dcgan": dict(model="dcgan", g_width=4),
    "mlp-layer-leaky": dict(model="mlp", g_width=8, g_depth=2, g_norm="layer", g_activation="leaky_relu"),
    "dcgan-group-gelu": dict(model="dcgan", g_width=4, g_norm="layer", g_activation="gelu"),
    "dcgan-none-silu": dict(model="dcgan", g_width=4, g_norm="none", g_activation="silu"),
    "mlp-none-elu": dict(model="mlp", g_width=8, g_depth=1, g_norm="none", g_activation="elu"),
}


def make_run(root: Path, **model) -> Path:
    """A run folder holding only generator/, with randomised norm weights and running stats
    (so a converter that drops or misorders them fails)."""
    mc = ModelConfig(z_dim=Z_DIM, **model)
    torch.manual_seed(0)
    G = build_generator(mc)
    if mc.clusters:  # uneven cluster sizes, so the thresholds differ from the defaults
        G.set_cluster_sizes(torch.arange(1, mc.clusters + 1))
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
            if isinstance(m, (nn.Linear, nn.ConvTranspose2d)):
                m.weight.normal_(0, 0.3)  # larger than the N(0, 0.02) init so tanh is not ~0 everywhere
    export_generator(G, Config(model=mc), root / "generator")
    return root


@pytest.fixture(scope="module", params=["mlp", "dcgan"])
def family_run(request, tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp(request.param) / "run", **VARIANTS[request.param])


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("dcgan_cli") / "run", **VARIANTS["dcgan"])


def random_z(n: int, seed: int = 7) -> np.ndarray:
    return np.random.RandomState(seed).normal(size=[n, Z_DIM]).astype(np.float32)


# ----------------------------------------------------------------------------- ONNX and TorchScript


def test_onnx_matches_predict_with_a_free_batch_size(family_run):
    ort = pytest.importorskip("onnxruntime")
    paths = export(family_run, "onnx")
    assert paths == [family_run / "export" / "generator.onnx"]
    session = ort.InferenceSession(str(paths[0]), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z"]
    assert [o.name for o in session.get_outputs()] == ["images"]
    gen = load_generator(family_run)
    for n in (1, 5):
        z = random_z(n)
        got = session.run(["images"], {"z": z})[0]
        assert got.shape == (n, 28, 28) and got.dtype == np.float32
        assert np.abs(got - gen.predict(z)).max() <= VERIFY_TOL
        assert got.min() >= 0.0 and got.max() <= 1.0


def test_torchscript_loads_with_torch_jit_and_matches(family_run, tmp_path):
    paths = export(family_run / "generator", "torchscript", out=tmp_path / "ts")
    assert paths == [tmp_path / "ts" / "generator.torchscript.pt"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated (FutureWarning) but still the format
        model = torch.jit.load(str(paths[0]))
    gen = load_generator(family_run)
    for n in (1, 6):
        z = random_z(n, seed=n)
        with torch.no_grad():
            got = model(torch.from_numpy(z)).numpy()
        assert got.shape == (n, 28, 28)
        assert np.abs(got - gen.predict(z)).max() <= VERIFY_TOL


def test_an_export_that_fails_its_check_leaves_no_file(family_run, tmp_path, monkeypatch):
    monkeypatch.setattr("mnistgan.exporting.traced.VERIFY_TOL", -1.0)  # every difference is now too large
    with pytest.raises(MnistganError, match="differs from PyTorch.*nothing was written"):
        export(family_run, "torchscript", out=tmp_path)
    assert list(tmp_path.iterdir()) == []


class ToyConditional(nn.Module):
    """G(z, labels) -> (N, 1, 28, 28) in [-1, 1]; stands in for the conditional model to come."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, Z_DIM)
        self.fc = nn.Linear(Z_DIM, 784)

    def forward(self, z, labels):
        return torch.tanh(self.fc(z * self.embed(labels))).view(-1, 1, 28, 28)


def toy_conditional_generator() -> Generator:
    torch.manual_seed(0)
    cfg = SimpleNamespace(model=SimpleNamespace(z_dim=Z_DIM, conditional=True))
    return Generator(ToyConditional(), cfg, meta={})


def test_conditional_generators_export_with_a_labels_input(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    gen = toy_conditional_generator()
    write_onnx(gen, [tmp_path / "c.onnx"])
    write_torchscript(gen, [tmp_path / "c.pt"])
    session = ort.InferenceSession(str(tmp_path / "c.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z", "labels"]
    z, labels = random_z(4), np.array([0, 3, 3, 9], dtype=np.int64)
    got = session.run(["images"], {"z": z, "labels": labels})[0]
    assert np.abs(got - gen.predict(z, labels)).max() <= VERIFY_TOL
    with pytest.raises(MnistganError, match="conditional"):
        from mnistgan.exporting.keras import write_keras

        write_keras(gen, tmp_path / "c.json", tmp_path / "c.h5")


def test_a_real_conditional_generator_exports_to_onnx(tmp_path):
    if "conditional" not in ModelConfig.__dataclass_fields__:
        pytest.skip("ModelConfig has no conditional flag yet")
    ort = pytest.importorskip("onnxruntime")
    run = make_run(tmp_path / "run", model="dcgan", g_width=4, conditional=True)
    (path,) = export(run, "onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    z, labels = random_z(3), np.array([1, 7, 7], dtype=np.int64)
    got = session.run(["images"], {"z": z, "labels": labels})[0]
    assert np.abs(got - load_generator(run).predict(z, labels)).max() <= VERIFY_TOL
    with pytest.raises(MnistganError, match="conditional"):
        export(run, "keras-h5")


# ----------------------------------------------------------------------------- keras-h5: a numpy reference


def _conv_transpose(x, kernel, bias, strides, padding):
    """Keras Conv2DTranspose, channels-last: x (N, H, W, Cin), kernel (kh, kw, Cout, Cin).

    out_full[i*s + a, j*s + b] += x[i, j] @ kernel[a, b].T; "same" then crops k - s rows/cols,
    the smaller half from the top/left, leaving (H*s, W*s).
    """
    n, h, w, _ = x.shape
    kh, kw, cout, _ = kernel.shape
    (sh, sw) = strides
    full = np.zeros((n, (h - 1) * sh + kh, (w - 1) * sw + kw, cout))
    for a in range(kh):
        for b in range(kw):
            full[:, a : a + (h - 1) * sh + 1 : sh, b : b + (w - 1) * sw + 1 : sw] += x @ kernel[a, b].T
    if padding == "same":
        top, left = (kh - sh) // 2, (kw - sw) // 2
        full = full[:, top : top + h * sh, left : left + w * sw]
    return full + (bias if bias is not None else 0.0)


def _normalize(x, axes, eps):
    mean = x.mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)


def _group_norm(x, c, w):
    g = c["groups"]
    xs = x.reshape(x.shape[:-1] + (g, x.shape[-1] // g))  # channels-last: (N, H, W, G, C/G)
    axes = tuple(range(1, xs.ndim - 2)) + (xs.ndim - 1,)
    return _normalize(xs, axes, c["epsilon"]).reshape(x.shape) * w["gamma"] + w["beta"]


ERF = np.vectorize(math.erf)
ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0),
    "tanh": np.tanh,
    "linear": lambda x: x,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "gelu": lambda x: 0.5 * x * (1 + ERF(x / math.sqrt(2))),
    "silu": lambda x: x / (1 + np.exp(-x)),
}
NUMPY_LAYERS = {
    "Dense": lambda x, c, w: x @ w["kernel"] + w.get("bias", 0.0),
    "BatchNormalization": lambda x, c, w: (
        (x - w["moving_mean"]) / np.sqrt(w["moving_variance"] + c["epsilon"]) * w["gamma"] + w["beta"]
    ),
    "LayerNormalization": lambda x, c, w: _normalize(x, -1, c["epsilon"]) * w["gamma"] + w["beta"],
    "GroupNormalization": _group_norm,
    "Conv2DTranspose": lambda x, c, w: _conv_transpose(
        x, w["kernel"], w.get("bias"), c["strides"], c["padding"]
    ),
    "Activation": lambda x, c, w: ACTIVATIONS[c["activation"]](x),
    "LeakyReLU": lambda x, c, w: np.where(x > 0, x, c["alpha"] * x),
    "Reshape": lambda x, c, w: x.reshape((x.shape[0], *c["target_shape"])),
    "Rescaling": lambda x, c, w: x * c["scale"] + c["offset"],
    "ReLU": lambda x, c, w: np.clip(x, 0, c["max_value"]),  # only as written: negative_slope 0, threshold 0
    "Concatenate": lambda xs, c, w: np.concatenate(xs, axis=c["axis"]),
}


def numpy_layer_outputs(json_path: Path, h5_path: Path, z: np.ndarray) -> dict[str, np.ndarray]:
    """Run the exported generator from generator.json + generator.h5 with numpy and h5py only:
    every layer's output by name, in order. A Sequential chains its layers; a Functional model's
    layer reads the layers its inbound node names ([[[name, 0, 0, {}], ...]], one call each)."""
    import h5py

    arch = json.loads(json_path.read_text())
    functional = arch["class_name"] == "Functional"
    assert arch["class_name"] in ("Sequential", "Functional")
    outputs: dict[str, np.ndarray] = {}
    x = z.astype(np.float64)
    with h5py.File(h5_path, "r") as f:
        for layer in arch["config"]["layers"]:
            cls, c = layer["class_name"], layer["config"]
            if cls == "InputLayer":
                assert c["batch_input_shape"] == [None, z.shape[1]]
                outputs[c["name"]] = x
                continue
            if functional:
                (node,) = layer["inbound_nodes"]
                assert all(index == [0, 0, {}] for _, *index in node)
                inputs = [outputs[name] for name, *_ in node]
                x = inputs if cls == "Concatenate" else inputs[0]
            if cls == "ReLU":
                assert c["negative_slope"] == 0 and c["threshold"] == 0
            g = f[c["name"]]
            names = [n.decode() for n in g.attrs["weight_names"]]
            # "dense_1/kernel:0" -> "kernel"
            w = {n.split("/")[-1].split(":")[0]: np.asarray(g[n], dtype=np.float64) for n in names}
            x = outputs[c["name"]] = NUMPY_LAYERS[cls](x, c, w)
    if functional:
        assert arch["config"]["output_layers"] == [[list(outputs)[-1], 0, 0]]
    return outputs


def numpy_forward(json_path: Path, h5_path: Path, z: np.ndarray) -> np.ndarray:
    """The exported generator's images, computed with numpy and h5py only."""
    return list(numpy_layer_outputs(json_path, h5_path, z).values())[-1]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_keras_h5_numpy_reference_reproduces_pytorch(variant, tmp_path):
    pytest.importorskip("h5py")
    run = make_run(tmp_path / "run", **VARIANTS[variant])
    json_path, h5_path = export(run, "keras-h5")
    assert (json_path, h5_path) == (run / "export" / "generator.json", run / "export" / "generator.h5")
    z = random_z(5)
    expected = load_generator(run).predict(z)
    got = numpy_forward(json_path, h5_path, z)
    assert got.shape == (5, 28, 28)
    assert np.abs(got - expected).max() <= VERIFY_TOL
    assert expected.std() > 0.01  # the images are not flat, so the comparison means something


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


def test_keras_itself_loads_the_export(family_run, tmp_path, monkeypatch):
    """Runs only where Keras 3 is installed (not a dependency); uses its torch backend."""
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    json_path, h5_path = export(family_run, "keras-h5", out=tmp_path)
    model = keras.models.model_from_json(json_path.read_text())
    model.load_weights(str(h5_path))
    z = random_z(3)
    got = np.asarray(model.predict(z, verbose=0))
    assert np.abs(got - load_generator(family_run).predict(z)).max() <= VERIFY_TOL


# ----------------------------------------------------------------------------- paths, dependencies, CLI


def test_output_paths(tmp_path):
    run = tmp_path / "run"
    assert output_paths(run / "generator", "onnx", None) == [run.resolve() / "export" / "generator.onnx"]
    assert output_paths(tmp_path / "o", "torchscript", None)[0].name == "generator.torchscript.pt"
    assert output_paths(run, "keras-h5", tmp_path / "k") == [
        tmp_path / "k" / "generator.json",
        tmp_path / "k" / "generator.h5",
    ]
    assert output_paths(run, "keras-h5", tmp_path / "g.h5") == [tmp_path / "g.json", tmp_path / "g.h5"]
    assert output_paths(run, "onnx", "m.onnx") == [Path("m.onnx")]
    with pytest.raises(MnistganError, match="does not fit --format torchscript"):
        output_paths(run, "torchscript", "m.onnx")


@pytest.mark.parametrize("fmt,module,extra", [("onnx", "onnxscript", "onnx"), ("keras-h5", "h5py", "keras")])
def test_missing_optional_package_says_what_to_install(family_run, monkeypatch, fmt, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(MnistganError, match=rf'pip install "mnistgan\[{extra}\]"'):
        export(family_run, fmt)


def test_unknown_format_in_the_library():
    with pytest.raises(MnistganError, match="unknown export format 'tflite'"):
        export("anywhere", "tflite")


def test_cli_export_writes_files(dcgan_run, tmp_path):
    proc = run_cli(
        "export", "--generator", dcgan_run / "generator", "--format", "keras-h5", "--out", tmp_path / "k"
    )
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["generator.h5", "generator.json"]
    assert "Wrote" in proc.stdout
    z = random_z(2)
    got = numpy_forward(tmp_path / "k" / "generator.json", tmp_path / "k" / "generator.h5", z)
    assert np.abs(got - load_generator(dcgan_run).predict(z)).max() <= VERIFY_TOL


@pytest.mark.parametrize(
    "args,message",
    [
        (["--format", "tflite"], "Invalid value for '--format'"),
        (["--format", "onnx", "--generator-missing"], "generator folder"),
        (["--format", "onnx", "--out", "model.pt"], "does not fit --format onnx"),
    ],
)
def test_cli_export_bad_inputs_exit_2_with_one_line(tmp_path, dcgan_run, args, message):
    generator = tmp_path / "missing" if "--generator-missing" in args else dcgan_run
    args = [a for a in args if a != "--generator-missing"]
    proc = run_cli("export", "--generator", generator, *args, cwd=tmp_path, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "model.pt").exists()
