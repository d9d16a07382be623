"""`mnistgan report`: HTML and PDF on runs, sweeps or folders of runs."""

from __future__ import annotations

import click

from ..reporting import report


@click.command("report")
@click.argument("paths", nargs=-1, required=True, metavar="RUN_OR_SWEEP_DIR...")
@click.option(
    "--out", "out", default="report", show_default=True, help="folder for report.html and report.pdf"
)
@click.option("--title", default=None, help="report title  [default: GAN training report]")
@click.option("--pdf/--no-pdf", default=True, show_default=True, help="also write report.pdf")
@click.option(
    "--evaluate/--no-evaluate",
    "evaluate",
    default=True,
    show_default=True,
    help="score finished runs that have no metrics.json yet",
)
@click.option(
    "--eval-n", type=int, default=2000, show_default=True, help="samples scored per run when evaluating"
)
def report_command(paths, out, title, pdf, evaluate, eval_n):
    """Write a report (HTML with embedded images, and PDF) on runs, sweeps or folders of runs."""
    info = report(list(paths), out, title=title, pdf=pdf, evaluate=evaluate, eval_n=eval_n, log=click.echo)
    pages = f" and {info['pdf']} ({info['pages']} pages)" if info["pdf"] else ""
    click.echo(
        f"Wrote {info['html']}{pages} on {len(info['runs'])} run{'s' * (len(info['runs']) != 1)}"
        + (f"; best: {info['best']}" if info["best"] else "")
    )
