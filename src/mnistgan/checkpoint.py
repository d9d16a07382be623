"""Resume state (atomic, pickle-free loading) and the generator export (safetensors + JSON)."""

from __future__ import annotations

import json
import os
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
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MnistganError(f"checkpoint {path} not found") from None
    except Exception as e:  # UnpicklingError, RuntimeError (zip), EOFError: refuse, never execute
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MnistganError(f"checkpoint {path} is corrupt or unsafe and was not loaded ({first[:200]})") from None
    if not isinstance(state, dict) or state.get("format") != "mnistgan-checkpoint":
        raise MnistganError(f"{path} is not an mnistgan checkpoint")
    return state


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
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": GENERATOR_FORMAT})
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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MnistganError(f"{cfg_path} is corrupt ({type(e).__name__}); re-export the generator") from None
    if not isinstance(meta, dict) or meta.get("format") != GENERATOR_FORMAT:
        raise MnistganError(f"{cfg_path} is not an mnistgan generator config")
    cfg = from_dict(meta.get("config"), source=str(cfg_path))
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise MnistganError(f"{weights} is corrupt ({str(e)[:120]}); re-export the generator") from None
    for name, t in state.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise MnistganError(f"{weights}: weight {name} holds NaN or Inf; the generator is broken")
    return cfg, meta, state


def load_state_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """load_state_dict with a one-line error for missing, unexpected or mis-shaped weights."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise MnistganError(f"{source} does not match its config (missing {missing[:3]}, unexpected "
                            f"{unexpected[:3]}); re-export the generator")
    for k, v in own.items():
        if tuple(v.shape) != tuple(state[k].shape):
            raise MnistganError(f"{source}: weight {k} has shape {tuple(state[k].shape)}, expected "
                                f"{tuple(v.shape)}; re-export the generator")
    module.load_state_dict(state)
