"""Latent interpolation: a grid PNG (one row per path, one column per step) and an animated GIF.

Row r walks from z_a = noise[2r] to z_b = noise[2r + 1], where noise = course_noise(2 * rows,
z_dim, seed), so the endpoints depend only on the seed. A conditional generator instead gets
one path (noise[0] -> noise[1]) drawn for every digit: a 10 x steps grid, row d = digit d.

Spherical interpolation (slerp, White 2016) keeps the intermediate z at the norm a Gaussian
sample has (about sqrt(z_dim)); linear interpolation (lerp) shrinks it towards the middle.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import MnistganError
from ..models import ClusterG
from .images import save_gif, save_grid
from .sample import COURSE_SEED, Generator, course_noise, load_generator, run_generator, to_uint8

METHODS = ("slerp", "lerp")
MAX_STEPS, MAX_ROWS = 256, 64  # keeps a grid and its GIF at a sane size (a 64 x 256 grid is 7168 x 28672 px)
FRAME_MS = 120  # GIF frame duration in milliseconds


def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """a, b (z_dim,), t (steps,) in [0, 1] -> (steps, z_dim) on the straight line a -> b."""
    return (1.0 - t)[:, None] * a[None] + t[:, None] * b[None]


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation on the great circle through a and b (norms interpolated linearly).

    sin((1-t)w)/sin(w) * a + sin(tw)/sin(w) * b, w = angle(a, b); for (anti)parallel a, b the
    circle is undefined, so it falls back to lerp.
    """
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return lerp(a, b, t)
    cos = np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0)
    omega = np.arccos(cos)
    if np.sin(omega) < 1e-6:
        return lerp(a, b, t)
    s = np.sin(omega)
    return (np.sin((1.0 - t) * omega) / s)[:, None] * a[None] + (np.sin(t * omega) / s)[:, None] * b[None]


def latent_grid(
    z_dim: int, rows: int, steps: int, seed: int = COURSE_SEED, method: str = "slerp"
) -> np.ndarray:
    """The interpolation latents: (rows, steps, z_dim), row r from noise[2r] to noise[2r + 1]."""
    if method not in METHODS:
        raise MnistganError(f"unknown interpolation '{method}'; choose one of: {', '.join(METHODS)}")
    ends = course_noise(2 * rows, z_dim, seed).reshape(rows, 2, z_dim)
    t = np.linspace(0.0, 1.0, steps)
    path = slerp if method == "slerp" else lerp
    return np.stack([path(a, b, t) for a, b in ends])


def interpolation_images(
    gen: Generator,
    rows: int = 4,
    steps: int = 10,
    seed: int = COURSE_SEED,
    method: str = "slerp",
    blend_clusters: bool = True,
) -> np.ndarray:
    """uint8 images (rows, steps, 28, 28) (colour: (rows, steps, 3, 28, 28)); for a conditional G,
    rows = its classes (10 digits) on one shared path.

    A cluster generator (ClusterG) reads its cluster off z_0, so G(z) jumps to another cluster
    wherever a path crosses a threshold; blend_clusters instead moves its cluster code linearly
    from the start's one-hot to the end's while z moves (class interpolation as in BigGAN), so
    the endpoints are exactly G(z_a) and G(z_b) and the steps between morph rather than jump."""
    check_sizes(rows, steps)
    labels = None
    if gen.conditional:
        k = gen.n_classes
        z = np.repeat(latent_grid(gen.z_dim, 1, steps, seed, method), k, axis=0)  # (classes, steps, z_dim)
        labels = torch.arange(k, device=gen.device).repeat_interleave(steps)  # row d -> class d
        rows = k
    else:
        z = latent_grid(gen.z_dim, rows, steps, seed, method)
    zt = torch.from_numpy(z.reshape(rows * steps, gen.z_dim).astype(np.float32)).to(gen.device)
    if blend_clusters and isinstance(gen.module, ClusterG):
        G = gen.module
        ends = zt.view(rows, steps, -1)
        start, end = (F.one_hot(G.clusters_of(ends[:, i]), G.k).float() for i in (0, -1))  # (rows, k)
        t = torch.linspace(0, 1, steps, device=zt.device).view(1, steps, 1)
        code = (1 - t) * start[:, None] + t * end[:, None]  # (rows, steps, k)
        images = to_uint8(run_generator(G.net, torch.cat([zt, code.reshape(rows * steps, G.k)], dim=1)))
    else:
        images = to_uint8(run_generator(gen.module, zt, labels))  # (rows * steps, 28, 28), row-major
    return images.reshape(rows, steps, *images.shape[1:])


def check_sizes(rows: int, steps: int) -> None:
    if not 2 <= steps <= MAX_STEPS:
        raise MnistganError(f"--steps must be between 2 and {MAX_STEPS}, got {steps}")
    if not 1 <= rows <= MAX_ROWS:
        raise MnistganError(f"--rows must be between 1 and {MAX_ROWS}, got {rows}")


def check_suffix(path: str | os.PathLike, suffix: str, flag: str) -> Path:
    path = Path(path)
    if path.suffix.lower() != suffix:
        raise MnistganError(f"{flag} {path} must end in {suffix}")
    return path


def write_gif(images: np.ndarray, path: Path, ms_per_frame: int = FRAME_MS) -> int:
    """Frame k shows column k of the grid (every row at step k), forward then back so it loops smoothly.

    save_gif takes PNG frames, so the frames are written to a temporary folder first.
    Returns the number of frames.
    """
    steps = images.shape[1]
    order = list(range(steps)) + list(range(steps - 2, 0, -1))  # 0..S-1..1 (ping-pong)
    with tempfile.TemporaryDirectory(prefix="mnistgan-interp-") as tmp:
        frames = []
        for k in range(steps):
            frame = Path(tmp) / f"{k:03d}.png"
            save_grid(images[:, k], frame, ncols=min(images.shape[0], 10))  # the paths side by side
            frames.append(frame)
        save_gif([frames[k] for k in order], path, ms_per_frame)
    return len(order)


def interpolate(
    generator: str | os.PathLike,
    out: str | os.PathLike,
    steps: int = 10,
    rows: int = 4,
    seed: int = COURSE_SEED,
    gif: Optional[str | os.PathLike] = None,
    method: str = "slerp",
    ms_per_frame: int = FRAME_MS,
    blend_clusters: bool = True,
) -> dict:
    """Write the interpolation grid to `out` (.png) and its animation to `gif` (default: out with .gif).

    Returns {"png": path, "gif": path, "rows": rows, "steps": steps, "frames": n}.
    """
    out = check_suffix(out, ".png", "--out")
    gif = check_suffix(gif, ".gif", "--gif") if gif is not None else out.with_suffix(".gif")
    if ms_per_frame <= 0:
        raise MnistganError(f"--frame-ms must be positive, got {ms_per_frame}")
    check_sizes(rows, steps)
    images = interpolation_images(load_generator(generator), rows, steps, seed, method, blend_clusters)
    save_grid(images.reshape(-1, *images.shape[2:]), out, ncols=steps)
    frames = write_gif(images, gif, ms_per_frame)
    return {"png": out, "gif": gif, "rows": images.shape[0], "steps": steps, "frames": frames}
