"""Architecture tables for a report: every layer of G and D with its output shape and parameters,
found by running the real models once on a dummy batch (so the table cannot drift from the code)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import torch

from ..config import ModelConfig, custom_model_spec
from ..errors import MnistganError
from ..models import build_discriminator, build_generator
from ..models.layers import n_labels
from ..models.summary import model_tables as summary_tables
from ..rundir import ARCHITECTURE
from .data import Run


def model_tables(mc: ModelConfig, run_dir: Optional[Path] = None) -> dict[str, Any]:
    """{"G": rows, "D": rows, "G_params": n, "D_params": n} for one model config. Your own G and D
    (--model FILE.py:G,D) are described by the run's architecture.json, written while it trained:
    the report never runs their code."""
    if custom_model_spec(mc.model):
        path = Path(run_dir or ".") / ARCHITECTURE
        try:
            tables = json.loads(path.read_text(encoding="utf-8"))
            return {**tables, "G": [tuple(r) for r in tables["G"]], "D": [tuple(r) for r in tables["D"]]}
        except (OSError, ValueError, KeyError, TypeError):
            raise MnistganError(
                f"{path} is missing or unreadable: the report describes your own G and D from "
                "it (written when the run started)"
            ) from None
    torch.manual_seed(0)
    G, D = build_generator(mc), build_discriminator(mc)
    # a cluster G (--clusters) reads its cluster off z; its D needs labels
    return summary_tables(
        G, D, mc.z_dim, labels=mc.conditional, d_labels=bool(n_labels(mc)), channels=mc.channels
    )


def architectures(runs: list[Run]) -> list[dict[str, Any]]:
    """The distinct generators and discriminators among the runs:
    [{"net": "G" | "D", "model": family, "rows": [...], "params": n, "runs": [names]}]."""
    found: dict[tuple, dict[str, Any]] = {}
    cache: dict[str, dict] = {}
    for r in runs:
        key = repr(r.cfg.model) + (str(r.path) if custom_model_spec(r.cfg.model.model) else "")
        if key not in cache:
            cache[key] = model_tables(r.cfg.model, r.path)
        t = cache[key]
        for net in ("G", "D"):
            ident = (net, tuple(t[net]))
            entry = found.setdefault(
                ident,
                {
                    "net": net,
                    "model": r.cfg.model.model,
                    "rows": t[net],
                    "params": t[f"{net}_params"],
                    "runs": [],
                },
            )
            entry["runs"].append(r.name)
    return sorted(found.values(), key=lambda e: (e["net"] != "G", e["model"], e["params"]))
