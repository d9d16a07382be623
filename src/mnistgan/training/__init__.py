"""Training: the loop (loop.py) and one step (step.py), the losses, D's view of its inputs
(augment.py), k-means clusters, resume state (state.py), what a run reports (monitor.py) and
writes (outputs.py, plots.py), several processes (distributed.py) and CUDA graphs (cudagraph.py).

    train(config=None, preset=None, **settings) -> run folder      (the Python API)
    run_training(cfg, out_dir, run_dir, resume, ...) -> run folder (the CLI and sweeps)
"""

from .api import train
from .loop import run_training

__all__ = ["run_training", "train"]
