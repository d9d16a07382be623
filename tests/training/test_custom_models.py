"""Your own G and D through the whole harness: `mnistgan train --model FILE.py:G,D` writes the run
folder a built-in model writes, every command reads it back without running your code (only the
traced graph saved beside the weights), and resume, sweeps, torchrun and the Python API work."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from torch import nn

import mnistgan
from mnistgan.generator import load_generator

from helpers import run_cli, torchrun

# the course template's style; importing it leaves a marker file, so a test can tell whether it ran
COURSE = textwrap.dedent("""
    from pathlib import Path

    from torch import nn

    Path(__file__).with_name("imported.marker").touch()


    class Generator(nn.Module):
        def __init__(self, z_dim=100, img_dim=784, hidden=256):
            super().__init__()
            self.gen = nn.Sequential(
                nn.Linear(z_dim, hidden), nn.LeakyReLU(0.2), nn.BatchNorm1d(hidden),
                nn.Linear(hidden, img_dim), nn.Tanh())

        def forward(self, x):
            return self.gen(x)


    class Discriminator(nn.Module):
        def __init__(self, img_dim=784, hidden=256):
            super().__init__()
            self.disc = nn.Sequential(
                nn.Linear(img_dim, hidden), nn.LeakyReLU(0.2), nn.Dropout(0.3),
                nn.Linear(hidden, 1), nn.Sigmoid())

        def forward(self, x):
            return self.disc(x)
""")
TINY = ["--epochs", "2", "--limit", "256", "--batch-size", "32", "--z-dim", "16", "--no-progress"]


@pytest.fixture(scope="module")
def course_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("custom")
    (root / "course_gan.py").write_text(COURSE)
    out = run_cli(
        "train",
        "--model",
        "course_gan.py:Generator,Discriminator",
        "--model-arg",
        "hidden=16",
        "--eval-every",
        "2",
        "--eval-samples",
        "300",
        "--run-dir",
        root / "run",
        *TINY,
        cwd=root,
    )
    assert out.stdout.count("Adapted: ") == 3  # flat G output, flat D input, D's Sigmoid
    (root / "imported.marker").unlink()  # training ran the user's code: it must not run again below
    return root / "run"


def test_the_run_folder_is_a_built_in_models_and_says_what_it_is(course_run):
    names = {p.name for p in course_run.iterdir()}
    assert {
        "config.json",
        "log.jsonl",
        "final_grid.png",
        "comparison.png",
        "losses.png",
        "progress.gif",
        "final_generated_images",
        "real_samples.png",
        "samples",
        "checkpoints",
        "generator",
    } <= names
    assert (course_run / "model_source" / "course_gan.py").read_text() == COURSE
    assert json.loads((course_run / "metrics.json").read_text())["samples"]["n"] == 300  # --eval-every
    assert sorted(p.name for p in (course_run / "generator").iterdir()) == [
        "config.json",
        "model.safetensors",
        "model.torchscript.pt",
        "source",
    ]
    cfg = json.loads((course_run / "config.json").read_text())["model"]
    assert cfg["model"] == "course_gan.py:Generator,Discriminator" and cfg["model_args"] == {"hidden": 16}
    arch = json.loads((course_run / "architecture.json").read_text())
    assert arch["G"][0][0] == "Linear 16→16" and arch["G_params"] == 16 * 16 + 16 + 32 + 16 * 784 + 784


def test_every_reader_works_without_running_the_users_code(course_run, tmp_path):
    run_cli("generate", "--generator", course_run, "--seed", 504, "--n", 25, "--out", tmp_path / "g.npz")
    images = np.load(tmp_path / "g.npz")["images"]
    z = np.random.RandomState(504).normal(size=[25, 16])
    predicted = load_generator(course_run / "generator").predict(z)  # the course snippet
    assert np.abs(predicted * 255 - images).max() <= 0.5 + 1e-4
    run_cli("evaluate", "--generator", course_run, "--n", 300, "--out", tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text())["samples"]["n"] == 300
    run_cli("interpolate", "--generator", course_run, "--out", tmp_path / "i.png", "--steps", 3, "--rows", 2)
    run_cli("export", "--generator", course_run, "--format", "onnx", "--out", tmp_path / "o")
    run_cli("export", "--generator", course_run, "--format", "torchscript", "--out", tmp_path / "t")
    report = run_cli("report", course_run, "--out", tmp_path / "rep", "--eval-n", 300, "--no-pdf")
    assert "best" in report.stdout
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "Linear 16→16" in html and "BatchNorm1d" in html  # the layer table of the user's modules
    assert not (course_run.parent / "imported.marker").exists()


def test_trust_code_builds_the_class_and_keras_maps_its_layers(course_run, tmp_path):
    proc = run_cli(
        "export", "--generator", course_run, "--format", "keras-h5", "--out", tmp_path / "k", check=False
    )
    assert (
        proc.returncode == 2 and "--trust-code" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    )
    z = np.random.RandomState(1).normal(size=[4, 16])
    trusted = load_generator(course_run, trust_code=True)
    assert np.abs(trusted.predict(z) - load_generator(course_run).predict(z)).max() <= 1e-5
    run_cli(
        "export", "--generator", course_run, "--format", "keras-h5", "--trust-code", "--out", tmp_path / "k"
    )
    assert (tmp_path / "k" / "generator.h5").is_file()


def test_resume_and_a_sweep_over_a_model_arg(course_run, tmp_path):
    out = run_cli("train", "--resume", course_run, "--epochs", 3, "--no-progress")
    assert "Resuming" in out.stdout and "at epoch 3" in out.stdout
    root = course_run.parent
    run_cli(
        "sweep",
        "--grid",
        "model_arg.hidden=8,12",
        "--model",
        "course_gan.py:Generator,Discriminator",
        "--sweep-dir",
        tmp_path / "sw",
        "--epochs",
        1,
        "--limit",
        128,
        "--eval-n",
        200,
        "--no-progress",
        cwd=root,
    )
    for hidden in (8, 12):
        cfg = json.loads((tmp_path / "sw" / f"model_arg.hidden={hidden},seed=0" / "config.json").read_text())
        assert cfg["model"]["model_args"] == {"hidden": hidden}


class FlatG(nn.Module):
    def __init__(self, z_dim: int = 16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(z_dim, 32), nn.ReLU(), nn.Linear(32, 784), nn.Tanh())

    def forward(self, z):
        return self.net(z)


class ImageD(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 4, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 196, 1)
        )

    def forward(self, x):
        return self.net(x)


def test_the_python_api_trains_module_instances(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTGAN_OFFLINE", "1")
    run = mnistgan.train(
        generator=FlatG(16),
        discriminator=ImageD(),
        out_dir=tmp_path,
        epochs=1,
        limit=128,
        batch_size=32,
        z_dim=16,
        loss="hinge",
        time_budget=60,
        progress=False,
    )
    gen = load_generator(run)
    assert gen.predict(np.zeros((2, 16))).shape == (2, 28, 28)
    assert json.loads((run / "config.json").read_text())["model"]["model"].endswith(":FlatG,ImageD")


@pytest.mark.parametrize(
    "source, message",
    [("import torch\nthis is not python\n", "cannot import"), (COURSE, "has no class Gen")],
)
def test_bad_classes_exit_2_with_one_line_and_write_nothing(tmp_path, source, message):
    (tmp_path / "bad.py").write_text(source)
    classes = "Generator,Discriminator" if "cannot import" in message else "Gen,Discriminator"
    proc = run_cli("train", "--model", f"bad.py:{classes}", *TINY, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_torchrun_trains_your_own_classes(tmp_path):
    """Two gloo processes on a BatchNorm-free pair (CPU processes cannot synchronise BatchNorm)."""
    (tmp_path / "pair.py").write_text(
        textwrap.dedent("""
        from torch import nn

        class G(nn.Module):
            def __init__(self, z_dim):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(z_dim, 784), nn.Tanh())

            def forward(self, z):
                return self.net(z)

        class D(nn.Module):
            def __init__(self, img_dim):
                super().__init__()
                self.net = nn.Linear(img_dim, 1)

            def forward(self, x):
                return self.net(x)
    """)
    )
    args = ["--model", "pair.py:G,D", "--run-dir", "run", "--device", "cpu", *TINY]
    proc = torchrun("train", *args, cwd=tmp_path)
    assert (
        "2 processes" in proc.stdout and (tmp_path / "run" / "generator" / "model.torchscript.pt").is_file()
    )
