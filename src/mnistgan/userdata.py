"""Your own images (`--images PATH`): a folder of image files, or an .npz/.npy array.

A folder: every PNG/JPEG/BMP/GIF/TIFF/WebP file in it, in name order; or, in torchvision's
ImageFolder layout, one subfolder per class (labels = the subfolders in name order, for --class
and --conditional). Each image becomes 28x28 grayscale: converted to gray (PIL's "L", ITU-R 601
luma), scaled so that its longer side is 28 pixels (Lanczos; the aspect ratio kept), and padded to
28x28 with its own background, the median of its border pixels, centred. A 28x28 grayscale file is
read as it is. A decoded folder is cached as an .npz in `cache_dir` (beside the run folders), keyed
by the files' names, sizes and times, so the next run reads it at once.

An array: (N, 28, 28) or (N, 1, 28, 28), uint8, or floats in [0, 1]; an .npz holds it under
"images" (or as its only array) and may hold "labels" (N,) integers.

Every kind of bad input is one MnistganError naming the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from .errors import MnistganError
from .files import write_with

SIDE = 28
EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
MAX_PIXELS = 50_000_000  # a larger image is refused (a decompression bomb, or not a drawing)
CACHE_VERSION = 1


@dataclass
class UserImages:
    images: np.ndarray  # uint8 (N, 28, 28)
    labels: Optional[np.ndarray]  # int64 (N,) or None
    classes: Optional[list[str]]  # the class subfolders, in label order
    source: str  # the path, and where the decoded folder is cached


def load_user_images(path: str | Path, cache_dir: Optional[Path] = None) -> UserImages:
    """The images of --images PATH."""
    path = Path(path)
    if not path.exists():
        raise MnistganError(f"--images {path} not found; give a folder of images or an .npz/.npy file")
    if path.is_dir():
        images, labels, classes, note = read_folder(path, cache_dir)
    elif path.suffix.lower() in (".npz", ".npy"):
        images, labels, _ = read_array(path)
        classes, note = None, ""
    else:
        raise MnistganError(f"--images {path}: expected a folder of images or an .npz/.npy array")
    return UserImages(images, labels, classes, f"{path}{note}")


# ----------------------------------------------------------------------------- arrays


def read_array(
    path: Path, colour: bool = False, classes: int = 1000
) -> tuple[np.ndarray, Optional[np.ndarray], str]:
    """An .npy array, or an .npz with "images" (or a single array) and optional "labels" (N,): uint8
    images (N, 28, 28) (colour: or (N, 3, 28, 28)), int64 labels or None, and the images' array name."""
    try:
        if path.suffix.lower() == ".npy":
            key, images, labels = "", np.load(path, allow_pickle=False), None
        else:
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                key = "images" if "images" in keys else (keys[0] if len(keys) == 1 else None)
                if key is None:
                    raise MnistganError(
                        f"{path} holds arrays {keys} but no 'images'; save the images as images=..."
                    )
                images = z[key]
                labels = z["labels"] if "labels" in keys else None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise MnistganError(f"{path} is not a readable {path.suffix.lower()} file ({str(e)[:120]})") from None
    except MemoryError:  # its header declares an array larger than memory (the data is not there)
        raise MnistganError(f"{path} declares an array too large to load; the file is corrupt") from None
    where = f"{path}['{key}']" if key else str(path)
    images = uint8_images(images, where, colour)
    if labels is not None:
        labels = check_labels(labels, len(images), f"{path}['labels']", classes)
    return images, labels, key


def uint8_images(a: np.ndarray, where: str, colour: bool = False) -> np.ndarray:
    """An array of images -> uint8 (N, 28, 28) (colour: (N, 3, 28, 28) kept as it is), 0 = black;
    uint8, integers 0..255 or floats in [0, 1]. One MnistganError per kind of bad array."""
    if colour and a.ndim == 4 and a.shape[1:] == (3, SIDE, SIDE):
        return uint8_images(a.reshape(-1, SIDE, SIDE), where).reshape(a.shape)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    elif a.ndim == 4 and a.shape[3] == 1:
        a = a[..., 0]
    if a.ndim == 4:
        raise MnistganError(
            f"{where} has shape {a.shape}: {min(a.shape[1], a.shape[3])} channels, expected "
            f"grayscale (N, 28, 28) or (N, 1, 28, 28)"
        )
    if a.ndim == 2 and a.shape == (SIDE, SIDE):
        a = a[None]
    if a.ndim != 3 or a.shape[1:] != (SIDE, SIDE):
        raise MnistganError(f"{where} has shape {a.shape}, expected (N, 28, 28) images")
    if a.shape[0] == 0:
        raise MnistganError(f"{where} holds no images")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype.kind in "biu":  # bool, int, uint (not timedelta64, which numpy files under integer)
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise MnistganError(f"{where}: integer pixels range over [{lo}, {hi}], expected 0..255")
        return a.astype(np.uint8)
    if a.dtype.kind != "f":
        raise MnistganError(f"{where} has dtype {a.dtype}; expected uint8 0..255 or floats in [0, 1]")
    bad = int((~np.isfinite(a)).sum())
    if bad:
        raise MnistganError(f"{where} holds {bad} NaN or infinite values; the images are broken")
    lo, hi = float(a.min()), float(a.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        hint = " (tanh output? use (x + 1) / 2)" if lo >= -1 - 1e-6 and hi <= 1 + 1e-6 else ""
        raise MnistganError(f"{where}: float pixels range over [{lo:.4g}, {hi:.4g}], expected [0, 1]{hint}")
    return np.clip(np.rint(a.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


def check_labels(labels: np.ndarray, n: int, where: str, classes: int = 10) -> np.ndarray:
    """n integer labels, one per image, in 0..classes-1 -> int64."""
    if labels.ndim != 1 or len(labels) != n or not np.issubdtype(labels.dtype, np.integer):
        raise MnistganError(
            f"{where} must be {n} integer labels (one per image), got {labels.dtype} {labels.shape}"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise MnistganError(f"{where} holds labels outside 0..{classes - 1}")
    return labels.astype(np.int64)


# ----------------------------------------------------------------------------- folders


def image_files(folder: Path) -> tuple[list[Path], Optional[list[int]], Optional[list[str]]]:
    """The folder's image files in name order, and (with class subfolders) their labels and the classes."""

    def images_in(d: Path) -> list[Path]:
        return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)

    top = images_in(folder)
    subfolders = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    per_class = [(d.name, images_in(d)) for d in subfolders]
    per_class = [(name, files) for name, files in per_class if files]
    if per_class and top:
        raise MnistganError(
            f"{folder} holds images and class subfolders; put every image in a class subfolder"
        )
    if per_class:
        files = [f for _, fs in per_class for f in fs]
        labels = [k for k, (_, fs) in enumerate(per_class) for _ in fs]
        return files, labels, [name for name, _ in per_class]
    if not top:
        raise MnistganError(
            f"{folder} holds no image files ({', '.join(sorted(EXTENSIONS))}), in it or in class subfolders"
        )
    return top, None, None


def read_folder(folder: Path, cache_dir: Optional[Path]):
    files, labels, classes = image_files(folder)
    cache = cache_path(folder, files, cache_dir) if cache_dir is not None else None
    if cache is not None and cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as f:
                return (
                    f["images"],
                    (f["labels"] if labels is not None else None),
                    classes,
                    f" (cached: {cache})",
                )
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass  # a damaged cache is decoded again and replaced
    images = np.stack(
        [
            read_image(f)
            for f in tqdm(
                files, desc=f"Reading {folder}", unit="image", leave=False, disable=len(files) < 1000
            )
        ]
    )
    lab = None if labels is None else np.asarray(labels, dtype=np.int64)
    if cache is not None:
        arrays = {"images": images, **({"labels": lab} if lab is not None else {})}
        write_with(cache, lambda tmp: np.savez(tmp, **arrays))
        return images, lab, classes, f" (decoded once, cached in {cache})"
    return images, lab, classes, ""


def cache_path(folder: Path, files: list[Path], cache_dir: Path) -> Path:
    """<cache_dir>/<folder name>-<hash of the files' names, sizes and times>.npz"""
    h = hashlib.sha256(f"v{CACHE_VERSION}|{folder.resolve()}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(folder)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return Path(cache_dir) / f"{folder.name}-{h.hexdigest()[:16]}.npz"


def read_image(path: Path) -> np.ndarray:
    """One image file -> uint8 (28, 28): gray, the longer side scaled to 28, padded with its background."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise MnistganError(
                        f"{path}: {im.width}x{im.height} pixels is too large for a 28x28 image"
                    )
                im.load()
                gray = im.convert("L")
    except MnistganError:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
    ) as e:
        raise MnistganError(f"{path} is not a readable image ({type(e).__name__}: {str(e)[:100]})") from None
    return fit(np.asarray(gray))


def fit(a: np.ndarray) -> np.ndarray:
    """A uint8 (H, W) image in a 28x28 square: scaled (aspect kept) so the longer side is 28, padded
    with the median of its border pixels, centred."""
    h, w = a.shape
    if (h, w) == (SIDE, SIDE):
        return a.copy()
    scale = SIDE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray(a).resize(size, Image.LANCZOS))
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    out = np.full((SIDE, SIDE), int(np.median(border)), dtype=np.uint8)
    top, left = (SIDE - small.shape[0]) // 2, (SIDE - small.shape[1]) // 2
    out[top : top + small.shape[0], left : left + small.shape[1]] = small
    return out
