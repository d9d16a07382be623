"""Writing generated images: tiled grids, folders of PNGs, .npz arrays, animated GIFs."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from ..errors import MnistganError
from ..files import atomic_dir, atomic_path, write_with

GRID_SCALE = 4  # each 28x28 tile is drawn 4x larger (nearest neighbour) so digits are legible


def pictures(images: np.ndarray) -> np.ndarray:
    """Images as pictures: (N, 28, 28) or (N, 1, 28, 28) -> (N, 28, 28) gray; (N, 3, 28, 28) ->
    (N, 28, 28, 3) colour."""
    images = np.asarray(images)
    if images.ndim == 4:
        return images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)
    return images


def tile(images: np.ndarray, ncols: Optional[int] = None) -> np.ndarray:
    """(N, 28, 28) -> one (rows*28, ncols*28) image, tile i*ncols + j at row i, column j; colour
    images (N, 3, 28, 28) -> (rows*28, ncols*28, 3).

    This is the course snippet's layout (I_generated[i*h:(i+1)*h, j*w:(j+1)*w] =
    images[i*n+j]) with no padding; missing tiles of a last row stay black.
    """
    images = pictures(images)
    n = images.shape[0]
    ncols = ncols or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / ncols)
    h, w = images.shape[1:3]
    out = np.zeros((rows * h, ncols * w, *images.shape[3:]), dtype=images.dtype)
    for k in range(n):
        i, j = divmod(k, ncols)
        out[i * h : (i + 1) * h, j * w : (j + 1) * w] = images[k]
    return out


def save_grid(
    images: np.ndarray, path: str | os.PathLike, ncols: Optional[int] = None, scale: int = GRID_SCALE
) -> None:
    """Write uint8 images (N, 28, 28) (or colour, (N, 3, 28, 28)) as one tiled PNG, upscaled `scale`x."""
    big = tile(images, ncols)
    if scale > 1:
        big = big.repeat(scale, axis=0).repeat(scale, axis=1)
    write_with(path, lambda tmp: Image.fromarray(big).save(tmp, format="PNG"))


def save_folder(images: np.ndarray, directory: str | os.PathLike) -> None:
    """One PNG per image (000.png, 001.png, ...), 28x28 grayscale (colour for 3 channels)."""
    width = max(3, len(str(len(images) - 1)))
    with atomic_dir(directory) as tmp:
        for k, img in enumerate(pictures(images)):
            Image.fromarray(img).save(tmp / f"{k:0{width}d}.png", format="PNG")


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
    images = [Image.open(f) for f in frames]
    if not images:
        return
    images = [im.convert("RGB" if images[0].mode == "RGB" else "L") for im in images]
    write_with(
        path,
        lambda tmp: images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0
        ),
    )
