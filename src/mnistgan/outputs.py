"""The run directory: creating it, and the pictures and export written before and after training."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .checkpoint import export_generator
from .config import Config, to_dict
from .data import Images
from .errors import MnistganError
from .files import write_json
from .plots import plot_comparison, plot_losses, read_log
from .sample import COURSE_SEED, load_generator, run_generator, save_folder, save_gif, save_grid, to_uint8

RUN_MARKERS = ("config.json", "log.jsonl", "checkpoints")


def holds_run(directory: Path) -> bool:
    return any((directory / m).exists() for m in RUN_MARKERS)


def run_name(cfg: Config) -> str:
    digit = f"-digit{cfg.data.digit}" if cfg.data.digit is not None else ""
    return f"{cfg.data.dataset}{digit}-{cfg.model.model}-{cfg.loss.loss}"


def check_run_dir(run_dir: str | Path) -> Path:
    """A --run-dir for a new run: a new or empty folder, or one without a run in it."""
    d = Path(run_dir)
    if d.exists() and not d.is_dir():
        raise MnistganError(f"--run-dir {d} is a file; choose a folder")
    if d.is_dir() and holds_run(d):
        raise MnistganError(f"{d} already holds a run; continue it with --resume {d} or choose another --run-dir")
    return d


def new_run_dir(cfg: Config, out_dir: str | Path = "runs", run_dir: Optional[str | Path] = None) -> Path:
    """Create runs/<NNNNN>-<dataset>-<model>-<loss>/ (or the given --run-dir) for a new run."""
    if run_dir is not None:
        d = check_run_dir(run_dir)
    else:
        root = Path(out_dir)
        if root.exists() and not root.is_dir():
            raise MnistganError(f"--out-dir {root} is a file; choose a folder")
        taken = [int(m.group(1)) for p in (root.iterdir() if root.is_dir() else [])
                 if (m := re.match(r"(\d{5})-", p.name))]
        d = root / f"{max(taken, default=-1) + 1:05d}-{run_name(cfg)}"
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MnistganError(f"cannot create run folder {d}: {e.strerror}; choose a writable --out-dir") from None
    return d


def write_start(run_dir: Path, cfg: Config, data: Images) -> None:
    """config.json (replayable) and real_samples.png (the training images before training)."""
    write_json(run_dir / "config.json", to_dict(cfg))
    save_grid(data.images[:64].cpu().numpy(), run_dir / "real_samples.png", ncols=8)


def save_epoch_samples(G: torch.nn.Module, fixed_z: torch.Tensor, run_dir: Path, epoch: int,
                       labels: Optional[torch.Tensor] = None) -> np.ndarray:
    images = to_uint8(run_generator(G, fixed_z, labels))
    save_grid(images, run_dir / "samples" / f"epoch_{epoch:03d}.png", ncols=8 if labels is None else 10)
    return images


def write_finish(run_dir: Path, G_final: torch.nn.Module, cfg: Config, data: Images, extra: dict) -> None:
    """Export the generator, then draw every final picture *from the export* (what users get)."""
    export_generator(G_final, cfg, run_dir / "generator", extra)
    gen = load_generator(run_dir / "generator")
    images = gen.generate(100, COURSE_SEED)  # the first 25 rows are the course snippet's z
    save_grid(images[:25], run_dir / "final_grid.png")
    save_folder(images, run_dir / "final_generated_images")
    n = min(64, len(data))
    pick = torch.from_numpy(np.random.RandomState(0).choice(len(data), n, replace=False))
    real = data.images[pick.to(data.images.device)].cpu().numpy()
    plot_comparison(real, gen.generate(n, COURSE_SEED + 1), run_dir / "comparison.png")
    plot_losses(read_log(run_dir / "log.jsonl"), run_dir / "losses.png", title=run_dir.name)
    frames = sorted((run_dir / "samples").glob("epoch_*.png"))
    if frames:
        save_gif(frames, run_dir / "progress.gif")
