"""Readable text for `mnistgan evaluate` and `mnistgan predict` (plain ASCII, fixed-width columns)."""

from __future__ import annotations

import math

from .metrics import CONFIDENT, COVERED_SHARE, K_DC, K_PR

# (key, label, which way is better, format)
ROWS = [
    ("modes_covered", "modes covered (of 1,000 digit triples)", "higher", "{:d}"),
    ("modes_kl", "KL(mode histogram || uniform), nats", "lower", "{:.4f}"),
    ("fid", "FID in classifier features", "lower", "{:.3f}"),
    ("inception_score", "classifier Inception Score (max {c})", "higher", "{:.3f}"),
    ("classes_covered", "classes covered (>= {cov:.0%} of samples)", "higher", "{:d} of {c}"),
    ("kl_to_uniform", "KL(class histogram || uniform), nats", "lower", "{:.4f}"),
    ("confident_share", f"confidently classified (p >= {CONFIDENT})", "higher", "{:.1%}"),
    ("precision", f"precision (k={K_PR})", "higher", "{:.3f}"),
    ("recall", f"recall (k={K_PR})", "higher", "{:.3f}"),
    ("density", f"density (k={K_DC}; ~1 for real data)", "~1", "{:.3f}"),
    ("coverage", f"coverage (k={K_DC})", "higher", "{:.3f}"),
    ("label_accuracy", "accuracy of the requested label", "higher", "{:.1%}"),
]


def _fmt(fmt: str, value, classes: int) -> str:
    if value is None:
        return "-"
    return fmt.format(value, c=classes) if "{c}" in fmt else fmt.format(value)


def format_evaluation(result: dict) -> str:
    """The metrics table: samples beside real held-out images, then both class histograms."""
    s, r = result["samples"], result.get("reference")
    c = len(result["classes"])
    lines = [
        f"Evaluated {s['n']:,} samples from {result['source']} against the {result['reference_set']}",
        f"classifier: bundled {result['dataset']} CNN (sha256 {result['classifier_sha256'][:12]})",
        "",
    ]
    head = ["metric", "better", "samples"] + (["real"] if r else [])
    table = [head]
    for key, label, better, fmt in ROWS:
        if key not in s:
            continue
        row = [label.format(c=c, cov=COVERED_SHARE), better, _fmt(fmt, s[key], c)]
        if r:
            row.append(_fmt(fmt, r.get(key), c))
        table.append(row)
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for k, row in enumerate(table):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])] + [
            v.rjust(w) for v, w in zip(row[2:], widths[2:])
        ]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    if result.get("note"):
        lines += ["", f"note: {result['note']}"]
    lines += ["", "predicted classes (counts)" + (", all three channels:" if "modes_kl" in s else ":")]
    rows = [("samples", s["histogram"])] + ([("real", r["histogram"])] if r else [])
    lines += histogram_lines(result["classes"], rows)
    if r:
        lines += [
            "",
            f"real = {result['real_set']}, scored exactly like the samples:",
            "the numbers a perfect generator would reach with this many samples.",
        ]
    if result.get("metrics_file"):
        lines.append(f"Wrote {result['metrics_file']}")
    return "\n".join(lines)


def histogram_lines(classes: list, rows: list) -> list:
    """Class names as column heads, one row of counts per (name, counts)."""
    w = max(max(len(str(x)) for x in classes), max(len(f"{v:,}") for _, counts in rows for v in counts))
    first = max(len(name) for name, _ in rows)
    out = ["  " + " " * first + "  " + " ".join(str(x).rjust(w) for x in classes)]
    for name, counts in rows:
        out.append("  " + name.ljust(first) + "  " + " ".join(f"{v:,}".rjust(w) for v in counts))
    return out


def format_prediction(result: dict, show: int = 20) -> str:
    """Counts per class, then the least confident images (at most `show`)."""
    labels, conf, names, classes = result["labels"], result["confidence"], result["names"], result["classes"]
    counts = [0] * len(classes)
    for y in labels:
        counts[y] += 1
    lines = [f"Labelled {len(labels):,} images with the bundled {result['dataset']} classifier"]
    if result.get("note"):
        lines.append(result["note"])
    lines += histogram_lines(classes, [("count", counts)])
    if result.get("requested") is not None:
        hits = sum(int(a == b) for a, b in zip(labels, result["requested"]))
        lines.append(
            f"requested label predicted for {hits:,} of {len(labels):,} images ({hits / len(labels):.1%})"
        )
    low = sorted((i for i, p in enumerate(conf) if p < CONFIDENT), key=lambda i: conf[i])
    lines.append(f"low confidence (p < {CONFIDENT}): {len(low):,} of {len(labels):,} images")
    for i in low[:show]:
        alt = result["runner_up"][i]
        p = math.floor(conf[i] * 1000) / 1000  # rounded down: 0.8998 must not read "0.900" under "p < 0.9"
        lines.append(
            f"  {names[i]}: {classes[labels[i]]} (p = {p:.3f}), else {classes[alt]} "
            f"(p = {result['runner_up_confidence'][i]:.3f})"
        )
    if len(low) > show:
        lines.append(f"  ... and {len(low) - show:,} more (--json lists every label and confidence)")
    return "\n".join(lines)
