"""A second ruler for sample quality, kept out of the package's metrics: so that a recipe is not tuned
to one classifier's feature space.

The package's evaluator uses a CNN trained on the first 50,000 MNIST training images. This one is
another architecture, an MLP (784 -> 512 -> 256 features -> 10, LayerNorm and GELU, no
convolutions), trained on a different split: the last 50,000 training images (its held-out real
images are the first 10,000). FID, precision and recall in its 256-d feature space are computed
against the 10,000 test images, exactly as the evaluator does in its own space (the same metric
functions).

    python benchmarks/second_ruler.py --generator runs/00001-mnist-dcgan-bce [--n 10000]

The weights are trained on first use (about a minute on 2 CPU cores, seed 0) and cached in
$MNISTGAN_CACHE/benchmarks/second-ruler.safetensors.
"""

from __future__ import annotations

import argparse
import functools
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

import mnistgan
from mnistgan.data import load_images
from mnistgan.evaluator import metrics

SPLIT = 10_000  # trained on training images [SPLIT:]; [:SPLIT] are its held-out real images


class MLPRuler(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 512),
            nn.LayerNorm(512),
            nn.GELU(),
            nn.Linear(512, 256),
            nn.LayerNorm(256),
            nn.GELU(),
        )
        self.head = nn.Linear(256, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.float() / 255.0 - 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def cache_path() -> Path:
    root = Path(os.environ.get("MNISTGAN_CACHE", Path.home() / ".cache" / "mnistgan"))
    return root / "benchmarks" / "second-ruler.safetensors"


@functools.lru_cache(maxsize=1)
def ruler() -> MLPRuler:
    model = MLPRuler()
    path = cache_path()
    if path.is_file():
        model.load_state_dict(load_file(str(path)))
        return model.eval()
    train = load_images("mnist", split="train", with_labels=True)
    x, y = train.images[SPLIT:], train.labels[SPLIT:]
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = 6 * len(x) // 128
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    model.train()
    with torch.enable_grad():  # first use may come from inside features()' no_grad
        for _step in range(steps):
            idx = torch.randint(len(x), (128,), generator=g)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), str(path))
    test = load_images("mnist", split="test", with_labels=True)
    with torch.no_grad():
        acc = float((model(test.images).argmax(1) == test.labels).double().mean())
    print(f"second ruler trained: test accuracy {acc:.4f}; cached in {path}")
    return model


@torch.no_grad()
def features(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, [1,] 28, 28) -> float64 (N, 256)."""
    model = ruler()
    x = images.reshape(images.shape[0], 1, 28, 28)
    return torch.cat([model.features(x[i : i + 2000]) for i in range(0, len(x), 2000)]).double()


@functools.lru_cache(maxsize=1)
def reference() -> tuple[torch.Tensor, dict]:
    test = features(load_images("mnist", split="test").images)
    return test, metrics.knn_radii(test, (metrics.K_PR, metrics.K_DC))


def score_images(images: torch.Tensor) -> dict:
    """FID, precision and recall of uint8 images in the second ruler's feature space."""
    test, radii = reference()
    fake = features(images)
    out = {"fid2": metrics.fid(test, fake)}
    pr = metrics.prdc(test, fake, real_radii=radii)
    out.update(precision2=pr["precision"], recall2=pr["recall"])
    return out


def score(generator: str | Path, n: int = 10_000, seed: int = 0) -> dict:
    images = torch.from_numpy(mnistgan.load_generator(generator).generate(n, seed))
    return score_images(images)


def real_row(n: int = 10_000) -> dict:
    """The held-out real images (never trained on by this ruler), scored the same way."""
    return score_images(load_images("mnist", split="train").images[: min(n, SPLIT)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--generator", required=True)
    p.add_argument("--n", type=int, default=10_000)
    args = p.parse_args()
    s, r = score(args.generator, args.n), real_row(args.n)
    for key in s:
        print(f"{key:12} samples {s[key]:.4f}  real {r[key]:.4f}")


if __name__ == "__main__":
    main()
