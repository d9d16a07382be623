"""matplotlib figures made without pyplot: no global backend switch (a notebook keeps its inline
backend, and plt.show() keeps working after training) and no figure manager to leak."""

from __future__ import annotations

import io
import os

from matplotlib.figure import Figure

from .files import write_with


def new_figure(nrows: int = 1, ncols: int = 1, figsize=None, **kwargs):
    """(figure, axes) like pyplot.subplots, with a figure no pyplot state knows about."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def save_png(fig: Figure, path: str | os.PathLike, dpi: int = 110) -> None:
    """Write the figure as a PNG, atomically."""
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
