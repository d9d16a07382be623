"""Resume state: the checkpoint of a run (everything needed to continue bit-identically), written
atomically and loaded without unpickling code."""

from __future__ import annotations

import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from ..config import Config, to_dict
from ..errors import MnistganError
from ..files import atomic_path
from ..generator.format import load_state_strict
from .distributed import Dist, unwrap
from .monitor import Stats


@dataclass
class Run:
    """Everything one training run holds: models, optimisers, where it is, where it writes."""

    cfg: Config
    dd: Dist
    device: torch.device
    amp: Any
    run_dir: Path
    data: Any
    G: torch.nn.Module
    D: torch.nn.Module
    G_ema: Optional[torch.nn.Module]
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    fixed_z: torch.Tensor
    fixed_y: Optional[torch.Tensor]
    monitor: Any = None
    epoch: int = 1
    batch: int = 0  # next batch of `epoch`
    step: int = 0
    images: int = 0
    train_time: float = 0.0  # seconds of training steps (no sampling/evaluation/checkpoints)
    epoch_stats: Any = None
    source: Optional[Path] = None  # the Python file of your own G and D (--model FILE.py:G,D)

    @property
    def G_show(self) -> torch.nn.Module:
        """What samples, grids and the export use: G_ema when it is on."""
        return self.G_ema if self.G_ema is not None else unwrap(self.G)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write the resume state atomically: temp file, fsync, rename. A kill never corrupts `path`."""
    with atomic_path(path) as tmp:
        try:
            torch.save(state, tmp)
        except RuntimeError as e:  # torch's writer reports ENOSPC and friends as RuntimeError
            raise MnistganError(
                f"cannot write checkpoint {path} ({str(e).splitlines()[0][:120]}); "
                f"free disk space; the previous checkpoint was kept"
            ) from None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load resume state without unpickling code (weights_only=True refuses arbitrary objects)."""
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": we report the refusal ourselves
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MnistganError(f"checkpoint {path} not found") from None
    except Exception as e:  # UnpicklingError, RuntimeError (zip), EOFError: refuse, never execute
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MnistganError(
            f"checkpoint {path} is corrupt or unsafe and was not loaded ({first[:200]})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != "mnistgan-checkpoint":
        raise MnistganError(f"{path} is not an mnistgan checkpoint")
    problem = _checkpoint_problem(state)
    if problem:
        raise MnistganError(
            f"{path} is not an mnistgan checkpoint that can be resumed ({problem}); it is corrupt"
        )
    return state


def _checkpoint_problem(state: dict) -> str | None:
    """What is missing or mistyped in a resume state (what train() reads from it), or None."""
    for key in ("epoch", "batch", "step", "images"):
        v = state.get(key)
        if type(v) is not int or v < 0:
            return f"{key} is {v!r}, expected a count"
    if type(state.get("train_time")) not in (int, float):
        return "train_time is not a number"
    for key in ("G", "D", "G_ema"):
        part = state.get(key)
        if not isinstance(part, dict) or not all(isinstance(t, torch.Tensor) for t in part.values()):
            return f"{key} is not a dict of tensors"
    if not state["G"] or not state["D"]:
        return "G or D holds no weights"
    for key in ("opt_g", "opt_d"):
        if not isinstance(state.get(key), dict):
            return f"{key} is not an optimiser state"
    stats = state.get("epoch_stats")
    if not isinstance(stats, list) or len(stats) != 6 or not all(type(x) in (int, float) for x in stats):
        return "epoch_stats is not a list of 6 numbers"
    rng = state.get("rng_cpu")
    if not isinstance(rng, torch.Tensor) or rng.dtype != torch.uint8 or rng.dim() != 1:
        return "rng_cpu is not a byte tensor"
    return None


def latest_checkpoint(run_dir: Path) -> dict[str, Any]:
    """The newest loadable checkpoint of a run: last.pt, else the newest epoch_*.pt."""
    ckdir = run_dir / "checkpoints"
    candidates = [ckdir / "last.pt"] + sorted(ckdir.glob("epoch_*.pt"), reverse=True)
    errors = []
    for path in candidates:
        if path.is_file():
            try:
                return load_checkpoint(path)
            except MnistganError as e:
                errors.append(str(e))
    detail = f" ({errors[0]})" if errors else ""
    raise MnistganError(f"no usable checkpoint in {ckdir}{detail}; the run cannot be resumed")


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    epochs = sorted((run_dir / "checkpoints").glob("epoch_*.pt"))
    for old in epochs[: max(0, len(epochs) - keep)]:
        old.unlink(missing_ok=True)


def restore(r: Run, state: dict) -> None:
    source = f"the checkpoint of {r.run_dir}"
    advice = "it cannot be resumed; start a new run"
    load_state_strict(r.G, state["G"], source, advice)
    load_state_strict(r.D, state["D"], source, advice)
    if r.G_ema is not None:
        load_state_strict(r.G_ema, state["G_ema"], source, advice)
    try:
        r.opt_g.load_state_dict(state["opt_g"])
        r.opt_d.load_state_dict(state["opt_d"])
    except (ValueError, KeyError, RuntimeError):
        raise MnistganError(
            f"{source} holds optimiser state that does not fit its config; it cannot be resumed"
        ) from None
    r.epoch, r.batch, r.step = state["epoch"], state["batch"], state["step"]
    r.images, r.train_time = state["images"], state["train_time"]
    r.epoch_stats = Stats(r.device, state["epoch_stats"])
    torch.set_rng_state(state["rng_cpu"])
    if r.device.type == "cuda" and state.get("rng_cuda"):
        torch.cuda.set_rng_state_all(state["rng_cuda"])


def save_state(r: Run, name: str = "last.pt") -> None:
    """The resume checkpoint (rank 0 only): everything needed to continue bit-identically."""
    if not r.dd.main:
        return
    save_checkpoint(
        r.run_dir / "checkpoints" / name,
        {
            "format": "mnistgan-checkpoint",
            "version": 1,
            "config": to_dict(r.cfg),
            "epoch": r.epoch,
            "batch": r.batch,
            "step": r.step,
            "images": r.images,
            "train_time": r.train_time,
            "G": unwrap(r.G).state_dict(),
            "D": unwrap(r.D).state_dict(),
            "clusters": r.data.labels.to("cpu", torch.int16) if r.cfg.model.clusters else None,
            "G_ema": r.G_ema.state_dict() if r.G_ema is not None else {},
            "opt_g": r.opt_g.state_dict(),
            "opt_d": r.opt_d.state_dict(),
            "epoch_stats": r.epoch_stats.values(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if r.device.type == "cuda" else [],
        },
    )


def link_last(run_dir: Path) -> None:
    """Point checkpoints/last.pt at the newest epoch checkpoint (hard link, atomic rename)."""
    ckdir = run_dir / "checkpoints"
    newest = sorted(ckdir.glob("epoch_*.pt"))[-1]
    tmp = ckdir / ".last.pt.link"
    tmp.unlink(missing_ok=True)
    try:
        os.link(newest, tmp)
    except OSError:  # a file system without hard links
        shutil.copyfile(newest, tmp)
    os.replace(tmp, ckdir / "last.pt")
