"""Hyperparameter sweeps: a grid of settings x seeds, each combination a normal run directory.

    mnistgan sweep --grid lr=1e-4,2e-4 batch_size=64,128 --seeds 3 --epochs 5

The sweep directory holds sweep.json (the grid, the seeds, the fixed settings, the storage URL),
one run folder per (combination, seed) named by its values (`lr=0.0001,batch_size=64,seed=0`),
results.csv / results.md (mean ± std over seeds, sweep_results.py) and optuna.db, the shared work
queue (sweep_queue.py). What is done is read from the run folders themselves: a trained and
evaluated run is skipped, an unfinished one is resumed from its checkpoint, so re-invoking the
same command finishes an interrupted sweep.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from .config import Config, flat_fields, coerce, to_dict, validate, with_overrides
from .errors import MnistganError
from .files import write_json

SWEEP_FORMAT = "mnistgan-sweep"
DEFAULT_EVAL_N = 5000  # samples scored per run (FID etc.); the evaluator's own default is 10,000
NOT_SWEEPABLE = {"seed": "use --seeds N (or --seeds 0,5,9) for seeds",
                 "sample_epochs": "set it once with --sample-epochs"}


# ----------------------------------------------------------------------------- the grid

def parse_grid(specs: list[str]) -> dict[str, list]:
    """["lr=1e-4,2e-4", "model=mlp,dcgan"] -> {"lr": [0.0001, 0.0002], "model": ["mlp", "dcgan"]}.

    Keys are config field names (dashes allowed); values are parsed with the field's type.
    """
    flat = flat_fields()
    grid: dict[str, list] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key or not values.strip(","):
            raise MnistganError(f"grid entry '{spec}' must look like KEY=V1,V2 (e.g. lr=1e-4,2e-4)")
        if key not in flat:
            raise MnistganError(f"grid: unknown setting '{key}'; see `mnistgan train --help` for the list")
        if key in NOT_SWEEPABLE:
            raise MnistganError(f"grid: {key} cannot be swept this way; {NOT_SWEEPABLE[key]}")
        if key in grid:
            raise MnistganError(f"grid: {key} is given twice; list all its values once ({key}=A,B,C)")
        typ = flat[key][2]
        try:
            parsed = [coerce(key, v.strip(), typ) for v in values.split(",") if v.strip()]
        except MnistganError as e:
            raise MnistganError(f"grid: {e}") from None
        if len(set(map(repr, parsed))) != len(parsed):
            raise MnistganError(f"grid: {key} lists a value twice ({values})")
        grid[key] = parsed
    return grid


def parse_seeds(text: str | int | list) -> list[int]:
    """'3' -> [0, 1, 2]; '0,5,9' -> [0, 5, 9]."""
    if isinstance(text, int):
        text = str(text)
    if isinstance(text, list):
        text = ",".join(map(str, text))
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise MnistganError(f"--seeds must be a count (3) or a list of integers (0,5,9), got '{text}'") from None
    if len(values) == 1 and "," not in str(text):
        if values[0] <= 0:
            raise MnistganError(f"--seeds must be at least 1, got {values[0]}")
        return list(range(values[0]))
    if not values or len(set(values)) != len(values) or min(values) < 0:
        raise MnistganError(f"--seeds: give distinct non-negative integers, got '{text}'")
    return values


def format_value(value: Any) -> str:
    """A value as it appears in run names: 0.0001, 64, mlp, none, true; no path separators."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, (list, tuple)):
        return ",".join(map(format_value, value))
    return str(value).replace(os.sep, "_").replace("/", "_") or "empty"


def run_name(params: dict[str, Any]) -> str:
    """The run folder of one (combination, seed): 'lr=0.0001,model=mlp,seed=0' (grid order, seed last)."""
    name = ",".join(f"{k}={format_value(v)}" for k, v in params.items())
    if len(name) > 180:  # file systems allow 255 bytes; keep the start readable and make it unique
        name = f"{name[:160]}~{hashlib.sha1(name.encode()).hexdigest()[:10]}"
    return name


# ----------------------------------------------------------------------------- sweep.json

@dataclass
class SweepSpec:
    """What a sweep runs: every combination of `grid` for every seed, on top of the `base` settings."""

    grid: dict[str, list]
    seeds: list[int]
    base: dict[str, Any] = field(default_factory=dict)  # flat config overrides shared by every run
    eval_n: int = DEFAULT_EVAL_N
    storage: Optional[str] = None  # Optuna storage URL; None = sqlite:///<sweep_dir>/optuna.db

    def key(self) -> str:
        """A short hash of what is run (not of where the queue lives): names the default folder and study."""
        what = json.dumps({"grid": self.grid, "seeds": self.seeds, "base": self.base, "eval_n": self.eval_n},
                          sort_keys=True)
        return hashlib.sha1(what.encode()).hexdigest()[:8]

    def study_name(self) -> str:
        return f"mnistgan-sweep-{self.key()}"

    def runs(self) -> list[tuple[str, dict[str, Any]]]:
        """[(run folder name, {grid key: value, ..., "seed": s})] in grid order, seeds innermost."""
        keys = list(self.grid)
        out = []
        for combo in itertools.product(*(self.grid[k] for k in keys)):
            for seed in self.seeds:
                params = {**dict(zip(keys, combo)), "seed": seed}
                out.append((run_name(params), params))
        return out

    def config_for(self, params: dict[str, Any]) -> Config:
        return validate(with_overrides(with_overrides(Config(), self.base), params))

    def to_json(self) -> dict:
        return {"format": SWEEP_FORMAT, "version": 1, "grid": self.grid, "seeds": self.seeds,
                "base": self.base, "eval_n": self.eval_n, "storage": self.storage}

    @classmethod
    def from_json(cls, raw: Any, source: str) -> "SweepSpec":
        if not isinstance(raw, dict) or raw.get("format") != SWEEP_FORMAT:
            raise MnistganError(f"{source} is not an mnistgan sweep.json")
        try:
            spec = cls(grid={k: list(v) for k, v in raw["grid"].items()}, seeds=[int(s) for s in raw["seeds"]],
                       base=dict(raw.get("base") or {}), eval_n=int(raw.get("eval_n", DEFAULT_EVAL_N)),
                       storage=raw.get("storage"))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise MnistganError(f"{source} is corrupt ({type(e).__name__}: {e}); recreate the sweep") from None
        spec.check()
        return spec

    def check(self) -> "SweepSpec":
        """Validate every run's config before anything is trained (one bad value fails the sweep now)."""
        if self.eval_n <= 0:
            raise MnistganError(f"--eval-n must be positive, got {self.eval_n}")
        if "seed" in self.base:
            raise MnistganError("a sweep sets the seed of each run; use --seeds instead of --seed")
        if not self.seeds:
            raise MnistganError("a sweep needs at least one seed")
        for _, params in self.runs():
            try:
                self.config_for(params)
            except MnistganError as e:
                shown = ", ".join(f"{k}={format_value(v)}" for k, v in params.items() if k != "seed")
                raise MnistganError(f"grid combination {shown or '(base settings)'}: {e}") from None
        return self


def json_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """Flat overrides as JSON values (tuples become lists), checked against the config."""
    flat = to_dict(with_overrides(Config(), overrides))  # coerced; validated per combination in check()
    by_name = {name: flat[sec][name] for name, (sec, _, _) in flat_fields().items()}
    return {k.replace("-", "_"): by_name[k.replace("-", "_")] for k in overrides}


def write_spec(sweep_dir: Path, spec: SweepSpec) -> None:
    """Create sweep.json, or check that an existing one describes the same sweep."""
    path = sweep_dir / "sweep.json"
    if path.is_file():
        old = load_spec(sweep_dir)
        if old.key() != spec.key():
            raise MnistganError(f"{sweep_dir} holds a different sweep (grid {old.grid}, seeds {old.seeds}); "
                                f"choose another --sweep-dir, or continue that one with --join {sweep_dir}")
        if spec.storage is not None and spec.storage != old.storage:
            write_json(path, spec.to_json())  # the same work, a new queue location: remember it
        return
    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise MnistganError(f"--sweep-dir {sweep_dir} is a file; choose a folder")
    write_json(path, spec.to_json())


def load_spec(sweep_dir: Path) -> SweepSpec:
    path = Path(sweep_dir) / "sweep.json"
    if not path.is_file():
        raise MnistganError(f"{sweep_dir} is not a sweep folder (no sweep.json); start one with mnistgan sweep --grid ...")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MnistganError(f"cannot read {path} ({type(e).__name__}); recreate the sweep") from None
    return SweepSpec.from_json(raw, str(path))


# ----------------------------------------------------------------------------- one run

def run_state(run_dir: Path) -> str:
    """new | started (no checkpoint yet) | unfinished | failed | trained | evaluated, from the folder alone."""
    if not (run_dir / "config.json").is_file() and not (run_dir / "checkpoints").is_dir():
        return "new"
    if (run_dir / "error.json").is_file():
        return "failed"
    # write_finish writes the export first and losses.png near the end: both exist only after a finished run
    if (run_dir / "generator" / "model.safetensors").is_file() and (run_dir / "losses.png").is_file():
        return "evaluated" if (run_dir / "metrics.json").is_file() else "trained"
    if any((run_dir / "checkpoints").glob("*.pt")):
        return "unfinished"
    return "started"


def run_one(sweep_dir: Path, spec: SweepSpec, params: dict[str, Any], progress: bool = False,
            log: Callable[[str], None] = print) -> dict:
    """Train (or resume) and evaluate one run of the sweep; returns its metrics.json content.

    Raises train.Diverged after writing <run>/error.json (the run is then done, as a failure).
    """
    from .train import Diverged, train

    run_dir = Path(sweep_dir) / run_name(params)
    state = run_state(run_dir)
    if state == "failed":
        raise Diverged(json.loads((run_dir / "error.json").read_text(encoding="utf-8")).get("error", "failed"))
    if state == "started":  # killed before its first checkpoint: less than one epoch lost, start again
        shutil.rmtree(run_dir)
        state = "new"
    cfg = spec.config_for(params)
    if state in ("new", "unfinished"):
        try:
            train(cfg, run_dir=run_dir if state == "new" else None, resume=run_dir if state == "unfinished" else None,
                  progress=progress, log=log)
        except Diverged as e:
            write_json(run_dir / "error.json", {"error": str(e), "kind": "diverged"})
            raise
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file():
        return json.loads(metrics_file.read_text(encoding="utf-8"))
    from .evaluate.api import evaluate

    return evaluate(generator=run_dir / "generator", n=spec.eval_n, device=cfg.train.device)


# ----------------------------------------------------------------------------- entry points

def default_sweep_dir(spec: SweepSpec, root: str | Path = "sweeps") -> Path:
    """sweeps/sweep-<hash of the grid, seeds and settings>: the same command finds the same folder again."""
    return Path(root) / f"sweep-{spec.key()}"


def sweep(grid: dict[str, list] | list[str], seeds: int | str | list = 1, sweep_dir: Optional[str | Path] = None,
          base: Optional[dict[str, Any]] = None, storage: Optional[str] = None, workers: int = 1,
          eval_n: int = DEFAULT_EVAL_N, progress: bool = False, log: Callable[[str], None] = print) -> Path:
    """Run (or continue) a sweep; returns its folder, which holds results.csv and results.md.

    grid: {"lr": [1e-4, 2e-4]} or ["lr=1e-4,2e-4", ...]; base: flat settings for every run
    (`{"epochs": 5}`); workers: local processes taking runs from the queue (this one included).
    """
    from .sweep_queue import work

    if isinstance(grid, (list, tuple)):
        grid = parse_grid(list(grid))
    else:
        grid = parse_grid([f"{k}={','.join(map(format_value, v))}" for k, v in grid.items()]) if grid else {}
    from .sweep_queue import _without_password

    spec = SweepSpec(grid=grid, seeds=parse_seeds(seeds), base=json_overrides(base or {}), eval_n=eval_n,
                     storage=_without_password(storage) if storage else None).check()
    if workers < 1:
        raise MnistganError(f"--workers must be at least 1, got {workers}")
    folder = Path(sweep_dir) if sweep_dir is not None else default_sweep_dir(spec)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MnistganError(f"cannot create sweep folder {folder}: {e.strerror}") from None
    write_spec(folder, spec)
    log(f"Sweep {folder}: {len(spec.runs())} runs ({len(spec.runs()) // len(spec.seeds)} combinations "
        f"x {len(spec.seeds)} seeds)")
    work(folder, load_spec(folder), storage, workers=workers, progress=progress, log=log)
    return folder


def join(sweep_dir: str | Path, storage: Optional[str] = None, progress: bool = False,
         log: Callable[[str], None] = print) -> Path:
    """Work on an existing sweep (another terminal or machine sharing the folder and the storage)."""
    from .sweep_queue import work

    folder = Path(sweep_dir)
    work(folder, load_spec(folder), storage, workers=1, progress=progress, log=log)
    return folder
