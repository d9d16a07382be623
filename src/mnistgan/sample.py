"""Seeded generation from a saved generator, and the pictures: tiled grids, PNG folders, GIF.

A sample's noise depends only on its seed and z_dim: z = RandomState(seed).normal(size=[n, z_dim]),
which is exactly what the course snippet's `np.random.seed(504); np.random.normal(...)` draws.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image

from .checkpoint import REPAIR, check_state, load_state_strict, read_generator
from .config import Config
from .errors import MnistganError
from .files import atomic_dir, atomic_path, write_with
from .models import build_generator

COURSE_SEED = 504
GRID_SCALE = 4  # each 28x28 tile is drawn 4x larger (nearest neighbour) so digits are legible


def course_noise(n: int, z_dim: int, seed: int = COURSE_SEED) -> np.ndarray:
    """The course snippet's noise: `np.random.seed(seed); np.random.normal(size=[n, z_dim])`."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise MnistganError(f"--seed must be a whole number from 0 to {2**32 - 1} (numpy's seed range), got {seed!r}")
    return np.random.RandomState(seed).normal(size=[n, z_dim])


@torch.no_grad()
def run_generator(G: torch.nn.Module, z: torch.Tensor, labels: Optional[torch.Tensor] = None,
                  chunk: int = 2048) -> torch.Tensor:
    """G in eval mode on z (N, z_dim) -> float images (N, 28, 28) in [0, 1] on the CPU."""
    was_training = G.training
    G.eval()
    out = []
    try:
        for i in range(0, z.shape[0], chunk):
            zi = z[i: i + chunk]
            x = G(zi) if labels is None else G(zi, labels[i: i + chunk])
            out.append(x.float().add(1).mul(0.5).clamp(0, 1).squeeze(1).cpu())
    finally:
        G.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 28, 28)


def to_uint8(images01: np.ndarray | torch.Tensor) -> np.ndarray:
    """[0, 1] floats -> uint8 0..255 (rounded)."""
    a = images01.numpy() if isinstance(images01, torch.Tensor) else np.asarray(images01)
    return np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)


class Generator:
    """A loaded generator. `predict(z)` follows the course API (Keras' model.predict)."""

    def __init__(self, module: torch.nn.Module, cfg: Config, meta: dict, device: str = "cpu"):
        # channels_last: oneDNN's transposed convolutions run ~1.5x faster in NHWC on CPU (bench_sample.py)
        self.module = module.to(device).eval().to(memory_format=torch.channels_last)
        self.config = cfg
        self.meta = meta
        self.device = torch.device(device)
        self.z_dim = cfg.model.z_dim

    def predict(self, z, labels=None, verbose: int = 0) -> np.ndarray:
        """z: array-like (N, z_dim) -> float32 numpy images (N, 28, 28) in [0, 1]."""
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise MnistganError(f"predict expects z of shape (N, {self.z_dim}), got {z.shape}")
        if not np.isfinite(z).all():
            raise MnistganError("predict: z holds NaN or Inf")
        zt = torch.from_numpy(z).to(self.device)
        x = run_generator(self.module, zt, self._labels(labels, len(z))).numpy().astype(np.float32)
        if not np.isfinite(x).all():  # finite but impossible weights, e.g. a negative BatchNorm variance
            raise MnistganError("the generator produced NaN images: its weights are broken; retrain it")
        return x

    @property
    def conditional(self) -> bool:
        return self.config.model.conditional

    def _labels(self, labels, n: int) -> Optional[torch.Tensor]:
        """Unconditional: None. Conditional: the given digit(s), by default 0, 1, ..., 9, 0, 1, ..."""
        if not self.conditional:
            if labels is not None:
                raise MnistganError("this generator is unconditional: it cannot draw a chosen digit (--digit)")
            return None
        if labels is None:
            labels = np.arange(n) % 10
        labels = np.broadcast_to(np.asarray(labels), (n,))
        if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() > 9:
            raise MnistganError("labels must be digits 0-9")
        return torch.as_tensor(labels.astype(np.int64), device=self.device)

    def generate(self, n: int = 25, seed: int = COURSE_SEED, labels=None) -> np.ndarray:
        """n images from the course noise of `seed`: uint8 (n, 28, 28)."""
        if n <= 0:
            raise MnistganError(f"n must be positive, got {n}")
        return to_uint8(self.predict(course_noise(n, self.z_dim, seed), labels))

    __call__ = predict


def load_generator(path: str | os.PathLike, device: str = "cpu") -> Generator:
    """Load an exported generator (folder with config.json + model.safetensors, or a run folder)."""
    cfg, meta, state = read_generator(path)
    try:  # shapes first, on the meta device: a config.json that lies about sizes allocates nothing
        with torch.device("meta"):
            own = build_generator(cfg.model).state_dict()
    except (RuntimeError, ValueError, OverflowError, MemoryError) as e:
        raise MnistganError(f"{path}: config.json describes a generator that cannot be built "
                            f"({str(e).splitlines()[0][:120]}); {REPAIR}") from None
    check_state(own, state, str(path))  # the weights in the file now bound what building G allocates
    G = build_generator(cfg.model)
    load_state_strict(G, state, str(path))
    return Generator(G, cfg, meta, device)


def generate(path: str | os.PathLike, n: int = 25, seed: int = COURSE_SEED, out: Optional[str] = None,
             labels=None) -> np.ndarray:
    """Generate n images with the course noise of `seed`; write them to `out` if given."""
    images = load_generator(path).generate(n, seed, labels)
    if out is not None:
        write_images(images, out)
    return images


# ----------------------------------------------------------------------------- writing pictures

def tile(images: np.ndarray, ncols: Optional[int] = None) -> np.ndarray:
    """(N, 28, 28) -> one (rows*28, ncols*28) image, tile i*ncols + j at row i, column j.

    This is the course snippet's layout (I_generated[i*h:(i+1)*h, j*w:(j+1)*w] =
    images[i*n+j]) with no padding; missing tiles of a last row stay black.
    """
    n = images.shape[0]
    ncols = ncols or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / ncols)
    h, w = images.shape[1:3]
    out = np.zeros((rows * h, ncols * w), dtype=images.dtype)
    for k in range(n):
        i, j = divmod(k, ncols)
        out[i * h:(i + 1) * h, j * w:(j + 1) * w] = images[k]
    return out


def save_grid(images: np.ndarray, path: str | os.PathLike, ncols: Optional[int] = None,
              scale: int = GRID_SCALE) -> None:
    """Write uint8 images (N, 28, 28) as one tiled grayscale PNG, upscaled `scale`x."""
    big = tile(images, ncols)
    if scale > 1:
        big = big.repeat(scale, axis=0).repeat(scale, axis=1)
    write_with(path, lambda tmp: Image.fromarray(big, mode="L").save(tmp, format="PNG"))


def save_folder(images: np.ndarray, directory: str | os.PathLike) -> None:
    """One PNG per image (000.png, 001.png, ...), 28x28 grayscale."""
    width = max(3, len(str(len(images) - 1)))
    with atomic_dir(directory) as tmp:
        for k, img in enumerate(images):
            Image.fromarray(img, mode="L").save(tmp / f"{k:0{width}d}.png", format="PNG")


def save_npz(images: np.ndarray, path: str | os.PathLike, labels=None) -> None:
    arrays = {"images": images}
    if labels is not None:
        arrays["labels"] = np.asarray(labels, dtype=np.int64)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def write_images(images: np.ndarray, out: str | os.PathLike, labels=None) -> str:
    """Pick the format from the name: *.png -> grid, *.npz -> array, anything else -> folder of PNGs."""
    out = str(out)
    suffix = Path(out).suffix.lower()
    if suffix == ".png":
        save_grid(images, out)
        return "grid"
    if suffix == ".npz":
        save_npz(images, out, labels)
        return "npz"
    if suffix in (".jpg", ".jpeg", ".gif", ".npy", ".h5"):
        raise MnistganError(f"cannot write {out}: use a .png (grid), .npz (array) or a folder name")
    save_folder(images, out)
    return "folder"


def save_gif(frames: Sequence[str | os.PathLike], path: str | os.PathLike, ms_per_frame: int = 500) -> None:
    """An animated GIF of PNG frames (e.g. the per-epoch sample grids)."""
    images = [Image.open(f).convert("L") for f in frames]
    if not images:
        return
    write_with(path, lambda tmp: images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                                                duration=ms_per_frame, loop=0))
