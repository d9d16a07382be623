"""One run of a sweep: train (or resume) its run folder and evaluate it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

from ..errors import Diverged
from ..evaluator import evaluate
from ..files import write_json
from ..rundir import run_state
from ..sweepdir import SweepSpec, run_name
from ..training import run_training


def run_one(
    sweep_dir: Path,
    spec: SweepSpec,
    params: dict[str, Any],
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Train (or resume) and evaluate one run of the sweep; returns its metrics.json content.

    Raises Diverged after writing <run>/error.json (the run is then done, as a failure).
    """
    run_dir = Path(sweep_dir) / run_name(params)
    state = run_state(run_dir)
    if state == "failed":
        raise Diverged(
            json.loads((run_dir / "error.json").read_text(encoding="utf-8")).get("error", "failed")
        )
    if state == "started":  # killed before its first checkpoint: less than one epoch lost, start again
        shutil.rmtree(run_dir)
        state = "new"
    cfg = spec.config_for(params)
    if state in ("new", "unfinished"):
        try:
            run_training(
                cfg,
                run_dir=run_dir if state == "new" else None,
                resume=run_dir if state == "unfinished" else None,
                progress=progress,
                log=log,
            )
        except Diverged as e:
            write_json(run_dir / "error.json", {"error": str(e), "kind": "diverged"})
            raise
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file():
        return json.loads(metrics_file.read_text(encoding="utf-8"))
    return evaluate(generator=run_dir / "generator", n=spec.eval_n, device=cfg.train.device)
