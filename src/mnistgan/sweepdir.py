"""The sweep-folder contract: sweep.json (what a sweep runs), the name of each run folder in it,
and its results read back from those run folders (per run, and mean ± std per combination).

    sweeps/sweep-<hash>/
      sweep.json                 the grid, the seeds, the fixed settings, the storage URL
      <key=value,...,seed=S>/    one normal run folder per (combination, seed) (rundir.py)
      runs.csv results.csv results.md   written by the sweep (sweep.results)
      optuna.db                  the work queue (sweep.queue)

The sweep engine (sweep/) writes it; the report reads it through the functions here.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .config import Config, validate, with_overrides
from .errors import MnistganError
from .files import write_json
from .rundir import read_log, run_state

SWEEP_FORMAT = "mnistgan-sweep"

DEFAULT_EVAL_N = 5000  # samples scored per run (FID etc.); the evaluator's own default is 10,000


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
        what = json.dumps(
            {"grid": self.grid, "seeds": self.seeds, "base": self.base, "eval_n": self.eval_n}, sort_keys=True
        )
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
        return {
            "format": SWEEP_FORMAT,
            "version": 1,
            "grid": self.grid,
            "seeds": self.seeds,
            "base": self.base,
            "eval_n": self.eval_n,
            "storage": self.storage,
        }

    @classmethod
    def from_json(cls, raw: Any, source: str) -> "SweepSpec":
        if not isinstance(raw, dict) or raw.get("format") != SWEEP_FORMAT:
            raise MnistganError(f"{source} is not an mnistgan sweep.json")
        try:
            spec = cls(
                grid={k: list(v) for k, v in raw["grid"].items()},
                seeds=[int(s) for s in raw["seeds"]],
                base=dict(raw.get("base") or {}),
                eval_n=int(raw.get("eval_n", DEFAULT_EVAL_N)),
                storage=raw.get("storage"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise MnistganError(
                f"{source} is corrupt ({type(e).__name__}: {e}); recreate the sweep"
            ) from None
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


def write_spec(sweep_dir: Path, spec: SweepSpec) -> None:
    """Create sweep.json, or check that an existing one describes the same sweep."""
    path = sweep_dir / "sweep.json"
    if path.is_file():
        old = load_spec(sweep_dir)
        if old.key() != spec.key():
            raise MnistganError(
                f"{sweep_dir} holds a different sweep (grid {old.grid}, seeds {old.seeds}); "
                f"choose another --sweep-dir, or continue that one with --join {sweep_dir}"
            )
        if spec.storage is not None and spec.storage != old.storage:
            write_json(path, spec.to_json())  # the same work, a new queue location: remember it
        return
    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise MnistganError(f"--sweep-dir {sweep_dir} is a file; choose a folder")
    write_json(path, spec.to_json())


def load_spec(sweep_dir: Path) -> SweepSpec:
    path = Path(sweep_dir) / "sweep.json"
    if not path.is_file():
        raise MnistganError(
            f"{sweep_dir} is not a sweep folder (no sweep.json); start one with mnistgan sweep --grid ..."
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MnistganError(f"cannot read {path} ({type(e).__name__}); recreate the sweep") from None
    return SweepSpec.from_json(raw, str(path))


# ----------------------------------------------------------------------------- results of the runs

# (metrics.json key, column title, which way is better)
METRICS = [
    ("fid", "FID", "lower"),
    ("inception_score", "IS", "higher"),
    ("classes_covered", "digits", "higher"),
    ("kl_to_uniform", "KL to uniform", "lower"),
    ("confident_share", "confident", "higher"),
    ("precision", "precision", "higher"),
    ("recall", "recall", "higher"),
    ("density", "density", "higher"),
    ("coverage", "coverage", "higher"),
]

TRAINING = [
    "epochs_done",
    "images_seen",
    "loss_d",
    "loss_g",
    "d_acc",
]  # from the last epoch line of log.jsonl

SHOWN_IN_MD = ["fid", "inception_score", "classes_covered", "precision", "recall", "coverage"]


def last_epoch(run_dir: Path) -> dict:
    """The last epoch line of log.jsonl as {epochs_done, images_seen, loss_d, loss_g, d_acc} ({} if none)."""
    rows = [r for r in read_log(run_dir / "log.jsonl") if r.get("kind") == "epoch"]
    if not rows:
        return {}
    r = rows[-1]
    done = r["epoch"] - (1 if r.get("partial") else 0)
    return {
        "epochs_done": done,
        "images_seen": r.get("images"),
        "loss_d": r.get("loss_d"),
        "loss_g": r.get("loss_g"),
        "d_acc": r.get("d_acc"),
    }


def run_rows(sweep_dir: Path, spec: SweepSpec) -> list[dict]:
    """One dict per run: run, the grid values, seed, state, every metric (None until evaluated), and
    training stats."""
    rows = []
    for name, params in spec.runs():
        d = Path(sweep_dir) / name
        row: dict[str, Any] = {"run": name, **params, "state": run_state(d)}
        samples = {}
        if row["state"] == "evaluated":
            try:
                samples = json.loads((d / "metrics.json").read_text(encoding="utf-8"))["samples"]
            except (OSError, ValueError, KeyError):
                row["state"] = "trained"  # unreadable metrics: treated as not evaluated
        row.update({key: samples.get(key) for key, _, _ in METRICS})
        row.update({key: last_epoch(d).get(key) for key in TRAINING})
        rows.append(row)
    return rows


def mean_std(values: list[float]) -> tuple[Optional[float], Optional[float]]:
    """Mean and sample standard deviation (n - 1); std is None for fewer than two values."""
    if not values:
        return None, None
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, None
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def combination_rows(spec: SweepSpec, runs: list[dict]) -> list[dict]:
    """Group runs by their grid values: counts and {metric}_mean / {metric}_std, best FID first."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault(tuple(format_value(r[k]) for k in spec.grid), []).append(r)
    out = []
    for members in groups.values():
        done = [r for r in members if r["state"] == "evaluated"]
        row: dict[str, Any] = {k: members[0][k] for k in spec.grid}
        row.update(
            {
                "runs": len(members),
                "evaluated": len(done),
                "failed": sum(r["state"] == "failed" for r in members),
            }
        )
        for key, _, _ in METRICS + [(k, k, "") for k in ("loss_d", "loss_g", "d_acc")]:
            m, s = mean_std([float(r[key]) for r in done if r[key] is not None])
            row[f"{key}_mean"], row[f"{key}_std"] = m, s
        out.append(row)
    out.sort(key=lambda r: (r["fid_mean"] is None, r["fid_mean"] if r["fid_mean"] is not None else 0.0))
    return out


def pm(mean: Optional[float], std: Optional[float]) -> str:
    """'45.2 ± 1.3', '0.523 ± 0.012': one to three decimals, fewer for larger numbers; '' without a value."""
    if mean is None:
        return ""
    whole = len(str(int(abs(mean)))) if abs(mean) >= 1 else 0
    d = min(3, max(1, 3 - whole))
    return f"{mean:.{d}f}" if std is None else f"{mean:.{d}f} ± {std:.{d}f}"
