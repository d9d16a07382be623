"""Figures of a run: loss curves and real-vs-generated."""

from __future__ import annotations

import os

import numpy as np

from ..generator.images import tile
from ..plotting import new_figure, save_png


def plot_losses(log_rows: list[dict], path: str | os.PathLike, title: str = "") -> None:
    """G and D loss (and D accuracy) against epochs, from the tick lines of log.jsonl."""
    ticks = [r for r in log_rows if r.get("kind") == "tick"] or [
        r for r in log_rows if r.get("kind") == "epoch"
    ]
    x = [
        r.get("epoch_progress", r["epoch"]) for r in ticks
    ]  # (epoch rows of older runs: partial ones had none)
    vae = bool(ticks) and "loss_recon" in ticks[0]
    fig, (ax1, ax2) = new_figure(2, 1, figsize=(7, 5.5), sharex=True, height_ratios=[2, 1])
    top, bottom = (
        (("loss_recon", "Reconstruction (nats)"), ("loss_kl", "KL (nats)"))
        if vae
        else (("loss_d", "Loss D"), ("d_acc", "D accuracy"))
    )
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
    save_png(fig, path)


def plot_comparison(real: np.ndarray, fake: np.ndarray, path: str | os.PathLike) -> None:
    """Real training images (left) beside generated ones (right), same tiling."""
    fig, axes = new_figure(1, 2, figsize=(8, 4.3))
    for ax, images, name in ((axes[0], real, "Real (training set)"), (axes[1], fake, "Generated")):
        ax.imshow(tile(images), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(name)
        ax.axis("off")
    fig.tight_layout()
    save_png(fig, path)
