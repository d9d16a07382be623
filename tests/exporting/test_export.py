"""Export: ONNX and TorchScript reproduce Generator.predict (z (N, z_dim) -> (N, 28, 28) in [0, 1]);
paths, optional dependencies and the CLI. keras-h5 is checked by Keras itself in test_keras.py."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from mnistgan.errors import MnistganError
from mnistgan.exporting.api import export, output_paths
from mnistgan.exporting.traced import VERIFY_TOL, write_onnx, write_torchscript
from mnistgan.generator.sample import Generator, load_generator

from exporting.toy_runs import VARIANTS, Z_DIM, make_run, random_z
from helpers import run_cli


@pytest.fixture(scope="module", params=["mlp", "dcgan"])
def family_run(request, tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp(request.param) / "run", **VARIANTS[request.param])


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("dcgan_cli") / "run", **VARIANTS["dcgan"])


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
    cfg = SimpleNamespace(model=SimpleNamespace(z_dim=Z_DIM, conditional=True, channels=1, n_classes=10))
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
    ort = pytest.importorskip("onnxruntime")
    run = make_run(tmp_path / "run", model="dcgan", g_width=4, conditional=True)
    (path,) = export(run, "onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    z, labels = random_z(3), np.array([1, 7, 7], dtype=np.int64)
    got = session.run(["images"], {"z": z, "labels": labels})[0]
    assert np.abs(got - load_generator(run).predict(z, labels)).max() <= VERIFY_TOL
    with pytest.raises(MnistganError, match="conditional"):
        export(run, "keras-h5")


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
        "export", "--generator", dcgan_run / "generator", "--format", "torchscript", "--out", tmp_path / "t"
    )
    assert [p.name for p in (tmp_path / "t").iterdir()] == ["generator.torchscript.pt"]
    assert "Wrote" in proc.stdout and "checked with torch.jit.load" in proc.stdout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torch.jit.load(str(tmp_path / "t" / "generator.torchscript.pt"))
    z = random_z(2)
    with torch.no_grad():
        got = model(torch.from_numpy(z)).numpy()
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
