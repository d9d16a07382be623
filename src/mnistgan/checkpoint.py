"""Resume state (atomic, pickle-free loading) and the generator export (safetensors + JSON)."""

from __future__ import annotations

import errno
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .config import Config, from_dict, to_dict
from .errors import MnistganError
from .files import atomic_dir, atomic_path, write_json

GENERATOR_FORMAT = "mnistgan-generator"
# what repairs a damaged generator/ folder: its run rewrites it from the last checkpoint
REPAIR = "rewrite it from its run with: mnistgan train --resume RUN_FOLDER"


# ----------------------------------------------------------------------------- resume state

def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write the resume state atomically: temp file, fsync, rename. A kill never corrupts `path`."""
    with atomic_path(path) as tmp:
        try:
            torch.save(state, tmp)
        except RuntimeError as e:  # torch's writer reports ENOSPC and friends as RuntimeError
            raise MnistganError(f"cannot write checkpoint {path} ({str(e).splitlines()[0][:120]}); "
                                f"free disk space; the previous checkpoint was kept") from None


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
        raise MnistganError(f"checkpoint {path} is corrupt or unsafe and was not loaded ({first[:200]})") from None
    if not isinstance(state, dict) or state.get("format") != "mnistgan-checkpoint":
        raise MnistganError(f"{path} is not an mnistgan checkpoint")
    problem = _checkpoint_problem(state)
    if problem:
        raise MnistganError(f"{path} is not an mnistgan checkpoint that can be resumed ({problem}); it is corrupt")
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


# ----------------------------------------------------------------------------- generator export

def export_generator(G: torch.nn.Module, cfg: Config, out_dir: Path, extra: dict | None = None) -> None:
    """Write out_dir/config.json + out_dir/model.safetensors, replacing out_dir atomically."""
    out_dir = Path(out_dir)
    meta = {"format": GENERATOR_FORMAT, "mnistgan_version": __version__, "config": to_dict(cfg), **(extra or {})}
    state = {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous()
             for k, v in G.state_dict().items()}
    with atomic_dir(out_dir) as tmp:
        try:
            save_file(state, str(tmp / "model.safetensors"), metadata={"format": GENERATOR_FORMAT})
        except SafetensorError as e:  # its writer reports ENOSPC/EACCES as "... (os error N)": make it an OSError
            m = re.search(r"os error (\d+)", str(e))
            raise OSError(int(m.group(1)) if m else errno.EIO, str(e)) from None
        write_json(tmp / "config.json", meta)


def read_generator(directory: str | os.PathLike) -> tuple[Config, dict, dict[str, torch.Tensor]]:
    """Read and validate an exported generator: (config, metadata, CPU state dict). No pickle."""
    d = Path(directory)
    if d.is_file() and d.name in ("config.json", "model.safetensors"):
        d = d.parent
    if (d / "generator" / "model.safetensors").is_file() and not (d / "model.safetensors").is_file():
        d = d / "generator"  # a run directory was given
    cfg_path, weights = d / "config.json", d / "model.safetensors"
    if not d.is_dir():
        raise MnistganError(f"generator folder {d} not found; pass a run's generator/ folder (or the run folder)")
    if not cfg_path.is_file() or not weights.is_file():
        raise MnistganError(f"{d} is not a generator folder: it needs config.json and model.safetensors")
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, >4300 digits, nesting
        raise MnistganError(f"{cfg_path} is corrupt ({type(e).__name__}); {REPAIR}") from None
    if not isinstance(meta, dict) or meta.get("format") != GENERATOR_FORMAT:
        raise MnistganError(f"{cfg_path} is not an mnistgan generator config")
    cfg = from_dict(meta.get("config"), source=str(cfg_path))
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise MnistganError(f"{weights} is corrupt ({str(e)[:120]}); {REPAIR}") from None
    for name, t in state.items():
        if t.is_floating_point() and t.dtype not in FLOAT_DTYPES or t.is_complex():
            raise MnistganError(f"{weights}: weight {name!r} has dtype {t.dtype}; expected float32; {REPAIR}")
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise MnistganError(f"{weights}: weight {name!r} holds NaN or Inf; the generator is broken")
    return cfg, meta, state


FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)  # what a generator's weights may be


def load_state_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str,
                      advice: str = REPAIR) -> None:
    """load_state_dict with a one-line error for missing, unexpected or mis-shaped weights."""
    check_state(module.state_dict(), state, source, advice)
    module.load_state_dict(state)


def check_state(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], source: str,
                advice: str = REPAIR) -> None:
    """Refuse `state` unless it has exactly the names, shapes and kinds (float or integer) of `own`.

    Only shapes and dtypes are read, so `own` may come from a module built on the meta device.
    """
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise MnistganError(f"{source} does not match its config (missing {missing[:3]}, unexpected "
                            f"{unexpected[:3]}); {advice}")
    for k, v in own.items():
        if tuple(v.shape) != tuple(state[k].shape):
            raise MnistganError(f"{source}: weight {k} has shape {tuple(state[k].shape)}, expected "
                                f"{tuple(v.shape)}; {advice}")
        if v.is_floating_point() != state[k].is_floating_point():
            raise MnistganError(f"{source}: weight {k} has dtype {state[k].dtype}, expected {v.dtype}; "
                                f"{advice}")
