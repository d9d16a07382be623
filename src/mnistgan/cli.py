"""Command line: parsing only. Every command calls a library function.

Config flags are generated from the config dataclasses (one `--kebab-case` flag per field,
its help line and default shown), so the CLI, config.json and the Python API never drift.
"""

from __future__ import annotations

import json
import os
import sys
import typing

import click

from . import __version__
from .errors import MnistganError

# Named recipes (docs/benchmarks.md has the measurements behind them). A preset sets fields;
# flags given on the command line still override it.
_HINGE_SN = {"loss": "hinge", "d_norm": "spectral", "beta1": 0.0, "beta2": 0.9}
PRESETS: dict[str, dict] = {
    "default": {},
    # hinge loss + spectral-norm D + Adam(0, 0.9) at 4e-4, batch 64 (+ the default 100 clusters): the
    # best FID per epoch measured, first to the textbook setups' 10-minute FID (docs/benchmarks.md)
    "fast": {**_HINGE_SN, "lr": 4e-4, "batch_size": 64},
    # the same recipe, trained longer (pair it with --time-budget): in 15 minutes on 2 CPU cores FID
    # 0.77 with recall 0.77; the BCE default reached 0.87 with recall 0.73 (docs/benchmarks.md)
    "best": {**_HINGE_SN, "lr": 4e-4, "batch_size": 64, "epochs": 100, "ema_decay": 0.999, "sample_every": 5},
    # small data (--digit D --limit N): DiffAugment keeps D from memorising a few thousand images
    "small-data": {**_HINGE_SN, "lr": 4e-4, "batch_size": 64, "epochs": 60, "diffaug": "translation,cutout"},
    # the autoencoder baseline with its usual optimiser settings
    "vae": {"model": "vae", "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "ema_decay": 0.0},
    # the course material's setups, for side-by-side comparisons
    "textbook-mlp": {"model": "mlp", "g_activation": "leaky_relu", "dropout": 0.3, "batch_size": 64,
                     "ema_decay": 0.0, "precision": "fp32", "init": "default", "clusters": 0},
    "textbook-dcgan": {"model": "dcgan", "batch_size": 64, "ema_decay": 0.0, "precision": "fp32", "clusters": 0},
}


def _click_type(typ):
    origin = typing.get_origin(typ)
    if origin is typing.Union:
        typ = next(a for a in typing.get_args(typ) if a is not type(None))
    return {int: click.INT, float: click.FLOAT, bool: click.BOOL}.get(typ, click.STRING)


def config_options(func):
    """Add one option per config field; all default to None so we know what was given."""
    from .config import flat_fields

    for name, (section, f, typ) in reversed(list(flat_fields().items())):
        default = f.default
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        choices = f.metadata.get("choices")
        help_text = f.metadata["help"] + (f" [{'|'.join(choices)}]" if choices else "")
        if shown not in (None, ""):  # an unset field's help says what unset means; [default: X] as click shows it
            help_text += f"  [default: {shown}]"
        flag = name.replace("_", "-")
        if typ is bool:  # --conditional / --no-conditional
            func = click.option(f"--{flag}/--no-{flag}", name, default=None, help=help_text)(func)
        else:
            func = click.option(f"--{flag}", name, type=_click_type(typ), default=None, help=help_text)(func)
    return func


def resolve_config(config_path, preset, flags: dict):
    """Defaults <- --config file <- --preset <- explicit flags."""
    from .config import Config, load_config, validate, with_overrides

    cfg = load_config(config_path) if config_path else Config()
    if preset:
        if preset not in PRESETS:
            raise MnistganError(f"unknown preset '{preset}'; choose one of: {', '.join(PRESETS)}")
        cfg = with_overrides(cfg, PRESETS[preset])
    given = {k: v for k, v in flags.items() if v is not None}
    return validate(with_overrides(cfg, given))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="mnistgan")
def cli():
    """Train, evaluate, sample and report GANs on MNIST-style 28x28 images."""


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="replay a run: its config.json")
@click.option("--preset", type=str, default=None, help=f"a named recipe [{'|'.join(PRESETS)}]")
@click.option("--out-dir", default="runs", show_default=True, help="where new run folders are created")
@click.option("--run-dir", default=None, help="exact folder for this run (must not hold another run)")
@click.option("--resume", default=None, help="continue the run in this folder from its last checkpoint")
@click.option("--dry-run", is_flag=True, help="print the resolved config as JSON and exit")
@click.option("--progress/--no-progress", default=True, show_default=True, help="progress bar within epochs")
@config_options
def train(config_path, preset, out_dir, run_dir, resume, dry_run, progress, **flags):
    """Train a GAN; writes a self-describing run folder (see README)."""
    from .config import load_config, to_dict, validate, with_overrides
    from .train import train as run_training

    if resume:
        from pathlib import Path

        allowed = {"epochs", "time_budget", "device", "log_every", "checkpoint_every"}
        given = {k: v for k, v in flags.items() if v is not None}
        extra = sorted(set(given) - allowed)
        if extra or config_path or preset:
            bad = extra[0].replace("_", "-") if extra else ("config" if config_path else "preset")
            raise MnistganError(f"--resume continues a run with its own config; --{bad} cannot change it "
                                f"(allowed: --epochs, --time-budget, --device)")
        if not Path(resume).is_dir():
            raise MnistganError(f"run folder {resume} not found; --resume takes the folder of an earlier run "
                                f"(e.g. runs/00000-mnist-dcgan-bce)")
        if not (Path(resume) / "config.json").is_file():
            raise MnistganError(f"{resume} is not a run folder (no config.json); --resume takes a folder that "
                                f"mnistgan train wrote")
        cfg = validate(with_overrides(load_config(Path(resume) / "config.json"), given))
    else:
        cfg = resolve_config(config_path, preset, flags)
    if dry_run:
        click.echo(json.dumps(to_dict(cfg), indent=2))
        return
    run = run_training(cfg, out_dir=out_dir, run_dir=run_dir, resume=resume, progress=progress,
                       log=lambda m: click.echo(m))
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 reports (as it logs)
        click.echo(f"Run folder: {run}")


@cli.command()
@click.option("--generator", "generator", required=True, help="generator folder (or run folder)")
@click.option("--n", "n", type=int, default=25, show_default=True, help="how many images")
@click.option("--seed", type=int, default=504, show_default=True, help="noise seed: z = RandomState(seed).normal(size=[n, z_dim])")
@click.option("--out", "out", required=True, help="*.png: one grid; *.npz: uint8 (N, 28, 28); else a folder of PNGs")
@click.option("--digit", type=int, default=None, help="conditional generators: draw only this digit")
def generate(generator, n, seed, out, digit):
    """Generate images from a saved generator."""
    from .sample import load_generator, write_images

    if n <= 0:
        raise MnistganError(f"--n must be positive, got {n}")
    if digit is not None and not 0 <= digit <= 9:
        raise MnistganError(f"--digit must be between 0 and 9, got {digit}")
    gen = load_generator(generator)
    labels = gen._labels(digit, n).cpu().numpy() if gen.conditional else gen._labels(digit, n)
    images = gen.generate(n, seed, labels)
    kind = write_images(images, out, labels)
    click.echo(f"Wrote {n} images ({kind}) to {out}")


def main(argv=None) -> None:
    """Entry point: one clear line on errors (no traceback), exit status 2; 130 on Ctrl-C."""
    try:
        cli.main(args=argv, prog_name="mnistgan", standalone_mode=False)
    except MnistganError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except click.ClickException as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # bare `mnistgan`: show the help
            click.echo(e.format_message())
            sys.exit(0)
        msg = e.format_message().replace("\n", " ")
        click.echo(f"error: {msg} (see mnistgan {(e.ctx.info_name + ' ') if getattr(e, 'ctx', None) and e.ctx.parent else ''}--help)", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)


# --- export and interpolate commands ---
from .cli_export import export_command, interpolate_command  # noqa: E402

cli.add_command(export_command)
cli.add_command(interpolate_command)

# --- evaluator commands ---
from .evaluate.commands import evaluate_cmd, predict_cmd  # noqa: E402

cli.add_command(evaluate_cmd)
cli.add_command(predict_cmd)

# --- sweep and report commands ---
from .cli_sweep import report_command, sweep_command  # noqa: E402

cli.add_command(sweep_command)
cli.add_command(report_command)
