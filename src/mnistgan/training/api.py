"""The Python API of training: `mnistgan.train(...)` -> the run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from torch import nn

from ..config import Config
from ..errors import MnistganError
from ..presets import resolve_config
from .loop import run_training


def train(
    config: Optional[Config | dict | str] = None,
    preset: Optional[str] = None,
    out_dir: str | Path = "runs",
    run_dir: Optional[str | Path] = None,
    progress: bool = True,
    generator: Optional[nn.Module] = None,
    discriminator: Optional[nn.Module] = None,
    resume: Optional[str | Path] = None,
    **settings,
) -> Path:
    """Train a GAN (or the VAE baseline) and return its run folder.

    `mnistgan.train(epochs=1, model="mlp")`, `mnistgan.train(preset="fast", epochs=2)`: settings are
    the config fields by name (`mnistgan train --help` lists them); they override the preset, which
    overrides `config` (a Config, a dict shaped like config.json, or the path of a config.json).
    `generator=MyG(...), discriminator=MyD(...)` trains your own module instances (see
    models/custom.py for the shapes they may have); `resume=RUN` continues a run (with the same
    instances, for one trained that way).
    """
    if (generator is None) != (discriminator is None):
        raise MnistganError("give both generator= and discriminator= (your own G and D), or neither")
    instances = None
    if generator is not None:
        kinds = [type(m) for m in (generator, discriminator)]
        settings = {**settings, "model": f"{kinds[0].__module__}:{kinds[0].__name__},{kinds[1].__name__}"}
        instances = (generator, discriminator)
    if resume is not None:
        cfg = resolve_config(Path(resume) / "config.json", None, settings, skip_none=False)
    else:
        cfg = resolve_config(config, preset, settings, skip_none=False)
    return run_training(
        cfg, out_dir=out_dir, run_dir=run_dir, resume=resume, progress=progress, instances=instances
    )
