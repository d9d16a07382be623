"""`mnistgan report RUN_OR_SWEEP_DIR... --out DIR`: report.html (self-contained) and report.pdf.

Sections: 1. experiments performed (architectures, loss, optimiser, settings, metrics of every
run, sweep tables), 2. special skills (stabilisers and their measured effect in paired runs),
3. visualisation (visual.py), 4. a data-driven discussion (phases and alarms found in the
logs, which settings mattered, the best run and why). The content is built once as blocks
(document.py) and drawn twice: HTML (document.py) and PDF (pdf.py).
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Callable, Collection, Optional

from ..config import flat_fields
from ..errors import MnistganError
from ..evaluator import evaluate
from ..files import write_text
from ..sweepdir import SHOWN_IN_MD, combination_rows, pm, run_rows
from ..version import __version__
from .analysis import (
    D_LOST_ACC,
    D_WINS_ACC,
    SETTLED_TOL,
    STABILISERS,
    active_stabilisers,
    confounded,
    find_phases,
    main_effect,
    metric_alarms,
    paired_effect,
    why_best,
)
from .arch import architectures
from .data import PLUMBING, Run, collect, help_text, load_run, ranked, setting_text, value_text, varied_fields
from .document import Bullets, Document, Figure, Heading, Para, Table, to_html
from .figures import effects
from .pdf import render_pdf
from .visual import section_visual

LOSS_TEXT = {
    "bce": "non-saturating BCE: D minimises −log D(x) − log(1 − D(G(z))), G minimises −log D(G(z))",
    "hinge": "hinge: D minimises max(0, 1 − D(x)) + max(0, 1 + D(G(z))), G minimises −D(G(z))",
    "lsgan": "least squares: D minimises ½(D(x) − 1)² + ½D(G(z))², G minimises ½(D(G(z)) − 1)²",
    "wgan-gp": "Wasserstein with gradient penalty: the critic minimises D(G(z)) − D(x) + λ·GP, "
    "G minimises −D(G(z))",
}


# what an architecture is made of: the runs that share one are named by these settings first
MODEL_FIELDS = frozenset(name for name, (section, _, _) in flat_fields().items() if section == "model")
NET_FIELDS = {
    "G": frozenset(k for k in MODEL_FIELDS if not k.startswith("d_") and k != "dropout"),
    "D": frozenset(k for k in MODEL_FIELDS if not k.startswith("g_") and k != "z_dim"),
}


def fmt(v: Optional[float], digits: int = 3) -> str:
    if v is None:
        return "–"
    return f"{v:.{digits}f}" if abs(v) < 1000 else f"{v:,.0f}"


def runs_text(names: list[str], runs: list[Run], prefer: Collection[str] = ()) -> str:
    """Which runs: 'all runs', the settings that single them out ('the 12 runs with dropout=0.3';
    `prefer`red settings first among equally good ones), or their names."""
    if len(names) == len(runs):
        return "all runs" if len(runs) > 1 else "the run"
    chosen = [r for r in runs if r.name in set(names)]
    shared = [k for k in varied_fields(runs) if len({value_text(r.flat[k]) for r in chosen}) == 1]
    if shared and len(names) > 2:
        return f"the {len(names)} runs with " + ", ".join(
            f"{k}={value_text(chosen[0].flat[k])}" for k in distinguishing(shared, chosen, runs, prefer)
        )
    shown = "; ".join(names[:4])  # run names of a sweep contain commas
    return shown + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def distinguishing(
    shared: list[str], chosen: list[Run], runs: list[Run], prefer: Collection[str] = ()
) -> list[str]:
    """The fewest of the `shared` settings (picked greedily, `prefer`red ones first on a tie) whose
    values single out `chosen` among `runs` ('label_smoothing=0.1' rather than every setting the
    chosen runs happen to share); all of them when no subset does."""
    value = {k: value_text(chosen[0].flat[k]) for k in shared}
    picked: list[str] = []
    matching = runs
    while len(matching) > len(chosen):
        left = [k for k in shared if k not in picked]
        if not left:
            return shared
        k = min(
            left, key=lambda k: (sum(value_text(r.flat[k]) == value[k] for r in matching), k not in prefer)
        )
        narrower = [r for r in matching if value_text(r.flat[k]) == value[k]]
        if len(narrower) == len(matching):
            return shared
        picked.append(k)
        matching = narrower
    return [k for k in shared if k in picked]


def shared_setting_text(runs: list[Run], name: str) -> str:
    """A setting every run shares, as the report shows it; where the same value means different
    things per model family (a width left to its default), each family's reading."""
    texts = {r.flat["model"]: setting_text(r.flat, name) for r in runs}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return "; ".join(f"{model}: {text}" for model, text in texts.items())


def delta_text(mean: float, std: Optional[float]) -> str:
    """'+1.2 ± 0.3'; a change that rounds to zero reads '0.0', never '-0.0'."""
    d = f"{mean:+.1f}" if round(mean, 1) != 0 else "0.0"
    return d + (f" ± {std:.1f}" if std is not None else "")


def effect_word(delta_fid: float) -> str:
    return "no change" if round(delta_fid, 1) == 0 else "lower FID" if delta_fid < 0 else "higher FID"


# ----------------------------------------------------------------------------- 1. experiments


def section_experiments(doc: Document, runs: list[Run], sweeps: list, varied: list[str]) -> None:
    doc.add(Heading("1. Experiments performed"))
    datasets = sorted(
        {
            f"{r.flat['dataset']}"
            + (f" (digit {r.flat['digit']})" if r.flat["digit"] is not None else "")
            + (f", first {r.flat['limit']:,} images" if r.flat["limit"] else "")
            for r in runs
        }
    )
    doc.add(
        Para(
            f"{len(runs)} run{'s' * (len(runs) != 1)} trained on {'; '.join(datasets)}. "
            "Each section below is computed from the run folders (config.json, log.jsonl, metrics.json)."
        )
    )
    doc.add(Heading("Architectures", 3))
    for a in architectures(runs):
        if a["model"] == "vae":  # the VAE baseline: its "G" is the decoder and its "D" the encoder
            net = "Decoder (the generator)" if a["net"] == "G" else "Encoder"
        else:
            net = "Generator G" if a["net"] == "G" else "Discriminator D"
        rows = [[layer, shape, f"{n:,}"] for layer, shape, n in a["rows"]] + [
            ["total", "", f"{a['params']:,}"]
        ]
        doc.add(
            Table(
                ["Layer", "Output shape", "Parameters"],
                rows,
                widths=[3.2, 1.4, 1.2],
                caption=f"{net} ({a['model']}, {a['params']:,} parameters), used by "
                f"{runs_text(a['runs'], runs, NET_FIELDS.get(a['net'], MODEL_FIELDS))}",
            )
        )
    doc.add(Heading("Loss, optimiser and settings", 3))
    items = []
    for loss in sorted({r.flat["loss"] for r in runs}):
        items.append(f"Loss {loss}: {LOSS_TEXT.get(loss, loss)}.")
    for r0 in {
        (r.flat["optimizer"], r.flat["beta1"], r.flat["beta2"], r.flat["momentum"]): r for r in runs
    }.values():
        o = r0.flat
        items.append(
            f"Optimiser {o['optimizer']}: "
            + (
                f"Adam with β1 = {o['beta1']:g}, β2 = {o['beta2']:g}"
                if o["optimizer"] == "adam"
                else f"SGD with momentum {o['momentum']:g}"
            )
            + ", for G and D separately."
        )
    doc.add(Bullets(items))
    fixed = [k for k in runs[0].flat if k not in varied and k not in PLUMBING]
    doc.add(
        Table(
            ["Setting", "Value", "Meaning"],
            [[k, shared_setting_text(runs, k), help_text(k)] for k in fixed],
            caption="Settings shared by every run",
            widths=[1.3, 1.0, 4.2],
            align="lll",
        )
    )
    if varied:
        rows = [
            [k, ", ".join(dict.fromkeys(setting_text(r.flat, k) for r in runs)), help_text(k)] for k in varied
        ]
        doc.add(
            Table(
                ["Setting", "Values", "Meaning"],
                rows,
                caption="Settings varied between runs",
                widths=[1.3, 1.6, 3.6],
                align="lll",
            )
        )
    seeds = sorted({r.flat["seed"] for r in runs})
    doc.add(
        Para(
            f"Seeds: {', '.join(map(str, seeds))}. A seed fixes the initial weights, the noise and "
            "the data order."
        )
    )
    for sw in sweeps:
        _sweep_table(doc, sw)
    _metric_tables(doc, runs)


def _sweep_table(doc: Document, sw) -> None:
    combos = combination_rows(sw.spec, run_rows(sw.path, sw.spec))
    keys = list(sw.spec.grid)
    head = keys + ["seeds done", "FID ↓", "IS ↑", "digits", "precision", "recall", "coverage"]
    rows = [
        [value_text(c[k]) for k in keys]
        + [f"{c['evaluated']}/{c['runs']}"]
        + [pm(c[f"{m}_mean"], c[f"{m}_std"]) for m in SHOWN_IN_MD]
        for c in combos
    ]
    doc.add(Heading(f"Sweep {sw.path.name}: mean ± std over seeds", 3))
    doc.add(
        Table(
            head,
            rows,
            caption=f"One row per combination, best FID first; ± is the sample standard deviation "
            f"over seeds {', '.join(map(str, sw.spec.seeds))}",
            align="l" * len(keys) + "r" * 7,
        )
    )


def _metric_tables(doc: Document, runs: list[Run]) -> None:
    doc.add(Heading("Metrics of each run", 3))
    doc.add(
        Para(
            "Scored by the bundled MNIST classifier: FID and inception score (IS) in its feature "
            "space, digits = "
            "classes that appear among the samples, confident = share of samples it labels with ≥ "
            "0.9 confidence, "
            "precision (realism), recall (diversity) and coverage of the test set's features.",
            note=True,
        )
    )
    order = ranked(runs) + [r for r in runs if r.fid is None]
    rows = []
    for r in order:
        s = r.samples
        rows.append(
            [r.name]
            + [fmt(s.get(k), d) for k, d in (("fid", 1), ("inception_score", 2))]
            + [str(s.get("classes_covered", "–"))]
            + [fmt(s.get(k), 2) for k in ("confident_share", "precision", "recall", "coverage")]
        )
    ref = next((r.metrics.get("reference") for r in order if r.metrics and r.metrics.get("reference")), None)
    if ref:
        rows.append(
            [
                "real held-out images (reference)",
                fmt(ref.get("fid"), 1),
                fmt(ref.get("inception_score"), 2),
                str(ref.get("classes_covered")),
            ]
            + [fmt(ref.get(k), 2) for k in ("confident_share", "precision", "recall", "coverage")]
        )
    doc.add(
        Table(
            ["Run", "FID ↓", "IS ↑", "digits", "confident", "precision", "recall", "coverage"],
            rows,
            caption="Sample quality, best FID first (– = not evaluated)",
            widths=[3.4] + [1.0] * 7,
        )
    )
    rows = []
    for r in order:
        epochs = [x for x in r.log if x.get("kind") == "epoch"]
        last = epochs[-1] if epochs else {}
        speed = [x["images_per_s"] for x in epochs if x.get("images_per_s")]
        rows.append(
            [
                r.name,
                f"{r.epochs_done()}/{r.flat['epochs']}",
                f"{last.get('images', 0):,}",
                f"{sum(speed) / len(speed):,.0f}" if speed else "–",
                fmt(last.get("loss_d"), 3),
                fmt(last.get("loss_g"), 3),
                fmt(last.get("d_acc"), 2),
                r.error and "diverged" or r.state,
            ]
        )
    doc.add(
        Table(
            ["Run", "epochs", "images seen", "images/s", "loss D", "loss G", "D acc", "state"],
            rows,
            caption="Training: the last epoch's mean losses and D accuracy",
            widths=[3.4] + [1.0] * 6 + [1.2],
        )
    )


# ----------------------------------------------------------------------------- 2. stabilisers


def section_stabilisers(doc: Document, runs: list[Run], varied: list[str]) -> None:
    doc.add(Heading("2. Special skills: stabilisers"))
    doc.add(
        Para(
            "GAN training is a two-player game that can oscillate, diverge or collapse onto a few modes. "
            "These techniques make it better behaved; the table lists which runs used which."
        )
    )
    used: dict[str, list[tuple[str, str]]] = {}
    for r in runs:
        for key, setting in active_stabilisers(r).items():
            used.setdefault(key, []).append((r.name, setting))
    if used:
        rows = [
            [
                STABILISERS[k][0],
                STABILISERS[k][1],
                runs_text([n for n, _ in v], runs),
                ", ".join(dict.fromkeys(s for _, s in v)),
            ]
            for k, v in used.items()
        ]
        doc.add(
            Table(
                ["Stabiliser", "What it does", "Used by", "Setting"],
                rows,
                widths=[1.3, 3.2, 1.5, 1.0],
                align="llll",
            )
        )
    else:
        doc.add(Para("No stabiliser was switched on in these runs."))
    doc.add(Heading("Measured effect (paired runs)", 3))
    rows = []
    for key in [k for k in varied if k in STABILISERS]:
        covered = {e["value"]: e for e in paired_effect(runs, key, "classes_covered")}
        for e in paired_effect(runs, key):
            d = delta_text(e["delta_mean"], e["delta_std"])
            c = covered.get(e["value"])
            rows.append(
                [
                    STABILISERS[key][0],
                    f"{key}: {e['baseline']} → {e['value']}",
                    str(e["pairs"]),
                    f"{e['base_mean']:.1f} → {e['mean']:.1f}",
                    d,
                    delta_text(c["delta_mean"], None) if c else "–",
                    effect_word(e["delta_mean"]),
                ]
            )
    if rows:
        doc.add(
            Para(
                "Each pair is two runs with identical settings and seed except the stabiliser, so "
                "the difference "
                "is its effect; Δ is the mean change over pairs (± its standard deviation)."
            )
        )
        doc.add(
            Table(
                ["Stabiliser", "Change", "pairs", "FID", "Δ FID", "Δ digits", "effect"],
                rows,
                widths=[1.5, 2.0, 0.7, 1.4, 1.2, 0.9, 1.0],
                align="llrrrrl",
            )
        )
    else:
        doc.add(
            Para(
                "No two runs differ in a stabiliser alone, so its effect cannot be measured from these runs. "
                "A sweep measures it, e.g. `mnistgan sweep --grid dropout=0,0.3 "
                "label_smoothing=0,0.1 --seeds 3`."
            )
        )


# ----------------------------------------------------------------------------- 4. discussion


def _effect_sentence(runs: list[Run], name: str, rows: list[dict]) -> str:
    """'lr: 0.0002 → FID 45.1 ± 2.0 (n=6); ...', plus the paired comparison when runs differ in it alone."""
    text = f"{name}: " + "; ".join(
        f"{e['value']} → FID {e['mean']:.1f}"
        + (f" ± {e['std']:.1f}" if e["std"] is not None else "")
        + f" (n={e['n']})"
        for e in rows
    )
    if ", " in name:
        return text + ". These settings changed together, so their effects cannot be told apart."
    paired = paired_effect(runs, name)
    if paired:
        text += ". Paired runs (same seed and other settings): " + "; ".join(
            f"{e['baseline']} → {e['value']}: ΔFID {delta_text(e['delta_mean'], e['delta_std'])}"
            + f" over {e['pairs']} pairs"
            for e in paired
        )
    return text + "."


def section_discussion(doc: Document, runs: list[Run], best: Optional[Run], varied: list[str]) -> None:
    doc.add(Heading("4. Discussion"))
    doc.add(Heading("Training phases and alarms", 3))
    doc.add(
        Para(
            "Read from each log.jsonl: warm-up = the initial transient, until both smoothed losses "
            "come back within "
            f"±{SETTLED_TOL:.0%} of their final level after their largest excursion; plateau = from "
            "when they stay "
            f"there to the end; alarms = D accuracy ≥ {D_WINS_ACC:.2f} (D dominates) or ≤ {D_LOST_ACC:.2f} "
            "(D fooled) for a while, loss spikes, NaN divergence, missing digits, low recall.",
            note=True,
        )
    )
    rows = []
    for r in ranked(runs) + [r for r in runs if r.fid is None]:
        p = find_phases(r.log)
        alarms = ([a for _, a in p.alarms] if p else []) + metric_alarms(r) + ([r.error] if r.error else [])
        rows.append(
            [
                r.name,
                f"{p.warmup_end:.2f}" if p and p.warmup_end is not None else "–",
                f"{p.plateau_start:.2f}" if p and p.plateau_start is not None else "–",
                "; ".join(alarms) or ("none" if p else "log too short"),
            ]
        )
    doc.add(
        Table(
            ["Run", "warm-up until epoch", "plateau from epoch", "alarms"],
            rows,
            widths=[2.2, 1.0, 1.0, 3.6],
            align="lrrl",
        )
    )
    groups = confounded(runs, varied)
    effect_rows = {", ".join(g): main_effect(runs, g) for g in groups}
    effect_rows = {k: v for k, v in effect_rows.items() if len(v) > 1}
    if effect_rows:
        doc.add(Heading("Which settings mattered", 3))
        columns = min(3, len(effect_rows))  # effects() draws up to 3 panels a row, 2.6 in each
        doc.add(
            Figure(
                effects(effect_rows),
                "Mean FID (± std over runs) for each value of each varied setting; lower is better",
                width=0.9 * (2.6 * columns + 0.6) / (2.6 * 3 + 0.6),
            )
        )
        doc.add(Bullets([_effect_sentence(runs, k, v) for k, v in effect_rows.items()]))
    doc.add(Heading("Best run and why", 3))
    if best is None:
        doc.add(
            Para(
                "No run has been evaluated, so none can be called best. Run `mnistgan evaluate "
                "--generator RUN`, "
                "or make the report without --no-evaluate."
            )
        )
        return
    doc.add(Bullets(why_best(best, runs, varied)))
    p = find_phases(best.log)
    if p:
        doc.add(
            Para(
                "Its training: "
                + " ".join(p.notes)
                + (" Alarms: " + "; ".join(a for _, a in p.alarms) + "." if p.alarms else " No alarms.")
            )
        )
    ref = (best.metrics or {}).get("reference") or {}
    if ref.get("fid") is not None:
        doc.add(
            Para(
                f"For scale: real held-out images score FID {ref['fid']:.1f} with the same number of samples "
                f"({ref.get('n')}), the floor a perfect generator would reach.",
                note=True,
            )
        )


# ----------------------------------------------------------------------------- assembling


def build(runs: list[Run], sweeps: list, out_dir: Path, title: Optional[str] = None) -> Document:
    order = ranked(runs)
    best = order[0] if order else None
    varied = varied_fields(runs)
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    doc = Document(
        title or ("GAN training report" if len(runs) > 1 else f"GAN training report: {runs[0].name}"),
        f"{len(runs)} run{'s' * (len(runs) != 1)} · {len(sweeps)} sweep{'s' * (len(sweeps) != 1)} · "
        f"generated {when} by mnistgan {__version__}",
    )
    summary = f"This report covers {len(runs)} GAN training run{'s' * (len(runs) != 1)}"
    summary += f" varying {', '.join(varied)}." if varied else "."
    if best is not None:
        summary += (
            f" The best, by FID, is {best.name}: FID {best.fid:.1f}, "
            f"{best.samples.get('classes_covered')} of 10 digits covered."
        )
    doc.add(Para(summary))
    section_experiments(doc, runs, sweeps, varied)
    section_stabilisers(doc, runs, varied)
    section_visual(doc, runs, best, out_dir)
    section_discussion(doc, runs, best, varied)
    return doc


def evaluate_missing(runs: list[Run], n: int, log: Callable[[str], None]) -> None:
    """Score finished runs that have no metrics.json yet (writes it into the run, as `mnistgan evaluate`
    does)."""
    for i, r in enumerate(runs):
        if r.state == "trained":
            log(f"Evaluating {r.name} ({n} samples) ...")
            evaluate(generator=r.path / "generator", n=n)
            runs[i] = load_run(r.path, r.sweep)
            runs[i].name = r.name


def report(
    paths: list[str | os.PathLike],
    out: str | os.PathLike = "report",
    title: Optional[str] = None,
    pdf: bool = True,
    evaluate: bool = True,
    eval_n: int = 2000,
    log: Callable[[str], None] = print,
) -> dict:
    """Write <out>/report.html and <out>/report.pdf for the runs and sweeps under `paths`.

    Returns {"html", "pdf" (or None), "pages", "runs" (names), "best" (name or None)}.
    """
    if eval_n <= 0:
        raise MnistganError(f"--eval-n must be positive, got {eval_n}")
    runs, sweeps = collect(list(paths))
    if evaluate:
        evaluate_missing(runs, eval_n, log)
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise MnistganError(f"--out {out_dir} is a file; give a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = build(runs, sweeps, out_dir, title)
    write_text(out_dir / "report.html", to_html(doc))
    pages = render_pdf(doc, out_dir / "report.pdf") if pdf else 0
    best = ranked(runs)
    return {
        "html": out_dir / "report.html",
        "pdf": out_dir / "report.pdf" if pdf else None,
        "pages": pages,
        "runs": [r.name for r in runs],
        "best": best[0].name if best else None,
    }
