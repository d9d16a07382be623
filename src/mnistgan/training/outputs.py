"""What a run writes before and after training: config.json and real_samples.png at the start,
the epoch grids during it, and at the end the saved generator and every picture drawn from it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..config import Config, to_dict
from ..data import Images
from ..files import write_json
from ..generator.format import save_generator
from ..generator.images import save_folder, save_gif, save_grid
from ..generator.sample import COURSE_SEED, load_generator, run_generator, to_uint8
from ..rundir import read_log
from .plots import plot_comparison, plot_losses


def write_start(run_dir: Path, cfg: Config, data: Images) -> None:
    """config.json (replayable) and real_samples.png (the training images before training)."""
    write_json(run_dir / "config.json", to_dict(cfg))
    save_grid(data.images[:64].cpu().numpy(), run_dir / "real_samples.png", ncols=8)


def save_epoch_samples(
    G: torch.nn.Module,
    fixed_z: torch.Tensor,
    run_dir: Path,
    epoch: int,
    labels: Optional[torch.Tensor] = None,
) -> np.ndarray:
    images = to_uint8(run_generator(G, fixed_z, labels))
    save_grid(images, run_dir / "samples" / f"epoch_{epoch:03d}.png", ncols=8 if labels is None else 10)
    return images


def write_finish(run_dir: Path, G_final: torch.nn.Module, cfg: Config, data: Images, extra: dict) -> None:
    """Export the generator, then draw every final picture *from the export* (what users get)."""
    save_generator(G_final, cfg, run_dir / "generator", extra)
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


def sample_due(cfg: Config, epoch: int) -> bool:
    t = cfg.train
    if t.sample_every:
        return epoch % t.sample_every == 0 or epoch == 1
    return epoch in t.sample_epochs
