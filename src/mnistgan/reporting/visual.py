"""Section 3 of a report, visualisation: how the runs compare, and for the best run (every run when
there are few) the classifier-checked 5x5 grid, loss curves with their phases, samples at the
chosen epochs, real vs generated and the progress GIF."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

import torch

from ..config import STACKED
from ..evaluator.classifier import CLASSIFIERS, classify
from ..generator import COURSE_SEED, load_generator
from .analysis import find_phases
from .data import Run, ranked
from .document import Document, Figure, Gallery, Heading, Link, Para
from .figures import file_png, labelled_grid, loss_phases, metric_bars

DETAIL_ALL_UP_TO = 3  # with this many runs or fewer, every run gets the full set of pictures
GALLERY_MAX = 24  # final grids shown side by side at most (best FID first)


def grid_check(run: Run) -> Optional[tuple[bytes, str]]:
    """The course 5x5 grid (seed 504) labelled by the bundled classifier, and a sentence on the digits
    found."""
    if not (run.path / "generator" / "model.safetensors").is_file():
        return None
    dataset = run.flat["dataset"]
    gen = load_generator(run.path / "generator")
    images = gen.generate(25, COURSE_SEED)  # uint8 (25, [3,] 28, 28): exactly final_grid.png
    if dataset == STACKED:
        return stacked_grid_check(images, run)
    if run.flat.get("images") or dataset not in CLASSIFIERS:
        what = "your own images" if run.flat.get("images") else dataset
        return labelled_grid(images, [""] * 25, [1.0] * 25), f"No bundled classifier for {what}."
    classes = list(CLASSIFIERS[dataset].classes)
    _, probs = classify(torch.from_numpy(images), dataset)
    conf, labels = probs.max(1)
    found = sorted(set(labels.tolist()))
    expected = [run.flat["digit"]] if run.flat.get("digit") is not None else list(range(len(classes)))
    missing = [classes[c] for c in expected if c not in found]
    text = (
        f"The classifier finds {len(found)} of {len(expected)} expected classes in this grid "
        f"({', '.join(classes[c] for c in found)}); "
        + (f"missing: {', '.join(missing)}." if missing else "every expected class appears.")
    )
    s = run.samples
    if s.get("histogram"):
        text += (
            f" Over the {s.get('n')} evaluated samples, {s.get('classes_covered')} classes appear "
            f"(counts per class: {', '.join(str(h) for h in s['histogram'])})."
        )
    low = int((conf < 0.5).sum())
    if low:
        text += f" {low} of the 25 images are ambiguous (confidence < 0.5, in red)."
    titles = [f"{classes[c]} ({p:.2f})" for c, p in zip(labels.tolist(), conf.tolist())]
    return labelled_grid(images, titles, conf.tolist()), text


def stacked_grid_check(images, run: Run) -> tuple[bytes, str]:
    """Stacked-MNIST: each image titled by its three digits (R, G, B) and its least confident one."""
    _, probs = classify(torch.from_numpy(images.reshape(-1, 28, 28)), "mnist")
    conf, digits = probs.max(1)
    conf, digits = conf.view(-1, 3).min(1).values, digits.view(-1, 3)
    titles = [f"{''.join(map(str, d))} ({p:.2f})" for d, p in zip(digits.tolist(), conf.tolist())]
    s = run.samples
    text = (
        f"The grid's 25 images show {len({tuple(d) for d in digits.tolist()})} different digit triples "
        "(modes)."
    )
    if s.get("modes_covered") is not None:
        text += (
            f" Over the {s.get('n'):,} evaluated samples, {s['modes_covered']} of the 1,000 modes appear "
            f"(KL to uniform {s['modes_kl']:.3f})."
        )
    return labelled_grid(images, titles, conf.tolist()), text


def _epoch_of(path: Path) -> int:
    m = re.search(r"(\d+)", path.stem)
    return int(m.group(1)) if m else 0


def run_pictures(doc: Document, run: Run, out_dir: Path) -> None:
    """Every picture of one run, in the order a reader follows training."""
    doc.add(Heading(f"Run {run.name}", 3))
    checked = grid_check(run)
    if checked:
        png, text = checked
        doc.add(
            Figure(
                png,
                "Final 5×5 grid (z = np.random.seed(504); np.random.normal(size=[25, z_dim])), "
                "each image labelled by the classifier with its confidence",
                width=0.62,
            )
        )
        doc.add(Para(text))
    else:
        doc.add(Para("This run has no exported generator yet (unfinished), so there is no final grid."))
    phases = find_phases(run.log)
    if phases:
        doc.add(
            Figure(
                loss_phases(phases, f"Losses and D accuracy: {run.name}"),
                "Loss curves (faint: every log line; bold: smoothed) and D accuracy; shaded: "
                "warm-up (orange) "
                "and plateau (green); dashed red: alarms (section 4)",
                width=0.85,
            )
        )
    elif run.file("losses.png"):
        doc.add(Figure(file_png(run.path / "losses.png"), "Loss curves", width=0.8))
    frames = sorted((run.path / "samples").glob("epoch_*.png"), key=_epoch_of)
    if frames:
        doc.add(
            Gallery(
                [(file_png(f, 448), f"epoch {_epoch_of(f)}") for f in frames],
                columns=3,
                caption="Samples from the same fixed noise at the chosen epochs (--sample-epochs):",
            )
        )
    if run.file("comparison.png"):
        doc.add(
            Figure(
                file_png(run.path / "comparison.png"),
                "Real training images (left) and generated images (right)",
                width=0.85,
            )
        )
    gif = run.file("progress.gif")
    if gif:
        doc.add(
            Figure(
                gif.read_bytes(),
                "Training progress (animation of the epoch samples)",
                width=0.5,
                mime="image/gif",
                still=None,
            )
        )
        doc.add(Link(f"progress.gif of {run.name}", os.path.relpath(gif, out_dir)))


def section_visual(doc: Document, runs: list[Run], best: Optional[Run], out_dir: Path) -> None:
    doc.add(Heading("3. Visualisation"))
    order = ranked(runs)
    if len(order) > 1:
        shown = order[:40]
        doc.add(
            Figure(
                metric_bars([r.name for r in shown], [r.fid for r in shown], [None] * len(shown)),
                "FID of each evaluated run (lower is better; best in orange)"
                + (f", best 40 of {len(order)}" if len(order) > 40 else ""),
                width=0.95,
            )
        )
    if len(runs) > 1:
        items = []
        for r in (order + [r for r in runs if r.fid is None])[:GALLERY_MAX]:
            if r.file("final_grid.png"):
                fid = f"FID {r.fid:.1f}" if r.fid is not None else "not evaluated"
                items.append((file_png(r.path / "final_grid.png", 280), f"{r.name} · {fid}"))
        if items:
            doc.add(
                Gallery(
                    items,
                    columns=4,
                    caption="Final 5×5 grids side by side, best FID first"
                    + (f" (first {GALLERY_MAX} of {len(runs)})" if len(runs) > GALLERY_MAX else "")
                    + ":",
                )
            )
    detailed = runs if len(runs) <= DETAIL_ALL_UP_TO else [best or runs[0]]
    if len(runs) > DETAIL_ALL_UP_TO:
        doc.add(
            Para(
                "The full set of pictures follows for the best run; every run folder holds the same files "
                "(final_grid.png, losses.png, samples/, comparison.png, progress.gif)."
            )
        )
    for r in sorted(detailed, key=lambda r: (r.fid is None, r.fid or 0.0)):
        run_pictures(doc, r, out_dir)
