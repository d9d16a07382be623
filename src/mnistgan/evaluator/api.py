"""The evaluator's entry points: `evaluate` (command and Python API), `evaluate_module` (training
loop), `predict` (labels for images). Each calls the same classifier and metric functions."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..errors import MnistganError
from ..files import write_json
from ..generator import load_generator
from ..generator.sample import run_generator
from ..hardware import resolve_device
from ..models.layers import N_CLASSES
from ..rundir import run_dir_of
from . import metrics
from .classifier import classify, load_classifier, spec_for
from .inputs import load_inputs
from .reference import HELD_OUT, load_reference, reference_row

DEFAULT_N = 10_000


def evaluate(
    generator: Optional[str | os.PathLike] = None,
    samples: Optional[str | os.PathLike] = None,
    n: int = DEFAULT_N,
    dataset: Optional[str] = None,
    seed: int = 0,
    reference: bool = True,
    data_dir: Optional[str] = None,
    device: str = "cpu",
    out: Optional[str | os.PathLike] = None,
    grid: Optional[str] = None,
    write: bool = True,
) -> dict:
    """Score n generated images (from a generator folder, or an .npz / PNG folder / grid PNG of samples)
    against the test set with the bundled classifier; optionally beside real held-out images.

    Returns {"dataset", "source", "n", "samples": {metric: value}, "reference": {...} or None, ...}.
    Writes it as JSON to `out`, or to <run>/metrics.json when `generator` lies in a run folder
    (unless write=False); the path written is returned under "metrics_file".
    """
    start = time.time()
    if (generator is None) == (samples is None):
        raise MnistganError("pass exactly one of --generator DIR or --samples FILE.npz|DIR_OF_PNG")
    if n <= 0:
        raise MnistganError(f"--n must be positive, got {n}")
    dev = resolve_device(device)
    if generator is not None:
        images, requested, dataset, data_dir, source = _generate(generator, n, seed, dataset, data_dir, dev)
    else:
        dataset = dataset or "mnist"
        spec_for(dataset)  # one clear error for a data set without a classifier, before reading anything
        loaded = load_inputs([samples], grid)
        images = torch.from_numpy(loaded.images[:n])
        requested = None if loaded.labels is None else torch.from_numpy(loaded.labels[:n])
        source = str(samples)
    ref = load_reference(dataset, data_dir, dev)
    feats, probs = classify(images, dataset, dev)
    with torch.autocast(dev.type, enabled=False):  # metric math in float64, whatever the caller's context
        row = metrics.all_metrics(ref.test_features, feats, probs, requested, ref.test_radii)
    result = metrics_document(
        row,
        dataset,
        source,
        seed if generator is not None else None,
        reference,
        requested is not None,
        data_dir,
    )
    result["seconds"] = round(time.time() - start, 2)
    target = Path(out) if out is not None else (run_dir_of(generator) if generator is not None else None)
    if target is not None and target.is_dir():
        target = target / "metrics.json"
    if write and target is not None:
        write_json(target, result)
        result["metrics_file"] = str(target)
    return result


def metrics_document(
    row: dict,
    dataset: str,
    source: str,
    seed: Optional[int] = None,
    reference: bool = True,
    labels: bool = False,
    data_dir: Optional[str] = None,
) -> dict:
    """The content of metrics.json for one scored sample set `row` (from evaluate or evaluate_module):
    adds the real held-out row for the same n (when `reference`), the classifier's hash and the settings.

    labels: whether `row` has a requested-label accuracy (a conditional generator); the real row
    then shows the classifier's accuracy on real images beside it.
    """
    ref = load_reference(dataset, data_dir)
    with torch.autocast("cpu", enabled=False):
        ref_row = reference_row(ref, row["n"], with_labels=labels) if reference else None
    return {
        "dataset": dataset,
        "source": source,
        "n": row["n"],
        "seed": seed,
        "reference_set": f"{dataset} test images ({ref.test_features.shape[0]})",
        "real_set": (
            f"{min(row['n'], HELD_OUT):,} of the last {HELD_OUT:,} {dataset} training images "
            f"(never seen by the classifier)"
        ),
        "classifier_sha256": ref.classifier_sha256,
        "classes": list(spec_for(dataset).classes),
        "settings": {
            "k_precision_recall": metrics.K_PR,
            "k_density_coverage": metrics.K_DC,
            "confident_at": metrics.CONFIDENT,
            "covered_share": metrics.COVERED_SHARE,
        },
        "samples": row,
        "reference": ref_row,
    }


def _generate(
    generator, n: int, seed: int, dataset: Optional[str], data_dir: Optional[str], dev: torch.device
):
    """n images from a saved generator with the course noise of `seed`; balanced labels if conditional."""
    gen = load_generator(generator, device=str(dev))
    trained_on = gen.config.data.dataset
    if dataset is not None and dataset != trained_on:
        raise MnistganError(f"the generator was trained on {trained_on}, not {dataset}; drop --dataset")
    spec_for(trained_on)  # before generating anything
    if data_dir is None and trained_on != "mnist":
        data_dir = gen.config.data.data_dir  # where its training data came from (MNIST is bundled)
    classes = N_CLASSES if gen.conditional else None
    labels = None if classes is None else np.arange(n) % classes
    images = torch.from_numpy(gen.generate(n, seed, labels))  # uint8 (n, 28, 28)
    requested = None if labels is None else torch.from_numpy(labels)
    return images, requested, trained_on, data_dir, str(generator)


def evaluate_module(
    G: torch.nn.Module,
    z_dim: int,
    dataset: str = "mnist",
    n: int = DEFAULT_N,
    device: torch.device | str = "cpu",
    data_dir: Optional[str] = None,
    num_classes: Optional[int] = None,
    seed: int = 0,
) -> dict:
    """Metrics of an in-memory generator, for `train --eval-every`: {"n", "fid", "inception_score", ...}.

    G maps z (N, z_dim) -> (N, 1, 28, 28) in [-1, 1] (and takes labels (N,) when num_classes is
    given: balanced labels 0, 1, ..., C-1, 0, ...). The noise comes from a private torch.Generator,
    so the global RNG, and with it the training run, is untouched; G is run in eval mode and its
    mode restored. Same n and seed give the same z every call: a fixed yardstick across epochs.
    """
    device = torch.device(device)
    z = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    labels = None if num_classes is None else (torch.arange(n) % num_classes)
    images = run_generator(G, z, None if labels is None else labels.to(device))  # (n, 28, 28) in [0, 1], CPU
    if not torch.isfinite(images).all():
        raise MnistganError(
            "the generator produced NaN or infinite pixels (training has diverged); "
            "no metrics can be computed"
        )
    if dataset == "mnist":
        data_dir = None  # the bundled test set, whatever (possibly tiny) data the run trains on
    ref = load_reference(dataset, data_dir, device)
    feats, probs = classify(images, dataset, device)
    with torch.autocast(device.type, enabled=False):
        return metrics.all_metrics(ref.test_features, feats, probs, labels, ref.test_radii)


def predict(
    paths: Sequence[str | os.PathLike] | str | os.PathLike,
    dataset: str = "mnist",
    grid: Optional[str] = None,
    device: str = "cpu",
) -> dict:
    """Label images with the bundled classifier: {"labels", "confidence", "names", "note", "classes"}.

    paths: .npz files, folders of 28x28 PNGs, single PNGs or tiled grid PNGs; images keep input order.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    spec = spec_for(dataset)
    load_classifier(dataset)
    loaded = load_inputs(list(paths), grid)
    _, probs = classify(torch.from_numpy(loaded.images), dataset, resolve_device(device))
    conf, labels = probs.max(1)
    top2 = probs.topk(min(2, probs.shape[1]), dim=1)
    return {
        "labels": labels.tolist(),
        "confidence": [round(float(c), 6) for c in conf],
        "runner_up": top2.indices[:, -1].tolist(),
        "runner_up_confidence": [float(c) for c in top2.values[:, -1]],
        "names": loaded.names,
        "note": loaded.note,
        "classes": list(spec.classes),
        "dataset": dataset,
        "requested": None if loaded.labels is None else loaded.labels.tolist(),
    }
