"""The whole training step as one CUDA graph (`--cuda-graphs`, on by default on CUDA).

At MNIST sizes a GAN step is a few hundred tiny kernels; on a GPU, launching them from Python
costs more than running them. Capturing the step once (G forward, D update with its fused
Adam, G update with its fused Adam) and replaying it makes each step one launch
(docs/performance.md, "CUDA graphs"). This follows PyTorch's whole-network capture recipe:
a few eager warm-up steps on a side stream, `torch.cuda.graph` capture, then `replay()` with
the batch and the noise copied into static input tensors. The noise z is drawn outside the
graph with the same call the eager step makes, so a replayed step computes what the eager step
would, up to summation order (tests/test_cuda.py: losses within 1e-3 over 8 steps).

Used only where the replay is the same computation: one process (no DDP), a GAN (not the VAE), one G update
per D update, no instance noise (its strength changes every step), no gradient or R1 penalty
(double backward), no dropout or DiffAugment... those draw random numbers inside the step,
which a graph supports, but then replay and eager differ, so they stay eager for now. A
partial last batch runs eagerly. If capture fails, the run says so once and goes on eagerly.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from ..config import Config, custom_model_spec


def graph_blockers(cfg: Config, device: torch.device, world: int) -> list[str]:
    """Why the step cannot be captured (empty: it can)."""
    m, lc = cfg.model, cfg.loss
    return [
        reason
        for reason, bad in [
            ("not on CUDA", device.type != "cuda"),
            ("--no-cuda-graphs", not cfg.train.cuda_graphs),
            ("several processes (DDP)", world > 1),
            ("the VAE", m.model == "vae"),
            ("--n-critic > 1", lc.n_critic != 1),
            ("--instance-noise", lc.instance_noise > 0),
            ("a gradient penalty (wgan-gp, --r1-weight)", lc.loss == "wgan-gp" or lc.r1_weight > 0),
            ("--dropout / --diffaug (random numbers inside the step)", m.dropout > 0 or bool(lc.diffaug)),
            ("--deterministic", cfg.train.deterministic),
            ("your own G and D (--model FILE.py:G,D)", custom_model_spec(m.model) is not None),
            (
                "--lr-tail (a captured step keeps the learning rate it was captured with)",
                cfg.optim.lr_tail > 0,
            ),
        ]
        if bad
    ]


class GraphedStep:
    """step(real, y, step, progress) with the same results as `eager`, replayed from a CUDA graph.

    eager(real, y, step, progress, z) is the plain step (train.make_step). Outputs of a replay
    are static tensors overwritten by the next replay: the caller consumes them before then
    (Stats.add accumulates them on the device, in stream order).
    """

    def __init__(
        self, eager: Callable, batch: int, z_dim: int, device: torch.device, log=print, warmup: int = 3
    ):
        self.eager, self.batch, self.z_dim, self.device = eager, batch, z_dim, device
        self.log, self.warmup, self.done = log, warmup, 0
        self.graph: Optional[torch.cuda.CUDAGraph] = None
        self.failed = False
        self.static: dict = {}

    def __call__(self, real, y, step: int, progress: float):
        z = torch.randn(real.shape[0], self.z_dim, device=self.device)  # as the eager step draws it
        if self.failed or real.shape[0] != self.batch:
            return self.eager(real, y, step, progress, z)
        if self.done < self.warmup:  # eager steps on a side stream: lazy inits, cuDNN autotuning, Adam state
            self.done += 1
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                out = self.eager(real, y, step, progress, z)
            torch.cuda.current_stream(self.device).wait_stream(side)
            return out
        if self.graph is None:
            self.capture(real, y, step, progress)
            if self.failed:
                return self.eager(real, y, step, progress, z)
        s = self.static
        s["real"].copy_(real)
        s["z"].copy_(z)
        if y is not None:
            s["y"].copy_(y)
        self.graph.replay()
        return s["out"]

    def capture(self, real, y, step: int, progress: float) -> None:
        s = self.static
        s["real"], s["z"] = real.clone(), torch.empty(self.batch, self.z_dim, device=self.device)
        s["y"] = None if y is None else y.clone()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                s["out"] = self.eager(s["real"], s["y"], step, progress, s["z"])
        except RuntimeError as e:  # an op that cannot be captured: say so once, stay eager
            self.failed = True
            self.log(f"CUDA graph capture failed ({str(e).splitlines()[0][:200]}); training on without it")
            return
        self.graph = graph


def maybe_graphed(
    step: Callable, cfg: Config, device: torch.device, world: int, batch: int, log=print
) -> Callable:
    """The step, captured as a CUDA graph where `graph_blockers` finds nothing in the way."""
    if graph_blockers(cfg, device, world):
        return step
    return GraphedStep(step, batch, cfg.model.z_dim, device, log)
