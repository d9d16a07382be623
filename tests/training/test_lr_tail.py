"""--lr-tail: both learning rates fall linearly to 0 over the run's last fraction, whose end is the
last epoch or the time budget, whichever comes first (issue 18's schedule lever)."""

from __future__ import annotations

import time
import types

import pytest
import torch

import mnistgan
import mnistgan.training.loop as loop
import mnistgan.training.step as T
from mnistgan.training.state import load_checkpoint

from helpers import TINY, resume_from_epoch_1, run_cli

SMALL = dict(limit=64, batch_size=16, g_width=4, d_width=4, z_dim=8, clusters=0, progress=False)


def lrs(state: dict) -> tuple[float, float]:
    return state["opt_g"]["param_groups"][0]["lr"], state["opt_d"]["param_groups"][0]["lr"]


def test_epochs_end_the_run(tmp_path, monkeypatch):
    """2 epochs of 4 steps, tail 0.5: epoch 1 trains exactly as without the tail; epoch 2's steps
    take base x (1 - p) / 0.5 at progress p = 4/8 .. 7/8, so its last step 1/4 of the base rate."""
    monkeypatch.setenv("MNISTGAN_OFFLINE", "1")
    plain = mnistgan.train(out_dir=tmp_path / "a", epochs=2, lr_g=2e-4, lr_d=4e-4, **SMALL)
    tail = mnistgan.train(out_dir=tmp_path / "b", epochs=2, lr_g=2e-4, lr_d=4e-4, lr_tail=0.5, **SMALL)
    one = [load_checkpoint(run / "checkpoints" / "epoch_001.pt") for run in (plain, tail)]
    for key in ("G", "D"):
        for name, w in one[0][key].items():
            assert torch.equal(w, one[1][key][name]), name
    two = [load_checkpoint(run / "checkpoints" / "epoch_002.pt") for run in (plain, tail)]
    assert lrs(two[0]) == (2e-4, 4e-4)
    assert lrs(two[1]) == pytest.approx((2e-4 * 0.25, 4e-4 * 0.25), rel=1e-12)
    assert any(not torch.equal(w, two[1]["G"][n]) for n, w in two[0]["G"].items())


def test_time_budget_ends_the_run(tmp_path, monkeypatch):
    """A 1 s budget, the loop's clock 1/8 s a step: full rate while at most half the budget is used,
    then 1/4 less a step, whatever the (far) epoch count says."""
    g_step, clock, factors = T.g_step, [0.0], []

    def tick(*a, **k):
        clock[0] += 0.125
        return g_step(*a, **k)

    def record(optimizers, factor):
        factors.append(round(factor, 9))
        T.set_lr(optimizers, factor)

    monkeypatch.setattr(T, "g_step", tick)
    monkeypatch.setattr(loop, "set_lr", record)
    monkeypatch.setattr(
        loop, "time", types.SimpleNamespace(monotonic=lambda: clock[0], perf_counter=time.perf_counter)
    )
    monkeypatch.setenv("MNISTGAN_OFFLINE", "1")
    run = mnistgan.train(out_dir=tmp_path, epochs=100, time_budget=1.0, lr_tail=0.5, **SMALL)
    # the budget's share used before steps 1..8: 0, 1/8, ..., 7/8 (the stop comes after step 8)
    assert factors == [1.0] * 5 + [0.75, 0.5, 0.25]
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 8


def test_a_resumed_tail_run_is_bit_identical(tmp_path):
    """The schedule follows images seen, which the checkpoint holds: resuming changes nothing."""
    args = ["--epochs", "2", "--limit", "32", "--lr-tail", "0.75", "--clusters", "0", *TINY]
    run_cli("train", "--run-dir", tmp_path / "full", *args, env={"MNISTGAN_OFFLINE": "1"})
    resume_from_epoch_1(tmp_path / "full", tmp_path / "half")
    a, b = (load_checkpoint(tmp_path / d / "checkpoints" / "last.pt") for d in ("full", "half"))
    assert lrs(a) == lrs(b) and lrs(a)[0] < 2e-4
    for key in ("G", "D", "G_ema"):
        for name, w in a[key].items():
            assert torch.equal(w, b[key][name]), f"{key}.{name}"


def test_bad_tail_is_one_line(tmp_path):
    proc = run_cli("train", "--lr-tail", "1.5", "--dry-run", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "lr_tail must be in [0, 1), got 1.5" in proc.stderr
