"""The reports' shared fixtures: one small evaluated sweep, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mnistgan.sweep import sweep

BASE = {
    "g_width": 4,
    "d_width": 4,
    "z_dim": 8,
    "batch_size": 16,
    "limit": 64,
    "epochs": 2,
    "precision": "fp32",
    "log_every": 1,
    "sample_epochs": "1,2",
}


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory) -> Path:
    """dropout 0 vs 0.3, two seeds: four evaluated runs, paired by seed."""
    root = tmp_path_factory.mktemp("report_sweep")
    old = os.environ.get("MNISTGAN_CACHE")
    os.environ["MNISTGAN_CACHE"] = str(tmp_path_factory.getbasetemp() / "cache")  # the session's cache
    try:
        return sweep(
            ["dropout=0,0.3"], seeds=2, sweep_dir=root / "sw", base=BASE, eval_n=300, log=lambda m: None
        )
    finally:
        if old is None:
            os.environ.pop("MNISTGAN_CACHE")
        else:
            os.environ["MNISTGAN_CACHE"] = old
