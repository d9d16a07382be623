"""`mnistgan sweep`: a grid of settings x seeds through the shared work queue."""

from __future__ import annotations

import click

from ..errors import MnistganError
from ..presets import preset_settings
from ..sweep import join, sweep
from .options import PRESET_HELP, config_options, given_settings


@click.command("sweep")
@click.argument("more_grid", nargs=-1, metavar="[KEY=V1,V2 ...]")
@click.option(
    "--grid",
    "grid",
    multiple=True,
    metavar="KEY=V1,V2",
    help="a setting and its values, e.g. --grid lr=1e-4,2e-4 batch_size=64,128 model=mlp,dcgan "
    "(further KEY=... may follow without --grid)",
)
@click.option(
    "--seeds",
    default="1",
    show_default=True,
    help="seeds per combination: a count N (0..N-1) or a list 0,5,9",
)
@click.option(
    "--sweep-dir",
    default=None,
    help="the sweep folder  [default: sweeps/sweep-<hash of grid, seeds, settings>]",
)
@click.option(
    "--storage",
    default=None,
    help="Optuna storage URL for the work queue  [default: sqlite:///<sweep-dir>/optuna.db; "
    "several machines: postgresql://user@host/db]",
)
@click.option(
    "--workers", type=int, default=1, show_default=True, help="local worker processes (this one included)"
)
@click.option(
    "--join",
    "join_dir",
    default=None,
    help="work on the existing sweep in this folder (another terminal or machine)",
)
@click.option(
    "--eval-n",
    type=int,
    default=5000,
    show_default=True,
    help="samples scored per run (FID, IS, coverage, ...)",
)
@click.option("--preset", type=str, default=None, help=PRESET_HELP.replace("recipe", "recipe for every run"))
@click.option("--progress/--no-progress", default=True, show_default=True, help="progress bar within epochs")
@config_options
def sweep_command(
    more_grid, grid, seeds, sweep_dir, storage, workers, join_dir, eval_n, preset, progress, **flags
):
    """Train and evaluate every combination of a grid for several seeds; write results.csv and results.md.

    Each run is a normal run folder inside the sweep folder. Re-running the same command skips
    finished runs and resumes unfinished ones. Other settings (--epochs 5, --limit 5000, ...) apply to
    every run.
    """
    given = given_settings(flags)
    if join_dir:
        if grid or more_grid or given or preset:
            raise MnistganError(
                "--join takes its grid and settings from the sweep's sweep.json; drop the other options"
            )
        join(join_dir, storage=storage, progress=progress, log=click.echo)
        return
    specs = list(grid) + list(more_grid)
    if not specs:
        raise MnistganError(
            "give a grid, e.g. mnistgan sweep --grid lr=1e-4,2e-4 batch_size=64,128 --seeds 3"
        )
    base = {**preset_settings(preset), **given}
    folder = sweep(
        specs,
        seeds=seeds,
        sweep_dir=sweep_dir,
        base=base,
        storage=storage,
        workers=workers,
        eval_n=eval_n,
        progress=progress,
        log=click.echo,
    )
    click.echo(f"Sweep folder: {folder}")
