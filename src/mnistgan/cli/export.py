"""`mnistgan export`: a saved generator for other runtimes."""

from __future__ import annotations

import click

from ..exporting import FORMATS, export
from .generate import TRUST_CODE_HELP


@click.command("export")
@click.option("--generator", "generator", required=True, help="generator folder (or run folder)")
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(FORMATS),
    help="onnx: generator.onnx; torchscript: generator.torchscript.pt; "
    "keras-h5: generator.json (architecture) + generator.h5 (weights); "
    "web: a folder whose index.html runs the generator in a browser, offline",
)
@click.option(
    "--out",
    "out",
    default=None,
    help="output folder, or a file name with the format's suffix; for web, the site's folder  "
    "[default: <run>/export/, web: <run>/export/web/]",
)
@click.option("--trust-code", is_flag=True, help=TRUST_CODE_HELP + " (keras-h5 maps its layers)")
def export_command(generator, fmt, out, trust_code):
    """Export a saved generator for use without mnistgan: z (N, z_dim) -> images (N, 28, 28) in [0, 1]."""
    paths = export(generator, fmt, out, log=click.echo, trust_code=trust_code)
    click.echo("Wrote " + ", ".join(str(p) for p in paths))
