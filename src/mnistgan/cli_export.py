"""The `export` and `interpolate` commands (parsing only; the work is in export.py and interpolate.py).

Registered on the main group at the end of cli.py. Heavy imports (torch, onnx) happen inside
the commands so that `mnistgan --help` stays fast.
"""

from __future__ import annotations

import click

FORMATS = ("onnx", "torchscript", "keras-h5")  # export.FORMATS, repeated so --help needs no torch


@click.command("export")
@click.option("--generator", "generator", required=True, help="generator folder (or run folder)")
@click.option("--format", "fmt", required=True, type=click.Choice(FORMATS),
              help="onnx: generator.onnx; torchscript: generator.torchscript.pt; "
                   "keras-h5: generator.json (architecture) + generator.h5 (weights)")
@click.option("--out", "out", default=None,
              help="output folder, or a file name with the format's suffix  [default: <run>/export/]")
def export_command(generator, fmt, out):
    """Export a saved generator for use without mnistgan: z (N, z_dim) -> images (N, 28, 28) in [0, 1]."""
    from .export import export

    paths = export(generator, fmt, out, log=click.echo)
    click.echo("Wrote " + ", ".join(str(p) for p in paths))


@click.command("interpolate")
@click.option("--generator", "generator", required=True, help="generator folder (or run folder)")
@click.option("--out", "out", required=True, help="grid PNG: one row per path, one column per step")
@click.option("--steps", type=int, default=10, show_default=True, help="images per path, endpoints included")
@click.option("--rows", type=int, default=4, show_default=True,
              help="paths (rows); a conditional generator always shows the 10 digits")
@click.option("--seed", type=int, default=504, show_default=True,
              help="endpoint noise: RandomState(seed).normal(size=[2 * rows, z_dim])")
@click.option("--gif", "gif", default=None, help="animated GIF  [default: --out with .gif]")
@click.option("--slerp/--lerp", "use_slerp", default=True, show_default=True,
              help="spherical (keeps Gaussian norms) or straight-line interpolation")
@click.option("--frame-ms", type=int, default=120, show_default=True, help="GIF frame duration in milliseconds")
@click.option("--hard-clusters", is_flag=True, default=False,
              help="cluster generators: G(z) itself along the path (it jumps where z_0 crosses a cluster "
                   "threshold) instead of blending the endpoints' cluster codes")
def interpolate_command(generator, out, steps, rows, seed, gif, use_slerp, frame_ms, hard_clusters):
    """Write a latent-interpolation grid (PNG) and its animation (GIF)."""
    from .interpolate import interpolate

    info = interpolate(generator, out, steps=steps, rows=rows, seed=seed, gif=gif,
                       method="slerp" if use_slerp else "lerp", ms_per_frame=frame_ms,
                       blend_clusters=not hard_clusters)
    click.echo(f"Wrote {info['rows']}x{info['steps']} grid to {info['png']} and "
               f"{info['frames']} frames to {info['gif']}")
