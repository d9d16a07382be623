"""Figures drawn for a report (matplotlib, Agg), returned as PNG bytes to embed."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from PIL import Image

from ..generator.images import pictures
from ..plotting import new_figure, png_bytes
from .analysis import Phases

DPI = 110


def _png(fig) -> bytes:
    return png_bytes(fig, DPI)


def file_png(path: Path, max_side: Optional[int] = None) -> bytes:
    """A PNG file's bytes, shrunk (nearest neighbour: pixels stay crisp) so its longer side is <= max_side."""
    with Image.open(path) as im:
        if max_side is None or max(im.size) <= max_side:
            return Path(path).read_bytes()
        f = max(im.size) / max_side
        small = im.convert("L" if im.mode in ("L", "1") else "RGB").resize(
            (round(im.size[0] / f), round(im.size[1] / f)), Image.NEAREST
        )
        buf = io.BytesIO()
        small.save(buf, format="PNG")
        return buf.getvalue()


def labelled_grid(images: np.ndarray, titles: Sequence[str], conf: Sequence[float]) -> bytes:
    """The 5x5 grid with a title above each image (the classifier's label and confidence), red where
    the confidence is below 0.5; images (N, 28, 28) or colour (N, 3, 28, 28)."""
    images = pictures(images)
    n = int(np.ceil(np.sqrt(len(images))))
    fig, axes = new_figure(n, n, figsize=(1.25 * n, 1.42 * n))
    for k, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if k < len(images):
            ax.imshow(images[k], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_title(titles[k], fontsize=9, color="tab:red" if conf[k] < 0.5 else "black", pad=2)
    fig.tight_layout(pad=0.3, h_pad=0.4, w_pad=0.2)
    return _png(fig)


def loss_phases(p: Phases, title: str) -> bytes:
    """Loss curves (raw, faint; smoothed, bold), D accuracy, the warm-up and plateau shaded, alarms marked."""
    fig, (ax1, ax2) = new_figure(2, 1, figsize=(7.5, 5.2), sharex=True, height_ratios=[2, 1])
    for y, s, name, colour in (
        (p.loss_d, p.smooth_d, "loss D", "tab:blue"),
        (p.loss_g, p.smooth_g, "loss G", "tab:orange"),
    ):
        ax1.plot(p.x, y, color=colour, alpha=0.3, lw=0.8)
        ax1.plot(p.x, s, color=colour, lw=1.8, label=name)
    ax2.plot(p.x, p.d_acc, color="tab:green", lw=1.2)
    for ax in (ax1, ax2):
        if p.warmup_end is not None:
            ax.axvspan(p.x[0], p.warmup_end, color="tab:orange", alpha=0.10, lw=0)
        if p.plateau_start is not None:
            ax.axvspan(p.plateau_start, p.x[-1], color="tab:green", alpha=0.10, lw=0)
        for x, _ in p.alarms:
            ax.axvline(x, color="tab:red", lw=1, ls="--")
        ax.grid(alpha=0.3)
    handles, names = ax1.get_legend_handles_labels()
    if p.warmup_end is not None:
        handles.append(Patch(color="tab:orange", alpha=0.25))
        names.append("warm-up")
    if p.plateau_start is not None:
        handles.append(Patch(color="tab:green", alpha=0.25))
        names.append("plateau")
    if p.alarms:
        handles.append(Line2D([], [], color="tab:red", ls="--"))
        names.append("alarm")
    ax1.legend(handles, names, fontsize=8, loc="upper right")
    ax1.set_ylabel("loss")
    ax1.set_title(title, fontsize=10)
    ax2.set_ylabel("D accuracy")
    ax2.set_ylim(0, 1.02)
    ax2.set_xlabel("epoch")
    fig.tight_layout()
    return _png(fig)


def metric_bars(
    labels: list[str],
    means: list[float],
    stds: list[Optional[float]],
    metric: str = "FID (lower is better)",
    highlight: int = 0,
) -> bytes:
    """Horizontal bars, best at the top, ± std whiskers; the highlighted bar in orange."""
    n = len(labels)
    fig, ax = new_figure(figsize=(7.5, 0.9 + 0.28 * n))
    y = np.arange(n)[::-1]
    err = [s if s is not None else 0.0 for s in stds]
    colours = ["tab:orange" if i == highlight else "tab:blue" for i in range(n)]
    ax.barh(y, means, xerr=err, color=colours, alpha=0.85, capsize=2)
    ax.set_yticks(y, [lab if len(lab) <= 64 else lab[:62] + "…" for lab in labels], fontsize=7)
    ax.set_xlabel(metric)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def effects(rows: dict[str, list[dict]], metric: str = "FID") -> bytes:
    """Mean metric (± std over runs) for each value of each varied setting: one small panel per setting."""
    keys = list(rows)
    cols = min(3, len(keys))
    nrows = int(np.ceil(len(keys) / cols))
    fig, axes = new_figure(nrows, cols, figsize=(2.6 * cols + 0.6, 2.3 * nrows + 0.3), squeeze=False)
    for ax, key in zip(axes.ravel(), keys):
        data = sorted(rows[key], key=lambda r: _sort_key(r["value"]))
        x = np.arange(len(data))
        ax.errorbar(x, [r["mean"] for r in data], yerr=[r["std"] or 0.0 for r in data], fmt="o-", capsize=3)
        ax.set_xticks(x, [r["value"] for r in data], fontsize=8, rotation=30 if len(data) > 3 else 0)
        ax.set_title(key, fontsize=9)
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(keys) :]:
        ax.axis("off")
    axes[0][0].set_ylabel(f"mean {metric}")
    fig.tight_layout()
    return _png(fig)


def _sort_key(value: str):
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)
