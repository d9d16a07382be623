"""What a run writes before and after training: config.json and real_samples.png at the start,
the epoch grids during it, and at the end the saved generator and every picture drawn from it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..config import Config, custom_model_spec, to_dict
from ..data import Images
from ..files import write_bytes, write_json
from ..generator.format import save_generator
from ..generator.images import save_folder, save_gif, save_grid
from ..generator.sample import COURSE_SEED, load_generator, run_generator, to_uint8
from ..models import Built
from ..models.summary import model_tables
from ..rundir import ARCHITECTURE, model_source, read_log
from .plots import plot_comparison, plot_losses


def write_start(run_dir: Path, cfg: Config, data: Images, built: Optional[Built] = None) -> None:
    """config.json (replayable) and real_samples.png (the training images before training); for your
    own G and D also a copy of their Python file and their layer tables (architecture.json)."""
    write_json(run_dir / "config.json", to_dict(cfg))
    save_grid(data.images[:64].cpu().numpy(), run_dir / "real_samples.png", ncols=8)
    if custom_model_spec(cfg.model.model) and built is not None:
        source = built.classes.source if built.classes else None
        if source is not None and source.is_file():
            write_bytes(model_source(run_dir, cfg.model.model), source.read_bytes())
        tables = model_tables(
            built.G,
            built.D,
            cfg.model.z_dim,
            cfg.model.conditional,
            cfg.model.conditional,
            cfg.model.channels,
        )
        write_json(run_dir / ARCHITECTURE, tables)


def save_epoch_samples(
    G: torch.nn.Module,
    fixed_z: torch.Tensor,
    run_dir: Path,
    epoch: int,
    labels: Optional[torch.Tensor] = None,
) -> np.ndarray:
    images = to_uint8(run_generator(G, fixed_z, labels))
    ncols = 8 if labels is None else int(labels.max()) + 1  # conditional: one column per class
    save_grid(images, run_dir / "samples" / f"epoch_{epoch:03d}.png", ncols=ncols)
    return images


def write_finish(
    run_dir: Path,
    G_final: torch.nn.Module,
    cfg: Config,
    data: Images,
    extra: dict,
    source: Optional[Path] = None,
) -> None:
    """Save the generator, then draw every final picture *from the saved one* (what users get).
    source: the Python file of your own G, copied beside it for reference."""
    save_generator(G_final, cfg, run_dir / "generator", extra, source)
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
