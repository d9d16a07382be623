"""Reading images to evaluate or label: .npz arrays, folders of PNGs, tiled grid PNGs.

Everything comes out as uint8 (N, 28, 28), 0 = black background, plus optional requested
labels (from an .npz's "labels") and a name per image for messages. Each kind of bad input
(wrong size, wrong channel count, empty folder, NaN, values out of range) is one clear error.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import MnistganError
from ..generator.images import GRID_SCALE
from ..userdata import read_array

SIDE = 28
CHANNELS = {"L": 1, "1": 1, "LA": 2, "RGB": 3, "RGBA": 4, "CMYK": 4, "P": 3, "I": 1, "I;16": 1, "F": 1}


@dataclass
class Loaded:
    images: np.ndarray  # uint8 (N, 28, 28)
    labels: Optional[np.ndarray]  # int64 (N,) requested labels, or None
    names: list  # one display name per image
    note: str = ""  # how the input was read (e.g. the grid layout assumed)


def load_inputs(paths, grid: Optional[str] = None, colour: bool = False) -> Loaded:
    """Load and concatenate every path (an .npz, a PNG folder, a PNG file or grid), in order.
    colour: an .npz may hold colour images (N, 3, 28, 28) (stacked-mnist samples)."""
    parts = [load_input(Path(p), grid, colour) for p in paths]
    if not parts:
        raise MnistganError("no images given; pass an .npz file, a folder of PNGs or a PNG")
    if len(parts) == 1:
        return parts[0]
    labels = None
    if all(p.labels is not None for p in parts):
        labels = np.concatenate([p.labels for p in parts])
    return Loaded(
        np.concatenate([p.images for p in parts]),
        labels,
        sum((p.names for p in parts), []),
        "; ".join(p.note for p in parts if p.note),
    )


def load_input(path: Path, grid: Optional[str] = None, colour: bool = False) -> Loaded:
    if not path.exists():
        raise MnistganError(f"{path} not found; pass an .npz file, a folder of PNGs or a PNG")
    if path.is_dir():
        return load_png_folder(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return load_npz(path, colour)
    if suffix == ".png":
        return load_png_file(path, grid)
    raise MnistganError(f"cannot read {path}: expected an .npz file, a folder of PNGs or a .png")


# ----------------------------------------------------------------------------- .npz


def load_npz(path: Path, colour: bool = False) -> Loaded:
    """An .npz with "images" (or a single array): (N, 28, 28), (N, 1, 28, 28) or (N, 28, 28, 1);
    uint8 0..255, integers 0..255, or floats in [0, 1] (userdata.read_array). An optional "labels"
    (N,) holds the digits a conditional generator was asked for."""
    images, labels, key = read_array(path, colour, classes=10)
    width = len(str(max(len(images) - 1, 0)))
    return Loaded(images, labels, [f"{path.name}[{i:0{width}d}]" for i in range(len(images))])


# ----------------------------------------------------------------------------- PNG


def _natural_key(name: str):
    """'img10.png' after 'img9.png': digit runs compare as numbers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _read_png(path: Path) -> np.ndarray:
    try:
        with warnings.catch_warnings():  # PIL warns above MAX_IMAGE_PIXELS: refuse those too (below)
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            mode = img.mode  # checked from the header, before load() allocates the pixels
            if CHANNELS.get(mode, 0) != 1:
                raise MnistganError(
                    f"{path} has mode {mode} ({CHANNELS.get(mode, '?')} channels); expected "
                    f"grayscale (1 channel, mode L), e.g. convert it with PIL's .convert('L')"
                )
            if mode in ("I", "I;16", "F"):
                raise MnistganError(
                    f"{path} is a {mode} ({'float' if mode == 'F' else '16/32-bit'}) image; "
                    f"expected 8-bit grayscale (mode L)"
                )
            img.load()
            arr = np.asarray(img.convert("L"), dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MnistganError(
            f"{path} declares more than {Image.MAX_IMAGE_PIXELS:,} pixels, too large to read "
            f"safely; pass the images as an .npz instead"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise MnistganError(f"{path} is not a readable PNG ({str(e)[:100]})") from None
    return arr


def load_png_folder(directory: Path) -> Loaded:
    """Every *.png in the folder (not its subfolders), in natural name order; each 28x28 grayscale."""
    files = sorted(
        (p for p in directory.iterdir() if p.suffix.lower() == ".png" and p.is_file()),
        key=lambda p: _natural_key(p.name),
    )
    if not files:
        raise MnistganError(f"folder {directory} holds no .png images")
    images = np.empty((len(files), SIDE, SIDE), dtype=np.uint8)
    for i, f in enumerate(files):
        arr = _read_png(f)
        if arr.shape != (SIDE, SIDE):
            raise MnistganError(
                f"{f} is {arr.shape[1]}x{arr.shape[0]} pixels; every image in a folder must be "
                f"28x28 (for a tiled grid, pass the PNG file itself)"
            )
        images[i] = arr
    return Loaded(images, None, [f.name for f in files])


def load_png_file(path: Path, grid: Optional[str] = None) -> Loaded:
    """One 28x28 PNG, or a grid of tiles in row-major order (mnistgan's `generate --out x.png` layout)."""
    arr = _read_png(path)
    h, w = arr.shape
    if (h, w) == (SIDE, SIDE) and grid is None:
        return Loaded(arr[None], None, [path.name])
    rows, cols, note = _grid_layout(path, h, w, grid)
    th, tw = h // rows, w // cols
    if th % SIDE or tw % SIDE or th != tw:
        raise MnistganError(
            f"{path}: {rows}x{cols} tiles of {tw}x{th} pixels; tiles must be square "
            f"multiples of 28 pixels (check --grid ROWSxCOLS)"
        )
    s = th // SIDE
    # (rows, 28, s, cols, 28, s) -> block mean: undoes a nearest-neighbour upscale exactly
    tiles = arr.reshape(rows, SIDE, s, cols, SIDE, s).astype(np.float64).mean(axis=(2, 5))
    tiles = np.rint(tiles).astype(np.uint8).transpose(0, 2, 1, 3).reshape(rows * cols, SIDE, SIDE)
    names = [f"{path.name}[row {i // cols + 1}, col {i % cols + 1}]" for i in range(rows * cols)]
    return Loaded(tiles, None, names, note)


def _grid_layout(path: Path, h: int, w: int, grid: Optional[str]) -> tuple[int, int, str]:
    if grid is not None:
        m = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*", grid)
        if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
            raise MnistganError(f"--grid {grid!r}: expected ROWSxCOLS, e.g. 5x5")
        rows, cols = int(m.group(1)), int(m.group(2))
        if h % rows or w % cols:
            raise MnistganError(
                f"{path} is {w}x{h} pixels, which does not split into {rows}x{cols} equal tiles"
            )
        return rows, cols, f"{path.name}: read as a {rows}x{cols} grid"
    for scale in (GRID_SCALE, 1):
        t = SIDE * scale
        if h % t == 0 and w % t == 0:
            rows, cols = h // t, w // t
            return (
                rows,
                cols,
                (
                    f"{path.name}: read as a {rows}x{cols} grid of {t}-pixel tiles "
                    f"(pass --grid ROWSxCOLS if that is wrong)"
                ),
            )
    raise MnistganError(
        f"{path} is {w}x{h} pixels: neither one 28x28 image nor a grid of 28- or 112-pixel "
        f"tiles; pass --grid ROWSxCOLS"
    )
