"""Reference data: the classifier's view of the test set and of a held-out training slice, cached.

The evaluator compares samples against the 10,000 test images. Their features (and k-NN radii,
which depend on them alone) are computed once and cached under
$MNISTGAN_CACHE/evaluator/, keyed by data set, classifier sha256 and the data files, so every later
evaluation only classifies its own samples. The "real" reference row uses the last 10,000
training images, which the bundled classifier never trained on: the numbers real data scores.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..data import cache_root, load_images, locate
from ..errors import MnistganError
from ..files import write_json, write_with
from . import metrics
from .classifier import classify, load_classifier

HELD_OUT = 10_000  # the last 10,000 training images: never seen by the classifier
CACHE_VERSION = 1  # bump when the cached quantities change meaning


@dataclass
class Reference:
    dataset: str
    classifier_sha256: str
    test_features: torch.Tensor  # float32 (10000, 128)
    test_radii: dict  # {k: float64 (10000,)} k-NN radii within the test features
    heldout_features: torch.Tensor  # float32 (10000, 128)
    heldout_probs: torch.Tensor  # float64 (10000, C)
    heldout_labels: torch.Tensor  # int64 (10000,)
    path: Path  # the cache file


def _data_key(dataset: str, data_dir: Optional[str]) -> str:
    """Identity of the data files (path, size, mtime), so other files never reuse a stale cache."""
    h = hashlib.sha256()
    for split in ("train", "test"):
        for p in locate(dataset, data_dir, split):
            st = Path(p).stat()
            h.update(f"{Path(p).resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


def cache_path(dataset: str, data_dir: Optional[str] = None) -> Path:
    _, sha = load_classifier(dataset)
    name = f"{dataset}-clf{sha[:12]}-data{_data_key(dataset, data_dir)}-v{CACHE_VERSION}"
    return cache_root() / "evaluator" / f"{name}.safetensors"


def load_reference(dataset: str = "mnist", data_dir: Optional[str] = None, device=None) -> Reference:
    """The cached reference (computed on first use: about 20,000 classifier passes)."""
    _, sha = load_classifier(dataset)
    path = cache_path(dataset, data_dir)
    if path.is_file():
        try:
            t = load_file(str(path))
            return _from_tensors(dataset, sha, t, path)
        except (SafetensorError, OSError, KeyError, ValueError, RuntimeError):
            pass  # a damaged cache is recomputed and replaced
    t = _compute(dataset, data_dir, device)
    write_with(path, lambda tmp: save_file(t, str(tmp), metadata={"dataset": dataset, "classifier": sha}))
    return _from_tensors(dataset, sha, t, path)


def _compute(dataset: str, data_dir: Optional[str], device) -> dict:
    test = load_images(dataset, data_dir, "test")
    train = load_images(dataset, data_dir, "train", with_labels=True)
    if len(train) <= HELD_OUT or len(test) < metrics.K_DC + 1:
        raise MnistganError(
            f"the {dataset} files hold {len(train)} training and {len(test)} test images; "
            f"the evaluator needs the full data set (60,000 + 10,000)"
        )
    test_feats, _ = classify(test.images, dataset, device)
    held_feats, held_probs = classify(train.images[-HELD_OUT:], dataset, device)
    radii = metrics.knn_radii(test_feats, (metrics.K_PR, metrics.K_DC))
    return {
        "test_features": test_feats.contiguous(),
        "heldout_features": held_feats.contiguous(),
        "heldout_probs": held_probs.contiguous(),
        "heldout_labels": train.labels[-HELD_OUT:].contiguous(),
        **{f"test_radii_k{k}": r for k, r in radii.items()},
    }


def _from_tensors(dataset: str, sha: str, t: dict, path: Path) -> Reference:
    ref = Reference(
        dataset,
        sha,
        t["test_features"],
        {k: t[f"test_radii_k{k}"] for k in (metrics.K_PR, metrics.K_DC)},
        t["heldout_features"],
        t["heldout_probs"],
        t["heldout_labels"],
        path,
    )
    n = ref.test_features.shape[0]
    if ref.heldout_features.shape[0] != HELD_OUT or any(r.shape != (n,) for r in ref.test_radii.values()):
        raise ValueError("inconsistent reference cache")
    return ref


def reference_row(ref: Reference, n: int, with_labels: bool = False) -> dict:
    """The metrics of the first n held-out real images (at most 10,000) against the test set.

    Cached per n beside the reference features: metrics such as recall and FID depend on the
    sample count, so the real row is computed with the same n as the samples it sits beside.
    """
    n = min(n, HELD_OUT)
    path = ref.path.with_name(f"{ref.path.stem}-real-n{n}.json")
    row = None
    if path.is_file():
        try:
            row = json.loads(path.read_text())
        except (OSError, ValueError):
            row = None
    if not isinstance(row, dict) or row.get("n") != n:
        row = metrics.all_metrics(
            ref.test_features,
            ref.heldout_features[:n],
            ref.heldout_probs[:n],
            requested=ref.heldout_labels[:n],
            real_radii=ref.test_radii,
        )
        write_json(path, row)
    if not with_labels:
        row = {k: v for k, v in row.items() if k != "label_accuracy"}
    return row
