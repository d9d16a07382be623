"""The numbers behind a report's discussion: training phases and alarms read from log.jsonl,
the effect of each varied setting (paired runs that differ in that setting alone), the best run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .data import PLUMBING, Run, value_text

D_WINS_ACC = 0.90  # D accuracy at or above this, held for a while: D dominates G (G's gradients get small)
D_LOST_ACC = 0.20  # D accuracy at or below this, held: D no longer tells real from fake
SETTLED_TOL = 0.20  # a loss within ±20% of its final level counts as settled
STABILISERS = {  # config field -> (name, what it does); "active" rules are in active_stabilisers()
    "label_smoothing": (
        "one-sided label smoothing",
        "D's target for real images is 1 - s, so D is never fully confident",
    ),
    "instance_noise": (
        "instance noise",
        "Gaussian noise on D's inputs, annealed to 0; overlaps the real and fake distributions early on",
    ),
    "r1_weight": ("R1 penalty", "penalises the gradient of D on real images, keeping D smooth near the data"),
    "diffaug": ("DiffAugment", "the same differentiable augmentation on real and fake images seen by D"),
    "d_norm": ("spectral normalisation", "bounds each D layer's largest singular value: a Lipschitz D"),
    "ema_decay": ("EMA of G", "samples and export use an exponential moving average of G's weights"),
    "lr_d": ("TTUR", "separate learning rates for G and D (two time-scale update rule)"),
    "dropout": ("dropout in D", "randomly drops D's activations, so D cannot memorise the training images"),
    "clusters": (
        "cluster-conditioning",
        "G and D are conditioned on k-means clusters of the images (no labels); "
        "G reads its cluster off z, so it draws fewer in-between shapes",
    ),
}


def active_stabilisers(run: Run) -> dict[str, str]:
    """field -> its setting, for each stabiliser this run used."""
    f, out = run.flat, {}
    for key in ("label_smoothing", "instance_noise", "r1_weight", "dropout", "ema_decay"):
        if f[key]:
            out[key] = value_text(f[key])
    if f["diffaug"]:
        out["diffaug"] = f["diffaug"]
    if f.get("clusters"):
        out["clusters"] = f"{f['clusters']} k-means clusters"
    if f["d_norm"] == "spectral":
        out["d_norm"] = "spectral"
    lr_g, lr_d = run.cfg.optim.lr_of("g"), run.cfg.optim.lr_of("d")
    if lr_g != lr_d:
        out["lr_d"] = f"G {lr_g:g}, D {lr_d:g}"
    return out


# ----------------------------------------------------------------------------- phases and alarms


@dataclass
class Phases:
    x: np.ndarray  # epochs (fractional)
    loss_d: np.ndarray
    loss_g: np.ndarray
    d_acc: np.ndarray
    smooth_d: np.ndarray
    smooth_g: np.ndarray
    warmup_end: Optional[float] = None  # epoch at which both losses first reach their final level
    plateau_start: Optional[float] = None  # epoch from which both losses stay at their final level
    alarms: list[tuple[float, str]] = field(default_factory=list)  # (epoch, what)
    notes: list[str] = field(default_factory=list)  # sentences for the discussion


def smooth(y: np.ndarray, w: int) -> np.ndarray:
    """Centred moving average; the window shrinks at the ends so the curve keeps its length."""
    if w <= 1:
        return y.astype(float)
    c = np.concatenate([[0.0], np.cumsum(y, dtype=float)])
    idx = np.arange(len(y))
    lo, hi = np.maximum(idx - w // 2, 0), np.minimum(idx + w // 2 + 1, len(y))
    return (c[hi] - c[lo]) / (hi - lo)


def _runs_of(mask: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """(start, end) index pairs of stretches of True at least min_len long."""
    out, start = [], None
    for i, m in enumerate(list(mask) + [False]):
        if m and start is None:
            start = i
        elif not m and start is not None:
            if i - start >= min_len:
                out.append((start, i - 1))
            start = None
    return out


def find_phases(log: list[dict]) -> Optional[Phases]:
    """Warm-up, plateau and alarms from the tick lines of a log (epoch lines when there are no ticks)."""
    rows = [r for r in log if r.get("kind") == "tick"]
    if len(rows) < 6:
        rows = [r for r in log if r.get("kind") == "epoch" and not r.get("partial")]
    rows = [r for r in rows if all(np.isfinite(r.get(k, np.nan)) for k in ("loss_d", "loss_g", "d_acc"))]
    if len(rows) < 4:
        return None
    x = np.array([r.get("epoch_progress", r["epoch"]) for r in rows], dtype=float)
    ld, lg, acc = (np.array([r[k] for r in rows], dtype=float) for k in ("loss_d", "loss_g", "d_acc"))
    n = len(x)
    w = max(1, n // 10)
    p = Phases(x, ld, lg, acc, smooth(ld, w), smooth(lg, w))
    tail = slice(int(n * 0.7), n)
    final_d, final_g = np.median(p.smooth_d[tail]), np.median(p.smooth_g[tail])
    tol_d, tol_g = SETTLED_TOL * max(abs(final_d), 0.1), SETTLED_TOL * max(abs(final_g), 0.1)
    # distance from the final level in tolerances; the warm-up is the transient around its largest excursion
    dev = np.maximum(np.abs(p.smooth_d - final_d) / tol_d, np.abs(p.smooth_g - final_g) / tol_g)
    near = dev <= 1.0
    peak = int(np.argmax(dev[: max(1, int(n * 0.7))]))
    back = np.nonzero(near[peak:])[0]
    if dev[peak] > 1.0 and len(back):
        end = peak + int(back[0])
        p.warmup_end = float(x[end])
        p.notes.append(
            f"Warm-up (transient) until epoch {x[end]:.2f}: the largest excursion was at epoch {x[peak]:.2f} "
            f"(loss D {p.smooth_d[peak]:.2f}, loss G {p.smooth_g[peak]:.2f}, D accuracy {acc[peak]:.2f}); "
            f"the losses then reached their final level (D {final_d:.2f}, G {final_g:.2f})."
        )
    else:
        p.notes.append("No distinct warm-up: both losses stayed near their final level from the start.")
    settled_from = n
    while settled_from > 0 and near[settled_from - 1]:
        settled_from -= 1
    if settled_from < n and (x[-1] - x[settled_from]) >= 0.25 * (x[-1] - x[0]):
        p.plateau_start = float(x[settled_from])
        p.notes.append(
            f"Plateau from epoch {x[settled_from]:.2f} to the end: both losses stayed within "
            f"±{SETTLED_TOL:.0%} of their final level (D {final_d:.2f}, G {final_g:.2f})."
        )
    else:
        trend = (
            np.polyfit(x[tail], p.smooth_g[tail], 1)[0] * (x[-1] - x[tail][0]) if n - tail.start > 1 else 0.0
        )
        p.notes.append(
            f"No plateau yet: loss G still moved by {trend:+.2f} over the last 30% of training; "
            "more epochs would show whether it settles."
        )
    _alarms(p, max(3, n // 10))
    return p


def _alarms(p: Phases, min_len: int) -> None:
    acc = smooth(p.d_acc, max(1, len(p.x) // 10))
    for a, b in _runs_of(acc >= D_WINS_ACC, min_len)[:2]:
        end = (
            "and had not recovered by the end (divergence alarm)" if b == len(acc) - 1 else "then G recovered"
        )
        p.alarms.append(
            (
                float(p.x[a]),
                f"D dominated from epoch {p.x[a]:.2f} to {p.x[b]:.2f} (D accuracy ≥ "
                f"{D_WINS_ACC:.2f}, loss G up to {p.smooth_g[a : b + 1].max():.2f}): G's gradients "
                "got small, " + end,
            )
        )
    for a, b in _runs_of(acc <= D_LOST_ACC, min_len)[:2]:
        p.alarms.append(
            (
                float(p.x[a]),
                f"D is fooled from epoch {p.x[a]:.2f} to {p.x[b]:.2f} (D accuracy ≤ "
                f"{D_LOST_ACC:.2f}): G may be exploiting one weakness of D (collapse alarm)",
            )
        )
    start = int(np.searchsorted(p.x, p.warmup_end)) if p.warmup_end is not None else 0
    for name, y, s in (("loss D", p.loss_d, p.smooth_d), ("loss G", p.loss_g, p.smooth_g)):
        resid = (y - s)[start:]  # spikes stand out from the local trend, after the warm-up
        mad = np.median(np.abs(resid - np.median(resid))) if len(resid) else 0.0
        spikes = start + np.nonzero(resid > 8 * mad + 0.5)[0]
        if len(spikes):
            i = int(spikes[0])
            p.alarms.append(
                (
                    float(p.x[i]),
                    f"{name} spiked to {y[i]:.2f} at epoch {p.x[i]:.2f} "
                    f"(trend {s[i]:.2f}; {len(spikes)} such points)",
                )
            )
    p.alarms.sort()


def metric_alarms(run: Run) -> list[str]:
    """Collapse signs in the evaluator's numbers (digits missing, samples concentrated on few classes)."""
    s, out = run.samples, []
    if not s:
        return out
    expected = (
        1 if run.flat.get("digit") is not None else len((run.metrics or {}).get("classes") or range(10))
    )
    covered = s.get("classes_covered")
    if covered is not None and covered < expected:
        out.append(f"mode collapse: only {covered} of {expected} classes appear among {s.get('n')} samples")
    if s.get("recall") is not None and s.get("precision") is not None and s["recall"] < 0.5 * s["precision"]:
        out.append(
            f"low diversity: recall {s['recall']:.2f} is under half the precision {s['precision']:.2f}"
        )
    return out


# ----------------------------------------------------------------------------- effects


def _baseline(values: list[str]) -> str:
    """The 'off' value of a setting when it has one (0, none, (off)), else the first."""
    for off in ("0", "none", "(off)", "false"):
        if off in values:
            return off
    return values[0]


def paired_effect(runs: list[Run], key: str, metric: str = "fid") -> list[dict[str, Any]]:
    """Compare runs that differ in `key` alone (same seed, same everything else).

    Returns one row per non-baseline value: {value, baseline, pairs, base_mean, mean, delta_mean, delta_std}.
    """
    groups: dict[tuple, dict[str, Run]] = {}
    others = [k for k in runs[0].flat if k != key and k not in PLUMBING - {"seed"}]
    for r in runs:
        if r.samples.get(metric) is None:
            continue
        group = tuple(repr(r.flat[k]) for k in others)
        groups.setdefault(group, {})[value_text(r.flat[key])] = r
    values = []
    for g in groups.values():
        values += [v for v in g if v not in values]
    if len(values) < 2:
        return []
    base = _baseline(values)
    out = []
    for v in values:
        if v == base:
            continue
        pairs = [
            (g[base].samples[metric], g[v].samples[metric]) for g in groups.values() if base in g and v in g
        ]
        if not pairs:
            continue
        a, b = np.array(pairs, dtype=float).T
        d = b - a
        out.append(
            {
                "key": key,
                "value": v,
                "baseline": base,
                "pairs": len(pairs),
                "base_mean": float(a.mean()),
                "mean": float(b.mean()),
                "delta_mean": float(d.mean()),
                "delta_std": float(d.std(ddof=1)) if len(d) > 1 else None,
            }
        )
    return out


def group_value(run: Run, keys: list[str]) -> str:
    return "/".join(value_text(run.flat[k]) for k in keys)


def main_effect(runs: list[Run], keys: str | list[str], metric: str = "fid") -> list[dict[str, Any]]:
    """Mean ± std of `metric` over all evaluated runs for each value of `keys` (one setting, or several
    that changed together), best first."""
    keys = [keys] if isinstance(keys, str) else keys
    by: dict[str, list[float]] = {}
    for r in runs:
        if r.samples.get(metric) is not None:
            by.setdefault(group_value(r, keys), []).append(float(r.samples[metric]))
    rows = [
        {
            "value": v,
            "n": len(xs),
            "mean": float(np.mean(xs)),
            "std": float(np.std(xs, ddof=1)) if len(xs) > 1 else None,
        }
        for v, xs in by.items()
    ]
    return sorted(rows, key=lambda row: row["mean"])


def confounded(runs: list[Run], keys: list[str]) -> list[list[str]]:
    """Group settings that changed together (the same split of the runs): their effects cannot be told
    apart."""
    groups: dict[tuple, list[str]] = {}
    for k in keys:
        seen: dict[str, int] = {}
        split = tuple(seen.setdefault(value_text(r.flat[k]), len(seen)) for r in runs)
        groups.setdefault(split, []).append(k)
    return list(groups.values())


def why_best(best: Run, runs: list[Run], varied: list[str]) -> list[str]:
    """Sentences that explain, from the numbers, why `best` came out on top."""
    fids = sorted(r.fid for r in runs if r.fid is not None)
    s = best.samples
    out = [
        f"{best.name} has the lowest FID, {best.fid:.1f}"
        + (f" (median of all {len(fids)} evaluated runs: {np.median(fids):.1f})" if len(fids) > 1 else "")
        + f"; inception score {s.get('inception_score', float('nan')):.2f}, "
        f"{s.get('classes_covered')} digit classes "
        f"covered, precision {s.get('precision', float('nan')):.2f}, recall "
        f"{s.get('recall', float('nan')):.2f}."
    ]
    for keys in confounded(runs, varied):
        effect = main_effect(runs, keys)
        if len(effect) < 2:
            continue
        name, mine = ", ".join(keys), group_value(best, keys)
        listing = "; ".join(f"{e['value']}: {e['mean']:.1f}" for e in effect)
        together = (
            f" ({name} changed together in these runs, so their separate effects are unknown)"
            if len(keys) > 1
            else ""
        )
        spread = max((e["std"] or 0.0) for e in effect)
        here = next(e for e in effect if e["value"] == mine)
        if effect[0]["value"] == mine:
            out.append(f"Its {name} = {mine} is also the best on average{together}; mean FID: {listing}.")
        elif here["mean"] - effect[0]["mean"] <= spread:
            out.append(
                f"Its {name} = {mine} is as good as the best value within the spread over runs "
                f"(± {spread:.1f}){together}; mean FID: {listing}."
            )
        else:
            out.append(
                f"Its {name} = {mine} is not the best on average{together} ({listing}): this run won through "
                "the combination with its other settings or its seed."
            )
    return out
