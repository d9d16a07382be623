"""Which rows of a global batch this process draws random numbers for.

One process draws for its whole batch. Under torchrun every rank trains on its slice of the
global batch; per-sample random draws (dropout masks, DiffAugment offsets, instance noise) are
made for the global batch on every rank, each keeping its own rows, so the ranks' generators
stay in step and no two ranks' samples share a draw. `training.distributed` sets the rank.
"""

from __future__ import annotations

from typing import Callable

import torch

_rows = (0, 1)  # (rank, world) of this process; (0, 1) outside torchrun


def set_rank(rank: int, world: int) -> None:
    global _rows
    _rows = (rank, world)


def sample_rows(n: int, draw: Callable[[int], torch.Tensor]) -> torch.Tensor:
    """Per-sample random numbers for this rank's n rows of a sharded batch; draw(m) makes m rows.

    One process: draw(n). Under torchrun: draw(world * n), this rank's slice of it."""
    rank, world = _rows
    if world == 1:
        return draw(n)
    return draw(world * n)[rank * n : (rank + 1) * n]
