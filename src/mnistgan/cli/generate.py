"""`mnistgan generate` and `mnistgan interpolate`: images from a saved generator."""

from __future__ import annotations

import click

from ..errors import MnistganError
from ..generator import COURSE_SEED, load_generator
from ..generator.images import write_images
from ..generator.interpolate import FRAME_MS, interpolate

TRUST_CODE_HELP = (
    "your own generator (--model FILE.py:G,D): run its Python class instead of the traced graph saved with it"
)


@click.command("generate")
@click.option("--generator", "generator", required=True, help="generator folder (or run folder)")
@click.option("--n", "n", type=int, default=25, show_default=True, help="how many images")
@click.option(
    "--seed",
    type=int,
    default=COURSE_SEED,
    show_default=True,
    help="noise seed: z = RandomState(seed).normal(size=[n, z_dim])",
)
@click.option(
    "--out", "out", required=True, help="*.png: one grid; *.npz: uint8 (N, 28, 28); else a folder of PNGs"
)
@click.option("--digit", type=int, default=None, help="conditional generators: draw only this digit")
@click.option("--trust-code", is_flag=True, help=TRUST_CODE_HELP)
def generate_command(generator, n, seed, out, digit, trust_code):
    """Generate images from a saved generator."""
    if n <= 0:
        raise MnistganError(f"--n must be positive, got {n}")
    if digit is not None and not 0 <= digit <= 9:
        raise MnistganError(f"--digit must be between 0 and 9, got {digit}")
    gen = load_generator(generator, trust_code=trust_code)
    labels = gen.labels_for(digit, n)
    labels = labels.cpu().numpy() if labels is not None else None
    images = gen.generate(n, seed, labels)
    kind = write_images(images, out, labels)
    click.echo(f"Wrote {n} images ({kind}) to {out}")


@click.command("interpolate")
@click.option("--generator", "generator", required=True, help="generator folder (or run folder)")
@click.option("--out", "out", required=True, help="grid PNG: one row per path, one column per step")
@click.option("--steps", type=int, default=10, show_default=True, help="images per path, endpoints included")
@click.option(
    "--rows",
    type=int,
    default=4,
    show_default=True,
    help="paths (rows); a conditional generator always shows the 10 digits",
)
@click.option(
    "--seed",
    type=int,
    default=COURSE_SEED,
    show_default=True,
    help="endpoint noise: RandomState(seed).normal(size=[2 * rows, z_dim])",
)
@click.option("--gif", "gif", default=None, help="animated GIF  [default: --out with .gif]")
@click.option(
    "--slerp/--lerp",
    "use_slerp",
    default=True,
    show_default=True,
    help="spherical (keeps Gaussian norms) or straight-line interpolation",
)
@click.option(
    "--frame-ms", type=int, default=FRAME_MS, show_default=True, help="GIF frame duration in milliseconds"
)
@click.option(
    "--hard-clusters",
    is_flag=True,
    default=False,
    help="cluster generators: G(z) itself along the path (it jumps where z_0 crosses a cluster "
    "threshold) instead of blending the endpoints' cluster codes",
)
def interpolate_command(generator, out, steps, rows, seed, gif, use_slerp, frame_ms, hard_clusters):
    """Write a latent-interpolation grid (PNG) and its animation (GIF)."""
    info = interpolate(
        generator,
        out,
        steps=steps,
        rows=rows,
        seed=seed,
        gif=gif,
        method="slerp" if use_slerp else "lerp",
        ms_per_frame=frame_ms,
        blend_clusters=not hard_clusters,
    )
    click.echo(
        f"Wrote {info['rows']}x{info['steps']} grid to {info['png']} and "
        f"{info['frames']} frames to {info['gif']}"
    )
