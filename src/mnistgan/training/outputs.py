"""What a run writes before and after training: config.json and real_samples.png at the start,
the epoch grids during it, and at the end the saved generator and every picture drawn from it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..config import Config, custom_model_spec, to_dict
from ..data import Images
from ..evaluator.classifier import CLASSIFIERS, classify
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
) -> np.ndarray:
    """Save the generator, then draw every final picture *from the saved one* (what users get).
    source: the Python file of your own G, copied beside it for reference. Returns the course grid's
    25 images (final_grid.png)."""
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
    return images[:25]


def sample_due(cfg: Config, epoch: int) -> bool:
    t = cfg.train
    if t.sample_every:
        return epoch % t.sample_every == 0 or epoch == 1
    return epoch in t.sample_epochs


def course_grid_digits(images: np.ndarray, cfg: Config) -> Optional[str]:
    """Which digits the course's seed-504 grid shows, by the bundled classifier, said plainly when
    one is missing (None where no classifier knows the images). The grid is an honest draw: 25
    samples of G, not arranged to show every digit."""
    dataset = cfg.data.dataset
    if cfg.data.images or dataset not in CLASSIFIERS or images.ndim != 3:
        return None
    classes = CLASSIFIERS[dataset].classes
    _, probs = classify(torch.from_numpy(images), dataset)
    shown = sorted(set(probs.argmax(1).tolist()))
    expected = [cfg.data.digit] if cfg.data.digit is not None else list(range(len(classes)))
    missing = [classes[c] for c in expected if c not in shown]
    line = f"final_grid.png (seed {COURSE_SEED}) shows {', '.join(classes[c] for c in shown)}"
    if missing:
        return f"{line}; missing: {', '.join(missing)}"
    return line + (": the target class" if len(expected) == 1 else f": all {len(expected)} classes")
