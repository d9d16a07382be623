"""The `sweep` and `report` commands (parsing only; the work is in sweep*.py and report*.py).

Registered on the main group at the end of cli.py. Heavy imports (torch, optuna, fpdf) happen
inside the commands so that `mnistgan --help` stays fast.
"""

from __future__ import annotations

import click

from .cli import PRESETS, config_options
from .errors import MnistganError


@click.command("sweep")
@click.argument("more_grid", nargs=-1, metavar="[KEY=V1,V2 ...]")
@click.option("--grid", "grid", multiple=True, metavar="KEY=V1,V2",
              help="a setting and its values, e.g. --grid lr=1e-4,2e-4 batch_size=64,128 model=mlp,dcgan "
                   "(further KEY=... may follow without --grid)")
@click.option("--seeds", default="1", show_default=True, help="seeds per combination: a count N (0..N-1) or a list 0,5,9")
@click.option("--sweep-dir", default=None, help="the sweep folder  [default: sweeps/sweep-<hash of grid, seeds, settings>]")
@click.option("--storage", default=None,
              help="Optuna storage URL for the work queue  [default: sqlite:///<sweep-dir>/optuna.db; "
                   "several machines: postgresql://user@host/db]")
@click.option("--workers", type=int, default=1, show_default=True, help="local worker processes (this one included)")
@click.option("--join", "join_dir", default=None, help="work on the existing sweep in this folder (another terminal or machine)")
@click.option("--eval-n", type=int, default=5000, show_default=True, help="samples scored per run (FID, IS, coverage, ...)")
@click.option("--preset", type=str, default=None, help=f"a named recipe for every run [{'|'.join(PRESETS)}]")
@click.option("--progress/--no-progress", default=True, show_default=True, help="progress bar within epochs")
@config_options
def sweep_command(more_grid, grid, seeds, sweep_dir, storage, workers, join_dir, eval_n, preset, progress, **flags):
    """Train and evaluate every combination of a grid for several seeds; write results.csv and results.md.

    Each run is a normal run folder inside the sweep folder. Re-running the same command skips
    finished runs and resumes unfinished ones. Other settings (--epochs 5, --limit 5000, ...) apply to
    every run.
    """
    from .sweep import join, sweep

    given = {k: v for k, v in flags.items() if v is not None}
    if join_dir:
        if grid or more_grid or given or preset:
            raise MnistganError("--join takes its grid and settings from the sweep's sweep.json; drop the other options")
        join(join_dir, storage=storage, progress=progress, log=click.echo)
        return
    specs = list(grid) + list(more_grid)
    if not specs:
        raise MnistganError("give a grid, e.g. mnistgan sweep --grid lr=1e-4,2e-4 batch_size=64,128 --seeds 3")
    if preset and preset not in PRESETS:
        raise MnistganError(f"unknown preset '{preset}'; choose one of: {', '.join(PRESETS)}")
    base = dict(PRESETS[preset]) if preset else {}
    base.update(given)
    folder = sweep(specs, seeds=seeds, sweep_dir=sweep_dir, base=base, storage=storage, workers=workers,
                   eval_n=eval_n, progress=progress, log=click.echo)
    click.echo(f"Sweep folder: {folder}")


@click.command("report")
@click.argument("paths", nargs=-1, required=True, metavar="RUN_OR_SWEEP_DIR...")
@click.option("--out", "out", default="report", show_default=True, help="folder for report.html and report.pdf")
@click.option("--title", default=None, help="report title  [default: GAN training report]")
@click.option("--pdf/--no-pdf", default=True, show_default=True, help="also write report.pdf")
@click.option("--evaluate/--no-evaluate", "evaluate", default=True, show_default=True,
              help="score finished runs that have no metrics.json yet")
@click.option("--eval-n", type=int, default=2000, show_default=True, help="samples scored per run when evaluating")
def report_command(paths, out, title, pdf, evaluate, eval_n):
    """Write a report (HTML with embedded images, and PDF) on runs, sweeps or folders of runs."""
    from .report import report

    info = report(list(paths), out, title=title, pdf=pdf, evaluate=evaluate, eval_n=eval_n, log=click.echo)
    pages = f" and {info['pdf']} ({info['pages']} pages)" if info["pdf"] else ""
    click.echo(f"Wrote {info['html']}{pages} on {len(info['runs'])} run{'s' * (len(info['runs']) != 1)}"
               + (f"; best: {info['best']}" if info["best"] else ""))
