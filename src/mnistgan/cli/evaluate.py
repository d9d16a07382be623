"""`mnistgan evaluate` and `mnistgan predict`: the bundled classifier on generated or given images."""

from __future__ import annotations

import json

import click

from ..evaluator import evaluate, predict
from ..evaluator.table import format_evaluation, format_prediction

DATASET_HELP = (
    "data set of the images [mnist|fashion-mnist|stacked-mnist]; a generator's own data set by default"
)


@click.command("evaluate")
@click.option("--generator", default=None, help="generator folder (or its run folder): generates --n images")
@click.option(
    "--samples",
    default=None,
    help="images instead: FILE.npz (uint8 or [0,1] floats), a folder of 28x28 PNGs, or a grid PNG",
)
@click.option(
    "--n",
    "n",
    type=int,
    default=None,
    help="how many samples to score  [default: 10,000; stacked-mnist: 26,000]",
)
@click.option("--seed", type=int, default=0, show_default=True, help="noise seed of the generated samples")
@click.option("--dataset", default=None, help=DATASET_HELP + " (mnist for --samples)")
@click.option("--data-dir", default=None, help="folder with the data set's IDX files (MNIST is bundled)")
@click.option(
    "--reference/--no-reference",
    default=True,
    show_default=True,
    help="also score real held-out images, printed beside the samples",
)
@click.option("--grid", default=None, help="ROWSxCOLS layout of a --samples grid PNG (default: guessed)")
@click.option(
    "--out",
    default=None,
    help="write the metrics JSON here (default: <run>/metrics.json for a generator inside a run folder)",
)
@click.option("--json", "as_json", is_flag=True, help="print the metrics as JSON only")
@click.option("--device", default="cpu", show_default=True, help="cpu | cuda | mps | auto")
@click.option(
    "--images",
    default=None,
    help="your own images to score against (a folder or .npz/.npy, as train --images reads): "
    "FID etc. in the bundled MNIST classifier's features  [default: a --images run's own]",
)
def evaluate_command(
    generator, samples, n, seed, dataset, data_dir, reference, grid, out, as_json, device, images
):
    """Score a generator's samples with the bundled classifier: FID, IS, class coverage,
    precision/recall, density/coverage, beside the same numbers for real images."""
    result = evaluate(
        generator=generator,
        samples=samples,
        n=n,
        dataset=dataset,
        seed=seed,
        reference=reference,
        data_dir=data_dir,
        device=device,
        out=out,
        grid=grid,
        images=images,
    )
    click.echo(json.dumps(result, indent=2) if as_json else format_evaluation(result))


@click.command("predict")
@click.argument("images", nargs=-1, required=True)
@click.option(
    "--dataset", default="mnist", show_default=True, help="which bundled classifier [mnist|fashion-mnist]"
)
@click.option("--grid", default=None, help="ROWSxCOLS layout of a grid PNG (default: guessed from its size)")
@click.option(
    "--json", "as_json", is_flag=True, help='print {"labels": [...], "confidence": [...]} in input order'
)
@click.option("--device", default="cpu", show_default=True, help="cpu | cuda | mps | auto")
def predict_command(images, dataset, grid, as_json, device):
    """Label IMAGES (a folder of 28x28 PNGs, a PNG or grid PNG, an .npz) with the bundled classifier."""
    result = predict(list(images), dataset=dataset, grid=grid, device=device)
    if as_json:
        click.echo(json.dumps({"labels": result["labels"], "confidence": result["confidence"]}))
    else:
        click.echo(format_prediction(result))
