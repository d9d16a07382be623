"""Seeded generation from a saved generator: `load_generator(DIR).predict(z)` (the course API),
`generate(DIR, n, seed)`.

A sample's noise depends only on its seed and z_dim: z = RandomState(seed).normal(size=[n, z_dim]),
which is exactly what the course snippet's `np.random.seed(504); np.random.normal(...)` draws.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..config import Config, custom_model_spec
from ..errors import MnistganError
from ..models import build_generator
from ..models.custom import generator_only
from ..models.layers import to_unit_interval
from ..rundir import generator_dir
from .format import REPAIR, SOURCE, check_state, load_state_strict, load_traced, read_generator
from .images import write_images

COURSE_SEED = 504


def course_noise(n: int, z_dim: int, seed: int = COURSE_SEED) -> np.ndarray:
    """The course snippet's noise: `np.random.seed(seed); np.random.normal(size=[n, z_dim])`."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise MnistganError(
            f"--seed must be a whole number from 0 to {2**32 - 1} (numpy's seed range), got {seed!r}"
        )
    return np.random.RandomState(seed).normal(size=[n, z_dim])


@torch.no_grad()
def run_generator(
    G: torch.nn.Module, z: torch.Tensor, labels: Optional[torch.Tensor] = None, chunk: int = 2048
) -> torch.Tensor:
    """G in eval mode on z (N, z_dim) -> float images (N, 28, 28) in [0, 1] on the CPU."""
    was_training = G.training
    G.eval()
    out = []
    try:
        for i in range(0, z.shape[0], chunk):
            zi = z[i : i + chunk]
            x = G(zi) if labels is None else G(zi, labels[i : i + chunk])
            out.append(to_unit_interval(x).squeeze(1).cpu())
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
        # channels_last: oneDNN's transposed convolutions are faster in NHWC (docs/performance.md)
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
        x = run_generator(self.module, zt, self.labels_for(labels, len(z))).numpy().astype(np.float32)
        if not np.isfinite(x).all():  # finite but impossible weights, e.g. a negative BatchNorm variance
            raise MnistganError("the generator produced NaN images: its weights are broken; retrain it")
        return x

    @property
    def conditional(self) -> bool:
        return self.config.model.conditional

    @property
    def n_classes(self) -> int:
        """The classes a conditional generator draws (the digits: 10)."""
        return self.config.model.n_classes

    @property
    def channels(self) -> int:
        return self.config.model.channels

    def labels_for(self, labels, n: int) -> Optional[torch.Tensor]:
        """Unconditional: None. Conditional: the given digit(s), by default 0, 1, ..., 9, 0, 1, ..."""
        if not self.conditional:
            if labels is not None:
                raise MnistganError(
                    "this generator is unconditional: it cannot draw a chosen digit (--digit)"
                )
            return None
        if labels is None:
            labels = np.arange(n) % self.n_classes
        labels = np.broadcast_to(np.asarray(labels), (n,))
        k = self.n_classes
        if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= k:
            raise MnistganError(f"labels must be {'digits' if k == 10 else 'classes'} 0-{k - 1}")
        return torch.as_tensor(labels.astype(np.int64), device=self.device)

    def generate(self, n: int = 25, seed: int = COURSE_SEED, labels=None) -> np.ndarray:
        """n images from the course noise of `seed`: uint8 (n, 28, 28)."""
        if n <= 0:
            raise MnistganError(f"n must be positive, got {n}")
        return to_uint8(self.predict(course_noise(n, self.z_dim, seed), labels))

    __call__ = predict


def load_generator(path: str | os.PathLike, device: str = "cpu", trust_code: bool = False) -> Generator:
    """Load a saved generator (folder with config.json + model.safetensors, or a run folder).

    Your own G (--model FILE.py:G,D) loads from its traced graph, without running its Python code;
    trust_code=True builds it from its class instead (imports FILE.py, or the copy saved beside it)."""
    cfg, meta, state = read_generator(path)
    if custom_model_spec(cfg.model.model):
        return Generator(load_custom(generator_dir(path), cfg, state, trust_code), cfg, meta, device)
    try:  # shapes first, on the meta device: a config.json that lies about sizes allocates nothing
        with torch.device("meta"):
            own = build_generator(cfg.model).state_dict()
    except (RuntimeError, ValueError, OverflowError, MemoryError) as e:
        raise MnistganError(
            f"{path}: config.json describes a generator that cannot be built "
            f"({str(e).splitlines()[0][:120]}); {REPAIR}"
        ) from None
    check_state(own, state, str(path))  # the weights in the file now bound what building G allocates
    G = build_generator(cfg.model)
    load_state_strict(G, state, str(path))
    return Generator(G, cfg, meta, device)


def load_custom(directory: Path, cfg: Config, state: dict, trust_code: bool) -> torch.nn.Module:
    """Your own G: its traced graph, or with trust_code its class with the saved weights."""
    if not trust_code:
        return load_traced(directory)
    source = custom_model_spec(cfg.model.model)[0]
    G = generator_only(cfg.model, fallback=directory / SOURCE / Path(source).name)
    load_state_strict(G, state, str(directory))
    return G


def generate(
    path: str | os.PathLike, n: int = 25, seed: int = COURSE_SEED, out: Optional[str] = None, labels=None
) -> np.ndarray:
    """Generate n images with the course noise of `seed`; write them to `out` if given."""
    images = load_generator(path).generate(n, seed, labels)
    if out is not None:
        write_images(images, out)
    return images
