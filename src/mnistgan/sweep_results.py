"""A sweep's results, read from its run folders: runs.csv (one row per run) and results.csv /
results.md (one row per combination: mean ± sample standard deviation over its seeds)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Optional

from .files import write_text
from .sweep import SweepSpec, format_value, run_state

# (metrics.json key, column title, which way is better)
METRICS = [("fid", "FID", "lower"), ("inception_score", "IS", "higher"), ("classes_covered", "digits", "higher"),
           ("kl_to_uniform", "KL to uniform", "lower"), ("confident_share", "confident", "higher"),
           ("precision", "precision", "higher"), ("recall", "recall", "higher"),
           ("density", "density", "higher"), ("coverage", "coverage", "higher")]
TRAINING = ["epochs_done", "images_seen", "loss_d", "loss_g", "d_acc"]  # from the last epoch line of log.jsonl
SHOWN_IN_MD = ["fid", "inception_score", "classes_covered", "precision", "recall", "coverage"]


def last_epoch(run_dir: Path) -> dict:
    """The last epoch line of log.jsonl as {epochs_done, images_seen, loss_d, loss_g, d_acc} ({} if none)."""
    from .plots import read_log

    rows = [r for r in read_log(run_dir / "log.jsonl") if r.get("kind") == "epoch"]
    if not rows:
        return {}
    r = rows[-1]
    done = r["epoch"] - (1 if r.get("partial") else 0)
    return {"epochs_done": done, "images_seen": r.get("images"), "loss_d": r.get("loss_d"),
            "loss_g": r.get("loss_g"), "d_acc": r.get("d_acc")}


def run_rows(sweep_dir: Path, spec: SweepSpec) -> list[dict]:
    """One dict per run: run, the grid values, seed, state, every metric (None until evaluated), training stats."""
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
        row.update({"runs": len(members), "evaluated": len(done),
                    "failed": sum(r["state"] == "failed" for r in members)})
        for key, _, _ in METRICS + [(k, k, "") for k in ("loss_d", "loss_g", "d_acc")]:
            m, s = mean_std([float(r[key]) for r in done if r[key] is not None])
            row[f"{key}_mean"], row[f"{key}_std"] = m, s
        out.append(row)
    out.sort(key=lambda r: (r["fid_mean"] is None, r["fid_mean"] if r["fid_mean"] is not None else 0.0))
    return out


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


def pm(mean: Optional[float], std: Optional[float]) -> str:
    """'45.2 ± 1.3', '0.523 ± 0.012': one to three decimals, fewer for larger numbers; '' without a value."""
    if mean is None:
        return ""
    whole = len(str(int(abs(mean)))) if abs(mean) >= 1 else 0
    d = min(3, max(1, 3 - whole))
    return f"{mean:.{d}f}" if std is None else f"{mean:.{d}f} ± {std:.{d}f}"


def to_markdown(spec: SweepSpec, combos: list[dict], summary: dict) -> str:
    titles = {key: title for key, title, _ in METRICS}
    arrows = {key: " ↓" if better == "lower" else " ↑" for key, _, better in METRICS}
    head = ["#"] + list(spec.grid) + ["seeds done"] + [titles[k] + arrows[k] for k in SHOWN_IN_MD]
    lines = [f"# Sweep results ({summary['evaluated']}/{summary['total']} runs evaluated"
             f"{', %d failed' % summary['failed'] if summary['failed'] else ''})", "",
             f"Each row is one combination of the grid over seeds {', '.join(map(str, spec.seeds))}: mean ± sample "
             f"standard deviation (n - 1) over its evaluated seeds, {spec.eval_n} samples scored per run. "
             "Best FID first.", "",
             "| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
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
    summary = {"total": len(runs), "evaluated": states.count("evaluated"), "failed": states.count("failed"),
               "pending": len(runs) - states.count("evaluated") - states.count("failed"), "best": best}
    keys = list(spec.grid)
    metric_keys = [k for k, _, _ in METRICS]
    write_text(sweep_dir / "runs.csv", to_csv(runs, ["run"] + keys + ["seed", "state"] + metric_keys + TRAINING))
    stats = [f"{k}_{s}" for k in metric_keys + ["loss_d", "loss_g", "d_acc"] for s in ("mean", "std")]
    write_text(sweep_dir / "results.csv", to_csv(combos, keys + ["runs", "evaluated", "failed"] + stats))
    write_text(sweep_dir / "results.md", to_markdown(spec, combos, summary))
    return summary
