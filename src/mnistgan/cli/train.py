"""`mnistgan train`: the flags, a resume's allowed changes, then training.run_training."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from ..config import load_config, to_dict, validate, with_overrides
from ..errors import MnistganError
from ..presets import resolve_config
from ..training import run_training
from .options import PRESET_HELP, config_options, given_settings

RESUME_MAY_CHANGE = ("epochs", "time_budget", "device", "log_every", "checkpoint_every")


@click.command("train")
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="replay a run: its config.json"
)
@click.option("--preset", type=str, default=None, help=PRESET_HELP)
@click.option("--out-dir", default="runs", show_default=True, help="where new run folders are created")
@click.option("--run-dir", default=None, help="exact folder for this run (must not hold another run)")
@click.option("--resume", default=None, help="continue the run in this folder from its last checkpoint")
@click.option("--dry-run", is_flag=True, help="print the resolved config as JSON and exit")
@click.option("--progress/--no-progress", default=True, show_default=True, help="progress bar within epochs")
@config_options
def train_command(config_path, preset, out_dir, run_dir, resume, dry_run, progress, **flags):
    """Train a GAN; writes a self-describing run folder (see README)."""
    if resume:
        cfg = resume_config(resume, flags, config_path, preset)
    else:
        cfg = resolve_config(config_path, preset, given_settings(flags))
    if dry_run:
        click.echo(json.dumps(to_dict(cfg), indent=2))
        return
    run = run_training(
        cfg, out_dir=out_dir, run_dir=run_dir, resume=resume, progress=progress, log=lambda m: click.echo(m)
    )
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 reports (as it logs)
        click.echo(f"Run folder: {run}")


def resume_config(resume: str, flags: dict, config_path, preset):
    """The run's own config, with only what a resume may change (--epochs, --time-budget, ...)."""
    given = given_settings(flags)
    extra = sorted(set(given) - set(RESUME_MAY_CHANGE))
    if extra or config_path or preset:
        bad = extra[0].replace("_", "-") if extra else ("config" if config_path else "preset")
        raise MnistganError(
            f"--resume continues a run with its own config; --{bad} cannot change it "
            f"(allowed: --epochs, --time-budget, --device)"
        )
    if not Path(resume).is_dir():
        raise MnistganError(
            f"run folder {resume} not found; --resume takes the folder of an earlier run "
            f"(e.g. runs/00000-mnist-dcgan-bce)"
        )
    if not (Path(resume) / "config.json").is_file():
        raise MnistganError(
            f"{resume} is not a run folder (no config.json); --resume takes a folder that "
            f"mnistgan train wrote"
        )
    return validate(with_overrides(load_config(Path(resume) / "config.json"), given))
