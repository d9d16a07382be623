"""Sweeps: every combination of a settings grid for several seeds, through a shared work queue.

    sweep(grid, seeds, ...) -> sweep folder     (`mnistgan sweep`)
    join(sweep_dir, ...)                        (`mnistgan sweep --join`: another worker)

Modules: spec.py (parsing the grid and seeds), run.py (one run: train + evaluate), queue.py
(the Optuna work queue), results.py (results.csv / results.md), api.py (the two functions).
The sweep folder's layout is sweepdir.py's.
"""

from .api import join, sweep

__all__ = ["join", "sweep"]
