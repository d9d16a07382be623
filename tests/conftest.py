"""Fixtures for every test: no network, a private cache, and one tiny real run shared by the session."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import TINY, run_cli


@pytest.fixture(autouse=True)
def _offline_cache(tmp_path_factory, monkeypatch):
    """Tests never touch the network or the user's cache."""
    monkeypatch.setenv("MNISTGAN_OFFLINE", "1")
    monkeypatch.setenv("MNISTGAN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One real training run through the CLI: 2 epochs of one 16-image step each."""
    root = tmp_path_factory.mktemp("tiny_run")
    env = {"MNISTGAN_OFFLINE": "1", "MNISTGAN_CACHE": str(root / "cache")}
    run_cli(
        "train",
        "--run-dir",
        root / "run",
        "--epochs",
        "2",
        "--limit",
        "16",
        "--sample-epochs",
        "1,2",
        "--log-every",
        "1",
        *TINY,
        cwd=root,
        env=env,
    )
    return root / "run"
