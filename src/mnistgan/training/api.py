"""The Python API of training: `mnistgan.train(...)` -> the run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..config import Config
from ..presets import resolve_config
from .loop import run_training


def train(
    config: Optional[Config | dict | str] = None,
    preset: Optional[str] = None,
    out_dir: str | Path = "runs",
    run_dir: Optional[str | Path] = None,
    progress: bool = True,
    **settings,
) -> Path:
    """Train a GAN (or the VAE baseline) and return its run folder.

    `mnistgan.train(epochs=1, model="mlp")`, `mnistgan.train(preset="fast", epochs=2)`: settings are
    the config fields by name (`mnistgan train --help` lists them); they override the preset, which
    overrides `config` (a Config, a dict shaped like config.json, or the path of a config.json).
    """
    cfg = resolve_config(config, preset, settings, skip_none=False)
    return run_training(cfg, out_dir=out_dir, run_dir=run_dir, progress=progress)
