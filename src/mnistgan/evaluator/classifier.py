"""The bundled classifiers: a compact CNN per data set, its pinned weights, batched inference.

The network is small on purpose (about 0.25 M parameters, 1 MB as float32) so that 10,000
images classify in a couple of seconds on a laptop CPU. Its 128-d penultimate activations are
the feature space of FID and of the k-NN metrics; its softmax gives IS and the label histogram.
Weights are trained by scripts/train_classifier.py from a fixed seed and shipped as safetensors;
their sha256 is pinned here, so a corrupt or swapped file is refused instead of giving wrong numbers.
"""

from __future__ import annotations

import copy
import functools
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Optional

import torch
from safetensors.torch import load_file
from torch import nn

from ..errors import MnistganError
from ..hardware import resolve_precision

FEATURES = 128  # width of the feature space (FID, precision/recall, density/coverage)
BATCH = 1000  # images per forward pass: bounds memory at ~60 MB of activations (bf16)


@dataclass(frozen=True)
class ClassifierSpec:
    file: str  # weights file name in mnistgan/assets/
    sha256: str  # of the weights file; "" while not yet trained
    classes: tuple  # class names in label order


MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "boot",
)

CLASSIFIERS: dict[str, ClassifierSpec] = {
    "mnist": ClassifierSpec(
        "classifier-mnist.safetensors",
        "b9b8886660a5eea9292be7a960c95f9d043d2605f123c238dca6f9520bd32426",
        MNIST_CLASSES,
    ),
    "fashion-mnist": ClassifierSpec(
        "classifier-fashion-mnist.safetensors",
        "4b7b6d93cf462d56fb3edc17c1ef3b83c1a2bf1c9ef9b988d781bdfb5f7c9b7f",
        FASHION_CLASSES,
    ),
}


class Classifier(nn.Module):
    """(N, 1, 28, 28) float in [0, 1] -> logits (N, 10); `features(x)` -> (N, 128).

    conv5x5-32 -> pool (14x14) -> conv64 -> pool (7x7) -> conv128 -> pool (3x3) -> fc128 -> fc10,
    BatchNorm after every layer but the last, dropout before the last (training only, so eval-mode
    features are deterministic). About 8 M multiply-adds per image: cheap enough for 10k images in seconds.
    """

    def __init__(
        self, width: int = 32, features: int = FEATURES, num_classes: int = 10, dropout: float = 0.3
    ):
        super().__init__()
        w = width

        def conv(cin: int, cout: int, k: int = 3) -> list[nn.Module]:
            return [
                nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]

        self.body = nn.Sequential(
            *conv(1, w, 5),
            nn.MaxPool2d(2),  # (w, 14, 14)
            *conv(w, 2 * w),
            nn.MaxPool2d(2),  # (2w, 7, 7)
            *conv(2 * w, 4 * w),
            nn.MaxPool2d(2),  # (4w, 3, 3)
            nn.Flatten(),
            nn.Linear(4 * w * 9, features, bias=False),
            nn.BatchNorm1d(features),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x - 0.5)  # centre the [0, 1] input; BatchNorm does the rest

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def weights_path(dataset: str) -> Path:
    spec = spec_for(dataset)
    return Path(str(resources.files("mnistgan") / "assets" / spec.file))


def spec_for(dataset: str) -> ClassifierSpec:
    if dataset not in CLASSIFIERS:
        raise MnistganError(
            f"no bundled classifier for data set '{dataset}'; the evaluator supports: "
            f"{', '.join(CLASSIFIERS)}"
        )
    return CLASSIFIERS[dataset]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.lru_cache(maxsize=4)
def load_classifier(dataset: str = "mnist") -> tuple[Classifier, str]:
    """The bundled classifier of `dataset` in eval mode on the CPU, and its weights' sha256.

    Cached: every call returns the same module, so callers must not train or move it.
    """
    spec, path = spec_for(dataset), weights_path(dataset)
    if not path.is_file():
        raise MnistganError(
            f"classifier weights {path} are missing; reinstall mnistgan or run "
            f"scripts/train_classifier.py --dataset {dataset}"
        )
    digest = file_sha256(path)
    if spec.sha256 and digest != spec.sha256:
        raise MnistganError(
            f"classifier weights {path} have sha256 {digest[:12]}..., expected "
            f"{spec.sha256[:12]}...; the file is corrupt or was replaced: reinstall mnistgan"
        )
    model = Classifier()
    model.load_state_dict(load_file(str(path), device="cpu"))
    return model.eval().requires_grad_(False), digest


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) 0..255 or float (N, 28, 28) in [0, 1] -> float32 (N, 1, 28, 28) in [0, 1]."""
    x = images.float().div(255.0) if images.dtype == torch.uint8 else images.float()
    return x.reshape(x.shape[0], 1, 28, 28)


def use_bf16(device: torch.device) -> bool:
    return resolve_precision("auto", device) == "bf16"


def classify(
    images: torch.Tensor,
    dataset: str = "mnist",
    device: Optional[torch.device] = None,
    bf16: Optional[bool] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 28, 28) uint8 or [0, 1] float -> (features float32 (N, 128), probs float64 (N, C)).

    Uses the bundled classifier of `dataset`; bf16 defaults to on where the hardware is fast at it.
    """
    model, _ = load_classifier(dataset)
    device = torch.device(device or "cpu")
    if device.type != "cpu":
        model = _on_device(dataset, str(device))
    bf16 = use_bf16(device) if bf16 is None else bf16
    return run_classifier(model, images, device, bf16)


@torch.no_grad()
def run_classifier(
    model: Classifier, images: torch.Tensor, device: torch.device, bf16: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched inference of an eval-mode classifier: (features float32 (N, 128), probs float64 (N, C)).

    bf16 autocast runs the convolutions several times faster on AVX-512-bf16 CPUs; the last layer
    and the softmax run in float32/float64 so the statistics computed from them keep full precision.
    """
    feats, probs = [], []
    for i in range(0, images.shape[0], BATCH):
        x = to_unit_float(images[i : i + BATCH]).to(device).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            f = model.features(x)
        f = f.float()
        logits = model.head(f)
        feats.append(f.cpu())
        probs.append(torch.softmax(logits.double(), dim=1).cpu())
    if not feats:
        n_classes = model.head[-1].out_features
        return torch.zeros(0, model.head[-1].in_features), torch.zeros(0, n_classes, dtype=torch.float64)
    return torch.cat(feats), torch.cat(probs)


@functools.lru_cache(maxsize=2)
def _on_device(dataset: str, device: str) -> Classifier:
    return copy.deepcopy(load_classifier(dataset)[0]).to(device)
