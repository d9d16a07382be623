"""Hyperparameter sweeps: a grid of settings x seeds, each combination a normal run directory.

    mnistgan sweep --grid lr=1e-4,2e-4 batch_size=64,128 --seeds 3 --epochs 5

The sweep directory holds sweep.json (the grid, the seeds, the fixed settings, the storage URL),
one run folder per (combination, seed) named by its values (`lr=0.0001,batch_size=64,seed=0`),
results.csv / results.md (mean ± std over seeds, sweep.results) and optuna.db, the shared work
queue (sweep.queue). What is done is read from the run folders themselves: a trained and
evaluated run is skipped, an unfinished one is resumed from its checkpoint, so re-invoking the
same command finishes an interrupted sweep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from ..errors import MnistganError
from ..sweepdir import DEFAULT_EVAL_N, SweepSpec, format_value, load_spec, write_spec
from .queue import without_password, work
from .spec import json_overrides, parse_grid, parse_seeds


def default_sweep_dir(spec: SweepSpec, root: str | Path = "sweeps") -> Path:
    """sweeps/sweep-<hash of the grid, seeds and settings>: the same command finds the same folder again."""
    return Path(root) / f"sweep-{spec.key()}"


def sweep(
    grid: dict[str, list] | list[str],
    seeds: int | str | list = 1,
    sweep_dir: Optional[str | Path] = None,
    base: Optional[dict[str, Any]] = None,
    storage: Optional[str] = None,
    workers: int = 1,
    eval_n: int = DEFAULT_EVAL_N,
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> Path:
    """Run (or continue) a sweep; returns its folder, which holds results.csv and results.md.

    grid: {"lr": [1e-4, 2e-4]} or ["lr=1e-4,2e-4", ...]; base: flat settings for every run
    (`{"epochs": 5}`); workers: local processes taking runs from the queue (this one included).
    """
    if isinstance(grid, (list, tuple)):
        grid = parse_grid(list(grid))
    else:
        grid = parse_grid([f"{k}={','.join(map(format_value, v))}" for k, v in grid.items()]) if grid else {}
    spec = SweepSpec(
        grid=grid,
        seeds=parse_seeds(seeds),
        base=json_overrides(base or {}),
        eval_n=eval_n,
        storage=without_password(storage) if storage else None,
    ).check()
    if workers < 1:
        raise MnistganError(f"--workers must be at least 1, got {workers}")
    folder = Path(sweep_dir) if sweep_dir is not None else default_sweep_dir(spec)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MnistganError(f"cannot create sweep folder {folder}: {e.strerror}") from None
    write_spec(folder, spec)
    log(
        f"Sweep {folder}: {len(spec.runs())} runs ({len(spec.runs()) // len(spec.seeds)} combinations "
        f"x {len(spec.seeds)} seeds)"
    )
    work(folder, load_spec(folder), storage, workers=workers, progress=progress, log=log)
    return folder


def join(
    sweep_dir: str | Path,
    storage: Optional[str] = None,
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> Path:
    """Work on an existing sweep (another terminal or machine sharing the folder and the storage)."""
    folder = Path(sweep_dir)
    work(folder, load_spec(folder), storage, workers=1, progress=progress, log=log)
    return folder
