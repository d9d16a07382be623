"""Stacked-MNIST end to end: a 3-channel run of each model family writes colour pictures, and
generate, evaluate (modes), interpolate, export (ONNX, TorchScript, Keras) and report take it."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mnistgan.exporting import export
from mnistgan.generator import load_generator

from helpers import run_cli

TINY = [
    "--dataset",
    "stacked-mnist",
    "--stacked-size",
    "512",
    "--epochs",
    "1",
    "--batch-size",
    "32",
    "--g-width",
    "8",
    "--d-width",
    "8",
    "--z-dim",
    "16",
    "--no-progress",
]


@pytest.fixture(scope="module", params=["dcgan", "mlp", "vae"])
def stacked_run(request, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp(f"stacked_{request.param}")
    run_cli("train", "--model", request.param, "--run-dir", root / "run", *TINY, cwd=root)
    return root / "run"


def test_a_stacked_run_draws_in_colour(stacked_run):
    cfg = json.loads((stacked_run / "config.json").read_text())
    assert cfg["model"]["channels"] == 3 and cfg["data"]["dataset"] == "stacked-mnist"
    for name in (
        "final_grid.png",
        "real_samples.png",
        "samples/epoch_001.png",
        "final_generated_images/000.png",
    ):
        with Image.open(stacked_run / name) as im:
            assert im.mode == "RGB", name
    with Image.open(stacked_run / "progress.gif") as gif:
        assert gif.convert("RGB").getextrema() != ((0, 0), (0, 0), (0, 0))
    assert load_generator(stacked_run).predict(np.zeros((2, 16))).shape == (2, 3, 28, 28)


def test_generate_and_evaluate_count_modes(stacked_run, tmp_path):
    run_cli("generate", "--generator", stacked_run, "--n", 300, "--out", tmp_path / "s.npz")
    images = np.load(tmp_path / "s.npz")["images"]
    assert images.shape == (300, 3, 28, 28) and images.dtype == np.uint8
    out = run_cli("evaluate", "--generator", stacked_run, "--n", 300, "--json", "--out", tmp_path / "m.json")
    result = json.loads(out.stdout)
    s, r = result["samples"], result["reference"]
    assert s["n"] == 300 and 1 <= s["modes_covered"] <= 300 and s["modes_kl"] >= 0
    assert r["modes_covered"] > 200  # 300 real stacked images: nearly all distinct triples
    again = run_cli("evaluate", "--samples", tmp_path / "s.npz", "--dataset", "stacked-mnist", "--json")
    assert json.loads(again.stdout)["samples"]["modes_covered"] == s["modes_covered"]  # the same images


def test_exports_keep_the_three_channels(stacked_run, tmp_path, monkeypatch):
    gen = load_generator(stacked_run)
    z = np.random.RandomState(3).normal(size=[5, 16]).astype(np.float32)
    expected = gen.predict(z)
    import onnxruntime as ort

    (onnx_path,) = export(stacked_run, "onnx", out=tmp_path)
    got = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(["images"], {"z": z})[
        0
    ]
    assert got.shape == (5, 3, 28, 28) and np.abs(got - expected).max() <= 1e-4
    (ts_path,) = export(stacked_run, "torchscript", out=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            got = torch.jit.load(str(ts_path))(torch.from_numpy(z)).numpy()
    assert np.abs(got - expected).max() <= 1e-4
    if gen.config.model.model != "vae":  # keras-h5 maps the mlp and dcgan families
        monkeypatch.setitem(os.environ, "KERAS_BACKEND", "torch")
        keras = pytest.importorskip("keras")
        json_path, h5_path = export(stacked_run, "keras-h5", out=tmp_path)
        model = keras.models.model_from_json(json_path.read_text())
        model.load_weights(str(h5_path))
        got = np.asarray(model.predict(z, verbose=0))
        assert got.shape == (5, 3, 28, 28) and np.abs(got - expected).max() <= 1e-4


def test_interpolate_and_report_take_colour(stacked_run, tmp_path):
    run_cli("interpolate", "--generator", stacked_run, "--out", tmp_path / "i.png", "--steps", 3, "--rows", 2)
    with Image.open(tmp_path / "i.png") as im:
        assert im.mode == "RGB" and im.size == (3 * 28 * 4, 2 * 28 * 4)
    out = run_cli("report", stacked_run, "--out", tmp_path / "rep", "--eval-n", 300, "--no-pdf")
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "Wrote" in out.stdout and "digit triples" in html
