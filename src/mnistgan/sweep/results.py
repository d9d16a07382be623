"""A sweep's results files: runs.csv (one row per run), results.csv and results.md (one row per
combination: mean ± sample standard deviation over its seeds), computed by sweepdir."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from ..files import write_text
from ..sweepdir import METRICS, SHOWN_IN_MD, TRAINING, SweepSpec, combination_rows, format_value, pm, run_rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return format_value(value)


def to_csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in columns])
    return buf.getvalue()


def to_markdown(spec: SweepSpec, combos: list[dict], summary: dict) -> str:
    titles = {key: title for key, title, _ in METRICS}
    arrows = {key: " ↓" if better == "lower" else " ↑" for key, _, better in METRICS}
    head = ["#"] + list(spec.grid) + ["seeds done"] + [titles[k] + arrows[k] for k in SHOWN_IN_MD]
    lines = [
        f"# Sweep results ({summary['evaluated']}/{summary['total']} runs evaluated"
        f"{', %d failed' % summary['failed'] if summary['failed'] else ''})",
        "",
        f"Each row is one combination of the grid over seeds {', '.join(map(str, spec.seeds))}: "
        "mean ± sample "
        f"standard deviation (n - 1) over its evaluated seeds, {spec.eval_n} samples scored per run. "
        "Best FID first.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    for i, r in enumerate(combos, 1):
        done = f"{r['evaluated']}/{r['runs']}" + (f" ({r['failed']} failed)" if r["failed"] else "")
        cells = [str(i)] + [format_value(r[k]) for k in spec.grid] + [done]
        cells += [pm(r[f"{k}_mean"], r[f"{k}_std"]) for k in SHOWN_IN_MD]
        lines.append("| " + " | ".join(cells) + " |")
    if spec.base:
        lines += ["", "Fixed settings: " + ", ".join(f"{k}={format_value(v)}" for k, v in spec.base.items())]
    return "\n".join(lines) + "\n"


def write_results(sweep_dir: Path, spec: SweepSpec) -> dict:
    """Write runs.csv, results.csv and results.md; return counts and the best run."""
    runs = run_rows(sweep_dir, spec)
    combos = combination_rows(spec, runs)
    states = [r["state"] for r in runs]
    done = [r for r in runs if r["state"] == "evaluated"]
    best = min(done, key=lambda r: r["fid"])["run"] if done else None
    summary = {
        "total": len(runs),
        "evaluated": states.count("evaluated"),
        "failed": states.count("failed"),
        "pending": len(runs) - states.count("evaluated") - states.count("failed"),
        "best": best,
    }
    keys = list(spec.grid)
    metric_keys = [k for k, _, _ in METRICS]
    write_text(
        sweep_dir / "runs.csv", to_csv(runs, ["run"] + keys + ["seed", "state"] + metric_keys + TRAINING)
    )
    stats = [f"{k}_{s}" for k in metric_keys + ["loss_d", "loss_g", "d_acc"] for s in ("mean", "std")]
    write_text(sweep_dir / "results.csv", to_csv(combos, keys + ["runs", "evaluated", "failed"] + stats))
    write_text(sweep_dir / "results.md", to_markdown(spec, combos, summary))
    return summary
