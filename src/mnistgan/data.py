"""Training data: a validating IDX reader, the data set registry, and resident batches.

The whole training set is read once into one uint8 tensor (N, 28, 28) and kept on the
training device. Batches are slices of a per-epoch permutation, scaled to [-1, 1] per
batch: no per-image transforms, no DataLoader worker processes.
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from .config import DataConfig
from .errors import MnistganError
from .userdata import load_user_images

MAX_IDX_BYTES = 1 << 31  # 2 GiB: larger than any 28x28 data set (EMNIST byclass is 0.6 GB)
_CHUNK = 1 << 22


@dataclass(frozen=True)
class DatasetSpec:
    prefix: str  # file name prefix before "train-images-idx3-ubyte"
    system_dirs: tuple = ()  # where an OS package installs it
    torchvision: Optional[str] = None  # torchvision class name for the download fallback
    transposed: bool = False  # EMNIST stores images transposed


DATASETS = {
    "mnist": DatasetSpec("", (), "MNIST"),
    "fashion-mnist": DatasetSpec("", ("/usr/share/datasets/fashion-mnist",), "FashionMNIST"),
    "kmnist": DatasetSpec("", (), "KMNIST"),
    "emnist-digits": DatasetSpec("emnist-digits-", (), "EMNIST", transposed=True),
}
SPLITS = {"train": "train", "test": "t10k"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip) of uint8 data, validating everything it declares.

    Checks: the magic number (two zero bytes, dtype 0x08 = uint8, 1 or 3 dimensions),
    every declared size against the data actually present (no trailing or missing bytes),
    the gzip CRC, and a cap on the declared total so a lying header cannot make us
    allocate gigabytes. Reads in chunks, so memory grows only with real data.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            f = gzip.open(path, "rb")
        else:
            f = open(path, "rb")
    except FileNotFoundError:
        raise MnistganError(f"IDX file {path} not found") from None
    except OSError as e:
        raise MnistganError(f"cannot open IDX file {path}: {e.strerror or e}") from None
    try:
        with f:
            return _read_idx_stream(f, path)
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise MnistganError(f"{path} is corrupt ({e}); re-download or re-copy the file") from None


def _read_idx_stream(f, path: Path) -> np.ndarray:
    head = f.read(4)
    if len(head) < 4:
        raise MnistganError(f"{path} is too short to be an IDX file (need a 4-byte magic number)")
    if head[0] != 0 or head[1] != 0:
        raise MnistganError(f"{path} is not an IDX file (bad magic number {head.hex()})")
    if head[2] != 0x08:
        raise MnistganError(
            f"{path}: IDX data type 0x{head[2]:02x} is not supported (need 0x08, unsigned bytes)"
        )
    ndim = head[3]
    if ndim not in (1, 3):
        raise MnistganError(f"{path}: IDX file has {ndim} dimensions; expected 1 (labels) or 3 (images)")
    raw_dims = f.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise MnistganError(f"{path} is truncated inside its header")
    dims = tuple(int.from_bytes(raw_dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    if any(d == 0 for d in dims):
        raise MnistganError(f"{path}: IDX header declares an empty shape {dims}")
    total = 1
    for d in dims:
        total *= d
    if total > MAX_IDX_BYTES:
        raise MnistganError(
            f"{path}: IDX header declares {total:,} bytes of data {dims}, more than any "
            f"supported data set; the file is corrupt"
        )
    if not isinstance(f, gzip.GzipFile):
        present = os.fstat(f.fileno()).st_size - 4 - 4 * ndim
        if present != total:
            raise MnistganError(
                f"{path}: header declares shape {dims} ({total:,} bytes) but the file holds "
                f"{present:,} bytes of data; the file is truncated or corrupt"
            )
    buf = bytearray()
    while len(buf) < total:
        chunk = f.read(min(_CHUNK, total - len(buf)))
        if not chunk:
            raise MnistganError(
                f"{path}: header declares shape {dims} ({total:,} bytes) but the data ends "
                f"after {len(buf):,} bytes; the file is truncated"
            )
        buf += chunk
    if f.read(1):
        raise MnistganError(f"{path}: more data than its header declares {dims}; the file is corrupt")
    return np.frombuffer(buf, dtype=np.uint8).reshape(dims)  # bytearray: writable, no copy


def bundled_dir() -> Path:
    return Path(str(resources.files("mnistgan") / "assets" / "mnist"))


def _find(directory: Path, name: str) -> Optional[Path]:
    """Find `name` or `name.gz` in directory or in torchvision's DIR/<Class>/raw layout."""
    for sub in ("", "raw", "MNIST/raw", "FashionMNIST/raw", "KMNIST/raw", "EMNIST/raw", "gzip"):
        for candidate in (directory / sub / name, directory / sub / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _idx_names(spec: DatasetSpec, split: str) -> tuple[str, str]:
    stem = f"{spec.prefix}{SPLITS[split]}"
    return f"{stem}-images-idx3-ubyte", f"{stem}-labels-idx1-ubyte"


def locate(dataset: str, data_dir: Optional[str], split: str = "train") -> tuple[Path, Path]:
    """Return (images_path, labels_path) for a data set split, or one error naming the options."""
    if dataset not in DATASETS:
        raise MnistganError(f"unknown dataset '{dataset}'; choose one of: {', '.join(DATASETS)}")
    spec = DATASETS[dataset]
    img_name, lbl_name = _idx_names(spec, split)
    if data_dir is not None:
        d = Path(data_dir)
        if not d.is_dir():
            raise MnistganError(f"--data-dir {d} is not a folder; point it at a folder of IDX files")
        img, lbl = _find(d, img_name), _find(d, lbl_name)
        if img is None:
            raise MnistganError(f"no {img_name}[.gz] in --data-dir {d}; put the {dataset} IDX files there")
        return img, lbl if lbl is not None else d / f"{lbl_name}.gz"
    candidates = [bundled_dir()] if dataset == "mnist" else [Path(p) for p in spec.system_dirs]
    for d in candidates:
        img, lbl = _find(d, img_name), _find(d, lbl_name)
        if img is not None and lbl is not None:
            return img, lbl
    cache = _download(dataset, spec)
    if cache is not None:
        img, lbl = _find(cache, img_name), _find(cache, lbl_name)
        if img is not None and lbl is not None:
            return img, lbl
    hint = " or install the Debian package dataset-fashion-mnist" if dataset == "fashion-mnist" else ""
    raise MnistganError(
        f"data set {dataset} not found: pass --data-dir DIR with its IDX files{hint}, "
        f"or allow torchvision to download it (network needed)"
    )


def cache_root() -> Path:
    return Path(os.environ.get("MNISTGAN_CACHE", Path.home() / ".cache" / "mnistgan"))


def _download(dataset: str, spec: DatasetSpec) -> Optional[Path]:
    """Try torchvision's download into the cache; None when the network is unavailable."""
    if os.environ.get("MNISTGAN_OFFLINE") or spec.torchvision is None:
        return None
    import torchvision.datasets as tvd  # here: importing torchvision costs ~1.5 s of start-up

    root = cache_root() / "data" / dataset
    try:
        cls = getattr(tvd, spec.torchvision)
        if spec.torchvision == "EMNIST":
            cls(str(root), split="digits", train=True, download=True)
        else:
            cls(str(root), train=True, download=True)
    except Exception:  # any network/HTTP/zip failure means: not available here
        return None
    return root


@dataclass
class Images:
    """A data set split resident in memory: uint8 images (N, C, 28, 28), int64 labels (N,) or None,
    and the class names the labels stand for (None: the digits 0-9)."""

    images: torch.Tensor
    labels: Optional[torch.Tensor]
    source: str
    classes: Optional[list[str]] = None

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def channels(self) -> int:
        return self.images.shape[1]


def load_images(
    dataset: str = "mnist", data_dir: Optional[str] = None, split: str = "train", with_labels: bool = False
) -> Images:
    img_path, lbl_path = locate(dataset, data_dir, split)
    images = read_idx(img_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise MnistganError(f"{img_path}: images have shape {images.shape[1:]}, expected 28x28")
    if DATASETS[dataset].transposed:
        images = images.transpose(0, 2, 1)
    labels = None
    if with_labels:
        labels = read_idx(lbl_path)
        if labels.ndim != 1 or len(labels) != len(images):
            raise MnistganError(
                f"{lbl_path}: {labels.shape} labels for {len(images)} images; the files do not match"
            )
        labels = torch.from_numpy(labels.astype(np.int64))
    return Images(torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1), labels, str(img_path))


def user_images(path: str, cache_dir: Optional[Path] = None) -> Images:
    """--images PATH as resident images (N, 1, 28, 28) (userdata.py reads and checks them)."""
    u = load_user_images(path, cache_dir)
    labels = None if u.labels is None else torch.from_numpy(u.labels)
    return Images(torch.from_numpy(np.ascontiguousarray(u.images)).unsqueeze(1), labels, u.source, u.classes)


def one_class(data: Images, name: str) -> Images:
    """The images of one class subfolder (--class NAME)."""
    if not data.classes:
        raise MnistganError(f"--class {name}: {data.source} has no class subfolders")
    if name not in data.classes:
        raise MnistganError(
            f"--class {name}: no such class in {data.source} (its classes: {', '.join(data.classes[:20])})"
        )
    keep = data.labels == data.classes.index(name)
    return Images(data.images[keep], data.labels[keep], f"{data.source}, class {name}", data.classes)


def stacked_mode(digits: torch.Tensor) -> torch.Tensor:
    """Digit triples (N, 3) -> their Stacked-MNIST mode 100 d_R + 10 d_G + d_B (0..999)."""
    return (digits * torch.tensor([100, 10, 1], device=digits.device)).sum(1)


STACKED_SEED = 0  # every run draws the same stacked-mnist set, like a fixed data set


def stacked(digits: Images, size: int, seed: int = STACKED_SEED) -> Images:
    """Stacked-MNIST (Srivastava et al. 2017; Lin et al. 2018): `size` colour images, each channel an
    independently drawn MNIST image, so (d_R, d_G, d_B) is one of 1,000 modes. Labels: the mode
    100 d_R + 10 d_G + d_B. The draw depends only on `seed`."""
    g = torch.Generator().manual_seed(seed)
    pick = torch.randint(len(digits), (size, 3), generator=g)  # (size, 3): one source image per channel
    images = digits.images[pick, 0]  # (size, 3, 28, 28)
    labels = stacked_mode(digits.labels[pick])
    return Images(images.contiguous(), labels, f"stacked-mnist ({size:,} images from {digits.source})")


def load_train_data(
    cfg: DataConfig,
    device: torch.device | str = "cpu",
    need_labels: bool = False,
    cache_dir: Optional[Path] = None,
) -> Images:
    """The training images of a run on `device`: a data set (filtered by --digit), stacked-mnist, or
    your own --images (filtered by --class; decoded folders cached in cache_dir), capped by --limit."""
    use_labels = need_labels or cfg.digit is not None
    if cfg.images is not None:
        data = user_images(cfg.images, cache_dir)
        if cfg.class_name is not None:
            data = one_class(data, cfg.class_name)
    elif cfg.dataset == "stacked-mnist":
        data = stacked(load_images("mnist", cfg.data_dir, "train", with_labels=True), cfg.stacked_size)
    else:
        data = load_images(cfg.dataset, cfg.data_dir, "train", with_labels=use_labels)
    if need_labels and data.labels is None:
        raise MnistganError(
            f"--conditional needs labels, and {data.source} has none (an .npz 'labels' array, "
            "or class subfolders)"
        )
    images, labels = data.images, data.labels
    if cfg.digit is not None:
        keep = labels == cfg.digit
        images, labels = images[keep], labels[keep]
        if len(images) == 0:
            raise MnistganError(
                f"no training images of digit {cfg.digit} in {data.source}; choose another --digit"
            )
    if cfg.limit is not None:
        images = images[: cfg.limit]
        labels = labels[: cfg.limit] if labels is not None else None
    if not need_labels:
        labels = None
    images = images.to(device)
    labels = labels.to(device) if labels is not None else None
    return Images(images, labels, data.source, data.classes)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The data order of one epoch: a permutation that depends only on (seed, epoch).

    Deriving it instead of carrying a generator state makes resume exact and trivial:
    a run restarted in epoch e at batch b takes the same batches as one never stopped.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Full batches only (a tiny last batch hurts BatchNorm); at least one batch."""
    return max(1, n // batch_size)


def batches(
    data: Images, batch_size: int, seed: int, epoch: int, start: int = 0
) -> Iterator[tuple[torch.Tensor, Optional[torch.Tensor]]]:
    """Yield (images (B, C, 28, 28) float in [-1, 1], labels (B,) or None) from batch `start` on."""
    n = len(data)
    order = epoch_order(n, seed, epoch).to(data.images.device)
    b = min(batch_size, n)
    for i in range(start, steps_per_epoch(n, batch_size)):
        idx = order[i * b : (i + 1) * b]
        x = data.images[idx].float().div_(127.5).sub_(1.0)
        yield x, (data.labels[idx] if data.labels is not None else None)
