"""What a report is made of: the runs found under the given folders, each with its config, log,
metrics and pictures, and the sweeps they belong to."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..config import Config, flat_fields, load_config
from ..errors import MnistganError
from ..models import default_of
from ..rundir import read_log, run_state
from ..sweepdir import SweepSpec, format_value, load_spec

# settings that change how a run is executed or logged, not what is learned: never "varied"
PLUMBING = {
    "device",
    "log_every",
    "checkpoint_every",
    "keep_checkpoints",
    "sample_epochs",
    "sample_every",
    "data_dir",
    "seed",
    "eval_every",
    "eval_samples",
    "tensorboard",
    "deterministic",
}


@dataclass
class Run:
    path: Path
    name: str
    cfg: Config
    flat: dict[str, Any]  # config field -> value
    log: list[dict]
    metrics: Optional[dict]  # metrics.json
    error: Optional[str]  # error.json of a sweep run that diverged
    state: str  # rundir.run_state: new | started | unfinished | failed | trained | evaluated
    sweep: Optional[Path] = None
    extra: dict = field(default_factory=dict)

    @property
    def samples(self) -> dict:
        return (self.metrics or {}).get("samples") or {}

    @property
    def fid(self) -> Optional[float]:
        v = self.samples.get("fid")
        return float(v) if v is not None else None

    def file(self, rel: str) -> Optional[Path]:
        p = self.path / rel
        return p if p.is_file() else None

    def epochs_done(self) -> int:
        done = [r["epoch"] - (1 if r.get("partial") else 0) for r in self.log if r.get("kind") == "epoch"]
        return max(done, default=0)


@dataclass
class Sweep:
    path: Path
    spec: SweepSpec


def flat_config(cfg: Config) -> dict[str, Any]:
    return {name: getattr(getattr(cfg, sec), name) for name, (sec, _, _) in flat_fields().items()}


def load_run(path: Path, sweep: Optional[Path] = None) -> Run:
    cfg = load_config(path / "config.json")
    metrics = error = None
    if (path / "metrics.json").is_file():
        try:
            metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise MnistganError(
                f"{path / 'metrics.json'} is corrupt; re-run mnistgan evaluate --generator {path}"
            ) from None
    if (path / "error.json").is_file():
        try:
            error = json.loads((path / "error.json").read_text(encoding="utf-8")).get("error", "failed")
        except (OSError, ValueError):
            error = "failed (error.json unreadable)"
    return Run(
        path=path,
        name=path.name,
        cfg=cfg,
        flat=flat_config(cfg),
        log=read_log(path / "log.jsonl"),
        metrics=metrics,
        error=error,
        state=run_state(path),
        sweep=sweep,
    )


def collect(paths: list[str | Path]) -> tuple[list[Run], list[Sweep]]:
    """Runs and sweeps under `paths`: a run folder (config.json), a sweep folder (sweep.json) or a
    folder of run folders (e.g. runs/). Each run appears once; names are made unique."""
    if not paths:
        raise MnistganError("give at least one run or sweep folder")
    runs: list[Run] = []
    sweeps: list[Sweep] = []
    seen: set[Path] = set()

    def add(p: Path, sweep: Optional[Path] = None) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            runs.append(load_run(p, sweep))

    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise MnistganError(f"{p} not found; give run folders (runs/00000-...) or sweep folders")
        if (p / "sweep.json").is_file():
            spec = load_spec(p)
            sweeps.append(Sweep(p, spec))
            for name, _ in spec.runs():
                if (p / name / "config.json").is_file():
                    add(p / name, p)
        elif (p / "config.json").is_file():
            add(p)
        elif p.is_dir() and (children := sorted(c for c in p.iterdir() if (c / "config.json").is_file())):
            for c in children:
                add(c)
        else:
            raise MnistganError(
                f"{p} is neither a run folder (config.json) nor a sweep folder (sweep.json), "
                "nor a folder of runs"
            )
    if not runs:
        raise MnistganError(
            f"no runs found in {', '.join(map(str, paths))} (a sweep that has not started yet?)"
        )
    names = [r.name for r in runs]
    for r in runs:
        if names.count(r.name) > 1:
            r.name = f"{r.path.parent.name}/{r.name}"
    return runs, sweeps


def varied_fields(runs: list[Run]) -> list[str]:
    """Config fields whose value differs between runs (in config order), seeds and plumbing excluded."""
    out = []
    for name in flat_fields():
        if name in PLUMBING:
            continue
        if len({repr(r.flat[name]) for r in runs}) > 1:
            out.append(name)
    return out


def ranked(runs: list[Run]) -> list[Run]:
    """Evaluated runs, best (lowest) FID first."""
    return sorted((r for r in runs if r.fid is not None), key=lambda r: r.fid)


def help_text(name: str) -> str:
    return flat_fields()[name][1].metadata.get("help", "")


def setting_text(flat: dict, name: str) -> str:
    """A run's setting as the report shows it; a width or depth left to the model family's default
    reads as that number ("64 (default)"), not "none"."""
    value = flat[name]
    if value is None and name in ("g_width", "d_width", "g_depth", "d_depth"):
        default = default_of(flat.get("model"), name)
        if default is not None:
            return f"{default} (default)"
    return value_text(value)


def value_text(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if value == "":
        return "(off)"
    return format_value(value)
