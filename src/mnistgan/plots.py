"""Figures of a run: loss curves and real-vs-generated. matplotlib Figure objects (no pyplot state)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .files import write_with
from .sample import tile


class _Figures:
    """The two pyplot calls used here, made without pyplot: no global backend switch (a notebook keeps
    its inline backend and plt.show() keeps working after training) and no figure manager to leak."""

    @staticmethod
    def subplots(nrows: int = 1, ncols: int = 1, figsize=None, **kwargs):
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize)
        return fig, fig.subplots(nrows, ncols, **kwargs)

    @staticmethod
    def close(fig) -> None:
        """Nothing to release: the figure is not registered with pyplot."""


def _pyplot():
    return _Figures


def read_log(path: str | os.PathLike) -> list[dict]:
    """The lines of a log.jsonl; a torn last line (crash mid-write) is skipped."""
    rows = []
    p = Path(path)
    if not p.is_file():
        return rows
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def plot_losses(log_rows: list[dict], path: str | os.PathLike, title: str = "") -> None:
    """G and D loss (and D accuracy) against epochs, from the tick lines of log.jsonl."""
    plt = _pyplot()
    ticks = [r for r in log_rows if r.get("kind") == "tick"] or [r for r in log_rows if r.get("kind") == "epoch"]
    x = [r.get("epoch_progress", r["epoch"]) for r in ticks]  # (epoch rows of older runs: partial ones had none)
    vae = bool(ticks) and "loss_recon" in ticks[0]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True, height_ratios=[2, 1])
    top, bottom = (("loss_recon", "Reconstruction (nats)"), ("loss_kl", "KL (nats)")) if vae else \
        (("loss_d", "Loss D"), ("d_acc", "D accuracy"))
    ax1.plot(x, [r[top[0]] for r in ticks], label=top[1], lw=1.2)
    if not vae:
        ax1.plot(x, [r["loss_g"] for r in ticks], label="Loss G", lw=1.2)
    ax1.set_ylabel("loss")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax1.set_title(title or ("VAE losses" if vae else "Generator and discriminator losses"))
    ax2.plot(x, [r[bottom[0]] for r in ticks], color="tab:green", lw=1.2)
    ax2.set_ylabel(bottom[1])
    if not vae:
        ax2.set_ylim(0, 1.02)
    ax2.set_xlabel("epoch")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def plot_comparison(real: np.ndarray, fake: np.ndarray, path: str | os.PathLike) -> None:
    """Real training images (left) beside generated ones (right), same tiling."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.3))
    for ax, images, name in ((axes[0], real, "Real (training set)"), (axes[1], fake, "Generated")):
        ax.imshow(tile(images), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(name)
        ax.axis("off")
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
