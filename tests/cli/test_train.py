"""A real two-epoch run through the CLI, and everything a user gets from it."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mnistgan.config import load_config
from mnistgan.generator.sample import course_noise, load_generator, run_generator, to_uint8
from mnistgan.models import build_generator
from mnistgan.training.state import load_checkpoint

from helpers import TINY, run_cli


def test_run_directory_has_every_output(tiny_run):
    files = {p.relative_to(tiny_run).as_posix() for p in tiny_run.rglob("*") if p.is_file()}
    expected = {
        "config.json",
        "log.jsonl",
        "real_samples.png",
        "samples/epoch_001.png",
        "samples/epoch_002.png",
        "progress.gif",
        "losses.png",
        "final_grid.png",
        "comparison.png",
        "generator/config.json",
        "generator/model.safetensors",
        "checkpoints/last.pt",
    }
    assert expected <= files, expected - files
    assert len(list((tiny_run / "final_generated_images").glob("*.png"))) == 100
    assert not [f for f in files if ".tmp" in f]  # no temporary files left behind
    img = Image.open(tiny_run / "final_generated_images" / "000.png")
    assert img.size == (28, 28) and img.mode == "L"
    assert Image.open(tiny_run / "final_grid.png").size == (5 * 28 * 4, 5 * 28 * 4)
    assert Image.open(tiny_run / "progress.gif").n_frames == 2


def test_log_and_config_describe_the_run(tiny_run):
    rows = [json.loads(line) for line in (tiny_run / "log.jsonl").read_text().splitlines()]
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert epochs[-1]["step"] == 2 and epochs[-1]["images"] == 32  # 2 epochs x 1 step x 16 images
    for r in epochs:
        assert np.isfinite(r["loss_d"]) and np.isfinite(r["loss_g"]) and 0 <= r["d_acc"] <= 1
    ticks = [r for r in rows if r["kind"] == "tick"]  # --log-every 1: one a step, speed included
    assert [r["step"] for r in ticks] == [1, 2] and all(r["images_per_s"] > 0 for r in ticks)
    cfg = load_config(tiny_run / "config.json")  # the saved config is valid and replayable
    assert cfg.model.g_width == 4 and cfg.data.limit == 16 and cfg.train.epochs == 2
    state = load_checkpoint(tiny_run / "checkpoints" / "last.pt")
    assert state["step"] == 2 and state["epoch"] == 3


def test_export_equals_in_memory_generator(tiny_run):
    """The exported generator reproduces the trained one (G_ema weights from the checkpoint)."""
    cfg = load_config(tiny_run / "config.json")
    state = load_checkpoint(tiny_run / "checkpoints" / "last.pt")
    G = build_generator(cfg.model)
    G.load_state_dict(state["G_ema"])
    z = course_noise(16, cfg.model.z_dim, 3)
    expected = run_generator(G, torch.from_numpy(z).float()).numpy()
    gen = load_generator(tiny_run / "generator")
    assert np.allclose(gen.predict(z), expected, atol=1e-6)
    out = gen.predict(np.random.normal(size=(3, cfg.model.z_dim)))
    assert out.shape == (3, 28, 28) and out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1


def test_generate_matches_final_grid_and_is_deterministic(tiny_run, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    run_cli("generate", "--generator", tiny_run / "generator", "--n", 25, "--seed", 504, "--out", a)
    run_cli("generate", "--generator", tiny_run, "--n", 25, "--seed", 504, "--out", b)
    assert a.read_bytes() == b.read_bytes()
    assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(tiny_run / "final_grid.png")))
    run_cli("generate", "--generator", tiny_run / "generator", "--n", 7, "--out", tmp_path / "x.npz")
    arr = np.load(tmp_path / "x.npz")["images"]
    assert arr.shape == (7, 28, 28) and arr.dtype == np.uint8
    run_cli("generate", "--generator", tiny_run / "generator", "--n", 3, "--out", tmp_path / "pngs")
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == ["000.png", "001.png", "002.png"]


def test_course_snippet_runs_against_load_generator(tiny_run):
    """The course's plotting code with only `generator.predict(z)` pointing at mnistgan."""
    import mnistgan

    generator = mnistgan.load_generator(tiny_run / "generator")
    z_dim = generator.z_dim
    np.random.seed(504)
    h = w = 28
    num_gen = 25
    z = np.random.normal(size=[num_gen, z_dim])
    generated_images = generator.predict(z)
    n = np.sqrt(num_gen).astype(np.int32)
    I_generated = np.empty((h * n, w * n))
    for i in range(n):
        for j in range(n):
            I_generated[i * h : (i + 1) * h, j * w : (j + 1) * w] = generated_images[i * n + j, :].reshape(
                28, 28
            )
    grid = np.asarray(Image.open(tiny_run / "final_grid.png"))[::4, ::4]  # undo the 4x upscale
    assert np.array_equal(to_uint8(I_generated), grid)


def test_dry_run_and_config_replay(tiny_run, tmp_path):
    """--dry-run prints the resolved config and writes nothing (run where a real run would write)."""
    out = run_cli(
        "train", "--config", tiny_run / "config.json", "--epochs", 9, "--dry-run", cwd=tmp_path
    ).stdout
    cfg = json.loads(out)
    assert cfg["train"]["epochs"] == 9 and cfg["model"]["g_width"] == 4 and cfg["data"]["limit"] == 16
    default = json.loads(run_cli("train", "--dry-run", cwd=tmp_path).stdout)
    assert list(tmp_path.iterdir()) == []  # no runs/ folder, no file
    run = run_cli("train", "--config", tiny_run / "config.json", "--epochs", 1, cwd=tmp_path)
    assert "Run folder: runs/00000-" in run.stdout  # the same command without --dry-run writes there
    assert (
        default["optim"]["lr"] == 2e-4
        and default["optim"]["beta1"] == 0.5
        and default["loss"]["loss"] == "bce"
    )


BAD = [
    (["train", "--dataset", "cifar"], "unknown dataset"),
    (["train", "--model", "resnet"], "unknown model"),
    (["train", "--loss", "foo"], "unknown loss"),
    (["train", "--batch-size", "0"], "batch_size must be positive"),
    (["train", "--epochs", "-3"], "epochs must be positive"),
    (["train", "--z-dim", "0"], "z_dim must be positive"),
    (["train", "--digit", "10"], "digit must be between 0 and 9"),
    (["train", "--digit", "3", "--conditional"], "--conditional with --digit 3 conditions on one label only"),
    (["train", "--lr", "abc"], "lr"),
    (["train", "--dataset", "kmnist"], "--data-dir"),
    (["generate", "--generator", "no/such/dir", "--out", "x.png"], "not found"),
    (
        ["train", "--resume", "no/such/run"],
        "run folder no/such/run not found; --resume takes the folder of an earlier run",
    ),
    (["train", "--resume", "."], "is not a run folder (no config.json)"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_gives_one_clear_line(tmp_path, args, message):
    proc = run_cli(
        *args,
        "--out-dir" if args[0] == "train" else "--n",
        "runs" if args[0] == "train" else "2",
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "runs").exists()  # nothing half-written


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
@pytest.mark.parametrize("command", ["generate", "interpolate", "evaluate"])
def test_seed_out_of_numpy_range_is_one_clear_line(tiny_run, tmp_path, command, seed):
    """The course noise is numpy's RandomState(seed): a seed outside [0, 2^32) is refused in one
    line (it was a ValueError traceback), and nothing is written."""
    out = ["--out", tmp_path / "x.png"] if command != "evaluate" else ["--n", "10"]
    proc = run_cli(
        command, "--generator", tiny_run / "generator", "--seed", seed, *out, cwd=tmp_path, check=False
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"--seed must be a whole number from 0 to {2**32 - 1}" in lines[0] and seed in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_empty_digit_selection_and_occupied_run_dir(tiny_run, tmp_path):

    from helpers import write_idx

    d = tmp_path / "ds"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte", np.zeros((4, 28, 28), np.uint8))
    write_idx(d / "train-labels-idx1-ubyte", np.array([1, 1, 2, 2], np.uint8))
    proc = run_cli(
        "train", "--data-dir", d, "--digit", 5, "--out-dir", tmp_path / "runs", cwd=tmp_path, check=False
    )
    assert proc.returncode != 0 and "no training images of digit 5" in proc.stderr
    assert not (tmp_path / "runs").exists()
    before = (tiny_run / "log.jsonl").read_bytes()
    proc = run_cli("train", "--run-dir", tiny_run, *TINY, check=False)
    assert proc.returncode != 0 and "already holds a run" in proc.stderr
    assert "Using device" not in proc.stdout  # said before any setup or data loading
    assert (tiny_run / "log.jsonl").read_bytes() == before  # nothing of the old run was touched


def test_corrupt_generator_is_refused(tiny_run, tmp_path):
    import shutil

    g = tmp_path / "g"
    shutil.copytree(tiny_run / "generator", g)
    (g / "model.safetensors").write_bytes(b"\x00" * 100)
    proc = run_cli("generate", "--generator", g, "--out", tmp_path / "x.png", check=False)
    assert proc.returncode == 2 and "corrupt" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_conditional_run_and_generate_digit(tmp_path):
    run = tmp_path / "cond"
    run_cli("train", "--conditional", "--run-dir", run, "--epochs", 1, "--limit", 32, *TINY)
    gen = load_generator(run / "generator")
    assert gen.conditional
    run_cli("generate", "--generator", run, "--digit", 7, "--n", 5, "--out", tmp_path / "sevens.npz")
    data = np.load(tmp_path / "sevens.npz")
    assert data["images"].shape == (5, 28, 28) and data["labels"].tolist() == [7] * 5
    # every image is G(z, 7): the same as asking the API for digit 7 with the same noise
    assert np.array_equal(data["images"], gen.generate(5, 504, labels=7))
    assert not np.array_equal(data["images"], gen.generate(5, 504, labels=3))
    proc = run_cli(
        "generate", "--generator", tmp_path / "cond", "--digit", 11, "--out", tmp_path / "x.png", check=False
    )
    assert proc.returncode == 2 and "--digit" in proc.stderr


def test_time_budget_stop_saves_the_last_epochs_grid(tmp_path, monkeypatch):
    """A --time-budget stop in the middle of epoch 2 still leaves that epoch's sample grid (the
    README: grids at --sample-epochs "and the last epoch"), next to epoch 1's; and with fewer steps
    than --log-every (no tick rows) the loss plot is drawn from the epoch rows, the partial one too
    (it had no epoch_progress, and finishing the run failed with a KeyError)."""
    import time
    import types

    import mnistgan
    import mnistgan.training.loop as loop
    import mnistgan.training.step as T

    # the loop's clock advances 0.1 s a step and 1.5 s in the first step of epoch 2 (3 steps an
    # epoch): the 1 s budget runs out there, however fast this machine is
    g_step, calls, clock = T.g_step, [0], [0.0]

    def slow_in_epoch_2(*a, **k):
        calls[0] += 1
        clock[0] += 1.5 if calls[0] == 4 else 0.1
        return g_step(*a, **k)

    monkeypatch.setattr(T, "g_step", slow_in_epoch_2)
    monkeypatch.setattr(
        loop, "time", types.SimpleNamespace(monotonic=lambda: clock[0], perf_counter=time.perf_counter)
    )
    monkeypatch.setenv("MNISTGAN_OFFLINE", "1")
    run = mnistgan.train(
        out_dir=tmp_path,
        progress=False,
        epochs=3,
        limit=48,
        batch_size=16,
        sample_epochs=(1,),
        time_budget=1.0,
        g_width=4,
        d_width=4,
        z_dim=8,
        clusters=0,
    )
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert (state["epoch"], state["batch"]) == (2, 1)  # stopped mid-epoch 2
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    assert (run / "losses.png").is_file() and (run / "generator" / "model.safetensors").is_file()
