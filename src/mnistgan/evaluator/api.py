"""The evaluator's entry points: `evaluate` (command and Python API), `evaluate_module` (training
loop), `predict` (labels for images). Each calls the same classifier and metric functions."""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..config import STACKED
from ..data import user_images
from ..errors import MnistganError
from ..files import write_json
from ..generator import load_generator
from ..generator.sample import run_generator, to_uint8
from ..hardware import resolve_device
from ..rundir import run_dir_of
from . import metrics
from .classifier import classify, load_classifier, spec_for
from .inputs import load_inputs
from .modes import MODES, STACKED_N, mode_stats, real_stacked
from .reference import HELD_OUT, load_reference, reference_row

DEFAULT_N = 10_000
FITS = 0.9  # the classifier fits your images if it labels this share of them confidently ...
FAR = 10.0  # ... and they lie within this FID of the MNIST test set (held-out MNIST: about 0.3)


# the metric settings every metrics.json states beside its numbers
SETTINGS = {
    "k_precision_recall": metrics.K_PR,
    "k_density_coverage": metrics.K_DC,
    "confident_at": metrics.CONFIDENT,
    "covered_share": metrics.COVERED_SHARE,
}


def evaluate(
    generator: Optional[str | os.PathLike] = None,
    samples: Optional[str | os.PathLike] = None,
    n: Optional[int] = None,
    dataset: Optional[str] = None,
    seed: int = 0,
    reference: bool = True,
    data_dir: Optional[str] = None,
    device: str = "cpu",
    out: Optional[str | os.PathLike] = None,
    grid: Optional[str] = None,
    write: bool = True,
    images: Optional[str | os.PathLike] = None,
) -> dict:
    """Score n generated images (from a generator folder, or an .npz / PNG folder / grid PNG of samples)
    against the test set with the bundled classifier; optionally beside real held-out images.
    Stacked-MNIST: modes covered of 1,000 and KL to uniform (26,000 samples by default). Your own
    images (a generator trained with --images, or `images=`): FID etc. against those images.

    Returns {"dataset", "source", "n", "samples": {metric: value}, "reference": {...} or None, ...}.
    Writes it as JSON to `out`, or to <run>/metrics.json when `generator` lies in a run folder
    (unless write=False); the path written is returned under "metrics_file".
    """
    start = time.time()
    if (generator is None) == (samples is None):
        raise MnistganError("pass exactly one of --generator DIR or --samples FILE.npz|DIR_OF_PNG")
    if n is not None and n <= 0:
        raise MnistganError(f"--n must be positive, got {n}")
    dev = resolve_device(device)
    if generator is not None:
        gen = load_generator(generator, device=str(dev))
        dataset, data_dir, images = _trained_on(gen, dataset, data_dir, images)
        n = n or default_n(dataset)
        fakes, requested = _generate(gen, n, seed)
        source = str(generator)
    else:
        dataset = dataset or "mnist"
        n = n or default_n(dataset)
        if dataset != STACKED:
            spec_for(dataset)  # one clear error for a data set without a classifier, before reading anything
        loaded = load_inputs([samples], grid, colour=dataset == STACKED)
        fakes = torch.from_numpy(loaded.images[:n])
        requested = None if loaded.labels is None else torch.from_numpy(loaded.labels[:n])
        source = str(samples)
    if dataset == STACKED:
        result = stacked_document(fakes, source, reference, data_dir, dev)
    elif images is not None:
        result = images_document(fakes, Path(images), source, dev)
    else:
        ref = load_reference(dataset, data_dir, dev)
        feats, probs = classify(fakes, dataset, dev)
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
    result["seed"] = seed if generator is not None else None
    result["seconds"] = round(time.time() - start, 2)
    target = Path(out) if out is not None else (run_dir_of(generator) if generator is not None else None)
    if target is not None and target.is_dir():
        target = target / "metrics.json"
    if write and target is not None:
        write_json(target, result)
        result["metrics_file"] = str(target)
    return result


def default_n(dataset: str) -> int:
    """Samples scored unless --n says otherwise: 26,000 on stacked-mnist (the literature's count)."""
    return STACKED_N if dataset == STACKED else DEFAULT_N


def stacked_document(fakes: torch.Tensor, source: str, reference: bool, data_dir, dev) -> dict:
    """metrics.json of stacked-mnist samples (N, 3, 28, 28): modes covered and KL, beside real ones."""
    if fakes.dim() != 4 or fakes.shape[1] != 3:
        raise MnistganError(
            f"{source}: stacked-mnist samples are colour images (N, 3, 28, 28), got {tuple(fakes.shape)}"
        )
    n = fakes.shape[0]
    _, sha = load_classifier("mnist")
    return {
        "dataset": STACKED,
        "source": source,
        "n": n,
        "reference_set": "the 1,000 digit triples, uniform",
        "real_set": f"{n:,} stacked images drawn from the MNIST test set",
        "classifier_sha256": sha,
        "classes": list(spec_for("mnist").classes),
        "settings": {"modes": MODES, "confident_at": metrics.CONFIDENT},
        "samples": mode_stats(fakes, dev),
        "reference": mode_stats(real_stacked(n, data_dir), dev) if reference else None,
    }


def classifier_fit(feats: torch.Tensor, probs: torch.Tensor, dev) -> tuple[str, dict]:
    """How well the MNIST classifier's feature space fits your images: the share it labels
    confidently, and the FID between them and the MNIST test set; a note when either is poor."""
    ref = load_reference("mnist", None, dev)
    with torch.autocast(dev.type, enabled=False):
        distance = metrics.fid(ref.test_features, feats)
    confident = float((probs.max(1).values >= metrics.CONFIDENT).double().mean())
    fit = {"confident_share": confident, "fid_to_mnist": distance}
    if confident >= FITS and distance <= FAR:
        return "", fit
    return (
        f"your images lie far from MNIST in the bundled classifier's feature space (FID to the MNIST "
        f"test set {distance:.1f}, {confident:.0%} confidently labelled as digits): compare these numbers "
        "between runs on the same images, not with MNIST's"
    ), fit


@functools.lru_cache(maxsize=2)
def user_reference(images: str, mtime_ns: int, dev: torch.device) -> tuple:
    """Your own images' side of the metrics, computed once per folder/file state (train --eval-every
    scores against them every few epochs): (count, features, k-NN radii, fit note, fit numbers)."""
    real = user_images(images)
    real_feats, real_probs = classify(real.images, "mnist", dev)
    with torch.autocast(dev.type, enabled=False):
        radii = metrics.knn_radii(real_feats, (metrics.K_PR, metrics.K_DC))
    note, fit = classifier_fit(real_feats, real_probs, dev)
    return len(real), real_feats, radii, note, fit


def images_document(fakes: torch.Tensor, images: Path, source: str, dev) -> dict:
    """metrics.json against your own images (--images): FID, IS, precision/recall... in the bundled
    MNIST classifier's feature space, with a note when that space does not fit the images."""
    n_real, real_feats, radii, note, fit = user_reference(str(images), images.stat().st_mtime_ns, dev)
    feats, probs = classify(fakes, "mnist", dev)
    with torch.autocast(dev.type, enabled=False):
        row = metrics.all_metrics(real_feats, feats, probs, None, radii)
    _, sha = load_classifier("mnist")
    return {
        "dataset": "mnist",
        "source": source,
        "n": row["n"],
        "reference_set": f"{n_real:,} images of {images}",
        "real_set": "",
        "classifier_sha256": sha,
        "classes": list(spec_for("mnist").classes),
        "settings": dict(SETTINGS),
        "samples": row,
        "reference": None,
        "classifier_fits": fit,
        "note": note,
    }


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
        "settings": dict(SETTINGS),
        "samples": row,
        "reference": ref_row,
    }


def _trained_on(gen, dataset: Optional[str], data_dir: Optional[str], images) -> tuple:
    """(data set, IDX folder, your own images) a saved generator is scored against."""
    trained_on = gen.config.data.dataset
    if dataset is not None and dataset != trained_on:
        raise MnistganError(f"the generator was trained on {trained_on}, not {dataset}; drop --dataset")
    if images is None:
        images = gen.config.data.images  # trained on your own images: scored against them
    if trained_on != STACKED and images is None:
        spec_for(trained_on)  # before generating anything
    if data_dir is None and trained_on != "mnist":
        data_dir = gen.config.data.data_dir  # where its training data came from (MNIST is bundled)
    return trained_on, data_dir, images


def _generate(gen, n: int, seed: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """n images from a saved generator with the course noise of `seed`; balanced labels if conditional."""
    labels = np.arange(n) % gen.n_classes if gen.conditional else None
    images = torch.from_numpy(gen.generate(n, seed, labels))  # uint8 (n, 28, 28) or (n, 3, 28, 28)
    return images, (None if labels is None else torch.from_numpy(labels))


def evaluate_module(
    G: torch.nn.Module,
    z_dim: int,
    dataset: str = "mnist",
    n: int = DEFAULT_N,
    device: torch.device | str = "cpu",
    data_dir: Optional[str] = None,
    num_classes: Optional[int] = None,
    seed: int = 0,
    images: Optional[str] = None,
) -> dict:
    """Metrics of an in-memory generator, for `train --eval-every`: {"n", "fid", "inception_score", ...};
    on stacked-mnist {"n", "modes_covered", "modes_kl", ...}; with `images` (a --images run), FID and
    the rest against those images.

    G maps z (N, z_dim) -> (N, 1, 28, 28) in [-1, 1] (and takes labels (N,) when num_classes is
    given: balanced labels 0, 1, ..., C-1, 0, ...). The noise comes from a private torch.Generator,
    so the global RNG, and with it the training run, is untouched; G is run in eval mode and its
    mode restored. Same n and seed give the same z every call: a fixed yardstick across epochs.
    """
    device = torch.device(device)
    z = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    labels = None if num_classes is None else (torch.arange(n) % num_classes)
    images_path = images
    images = run_generator(G, z, None if labels is None else labels.to(device))  # (n, [C,] 28, 28) in [0, 1]
    if not torch.isfinite(images).all():
        raise MnistganError(
            "the generator produced NaN or infinite pixels (training has diverged); "
            "no metrics can be computed"
        )
    if dataset == STACKED:
        return mode_stats(to_uint8_tensor(images), device)
    if images_path is not None:
        return images_document(images, Path(images_path), "", device)["samples"]
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


def to_uint8_tensor(images01: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(to_uint8(images01))
