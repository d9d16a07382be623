"""The run-folder contract: what a training run writes where, and how readers find it.

    runs/<NNNNN>-<dataset>-<model>-<loss>/
      config.json      the resolved config (replayable)       log.jsonl   one JSON row per tick/epoch/eval
      real_samples.png samples/epoch_NNN.png progress.gif losses.png final_grid.png comparison.png
      final_generated_images/NNN.png                          metrics.json  when evaluated
      generator/       config.json + model.safetensors (the saved generator, generator.format)
      checkpoints/     last.pt, epoch_NNN.pt (training.state)  error.json  a sweep run that diverged
      model_source/    a copy of the file defining your own G and D (--model FILE.py:G,D)
      architecture.json  their layer tables (the report reads it instead of running their code)

Training writes it (training.outputs); the generator, evaluator, sweep and report read it
through the functions here, so the layout is stated once.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Optional

from .config import Config, custom_model_spec
from .errors import MnistganError

RUN_MARKERS = ("config.json", "log.jsonl", "checkpoints")  # any of these: a folder holds a run
GENERATOR = "generator"  # the saved generator's folder inside a run
GENERATOR_FILES = ("config.json", "model.safetensors")
MODEL_SOURCE = "model_source"  # a copy of your own model's Python file (--model FILE.py:G,D)
ARCHITECTURE = "architecture.json"  # your own G's and D's layer tables, for the report
IMAGES_CACHE = ".images-cache"  # beside the run folders: --images folders decoded once (userdata.py)


def holds_run(directory: Path) -> bool:
    return any((directory / m).exists() for m in RUN_MARKERS)


def model_name(model: str) -> str:
    """The model as a run folder names it: the family, or your own file's (module's) name."""
    spec = custom_model_spec(model)
    if spec is None:
        return model
    return Path(spec[0]).stem if spec[0].endswith(".py") else spec[0].rsplit(".", 1)[-1]


def default_name(cfg: Config) -> str:
    """<dataset>[-digitD]-<model>-<loss>: the part of a new run's folder name after its number."""
    digit = f"-digit{cfg.data.digit}" if cfg.data.digit is not None else ""
    data = Path(cfg.data.images).stem if cfg.data.images else cfg.data.dataset  # --images: the folder's name
    return f"{data}{digit}-{model_name(cfg.model.model)}-{cfg.loss.loss}"


def model_source(run_dir: str | Path, model: str) -> Optional[Path]:
    """Where a run keeps the copy of your own model's Python file (--model FILE.py:G,D), or None."""
    spec = custom_model_spec(model)
    if spec is None:
        return None
    return Path(run_dir) / MODEL_SOURCE / (Path(spec[0]).name if spec[0].endswith(".py") else f"{spec[0]}.py")


def check_run_dir(run_dir: str | Path) -> Path:
    """A --run-dir for a new run: a new or empty folder, or one without a run in it."""
    d = Path(run_dir)
    if d.exists() and not d.is_dir():
        raise MnistganError(f"--run-dir {d} is a file; choose a folder")
    if d.is_dir() and holds_run(d):
        raise MnistganError(
            f"{d} already holds a run; continue it with --resume {d} or choose another --run-dir"
        )
    return d


def new_run_dir(cfg: Config, out_dir: str | Path = "runs", run_dir: Optional[str | Path] = None) -> Path:
    """Create runs/<NNNNN>-<dataset>-<model>-<loss>/ (or the given --run-dir) for a new run."""
    if run_dir is not None:
        d = check_run_dir(run_dir)
    else:
        root = Path(out_dir)
        if root.exists() and not root.is_dir():
            raise MnistganError(f"--out-dir {root} is a file; choose a folder")
        taken = [
            int(m.group(1))
            for p in (root.iterdir() if root.is_dir() else [])
            if (m := re.match(r"(\d{5})-", p.name))
        ]
        d = root / f"{max(taken, default=-1) + 1:05d}-{default_name(cfg)}"
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MnistganError(
            f"cannot create run folder {d}: {e.strerror}; choose a writable --out-dir"
        ) from None
    return d


def read_log(path: str | os.PathLike) -> list[dict]:
    """The rows of a log.jsonl; a torn last line (crash mid-write) is skipped."""
    rows = []
    p = Path(path)
    if not p.is_file():
        return rows
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def run_state(run_dir: Path) -> str:
    """new | started (no checkpoint yet) | unfinished | failed | trained | evaluated, from the folder
    alone."""
    if not (run_dir / "config.json").is_file() and not (run_dir / "checkpoints").is_dir():
        return "new"
    if (run_dir / "error.json").is_file():
        return "failed"
    # a finished run writes its generator first and losses.png near the end: both exist only after it
    if (run_dir / GENERATOR / "model.safetensors").is_file() and (run_dir / "losses.png").is_file():
        return "evaluated" if (run_dir / "metrics.json").is_file() else "trained"
    if any((run_dir / "checkpoints").glob("*.pt")):
        return "unfinished"
    return "started"


def generator_dir(path: str | os.PathLike) -> Path:
    """The generator folder meant by `path`: the folder itself, one of its files, or a run folder."""
    d = Path(path)
    if d.is_file() and d.name in GENERATOR_FILES:
        d = d.parent
    if (d / GENERATOR / "model.safetensors").is_file() and not (d / "model.safetensors").is_file():
        d = d / GENERATOR  # a run folder was given
    return d


def run_dir_of(generator: str | os.PathLike) -> Optional[Path]:
    """The run folder holding this generator (the parent of generator/), or None."""
    p = Path(generator)
    if p.is_file():
        p = p.parent
    if (p / GENERATOR / "model.safetensors").is_file():
        return p
    if p.name == GENERATOR and (p.parent / "config.json").is_file():
        return p.parent
    return None
