"""The saved generator: a folder with config.json (the run's config and metadata) and
model.safetensors (G's weights, float32). Loading it never unpickles code."""

from __future__ import annotations

import copy
import errno
import json
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Optional

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..config import Config, ModelConfig, custom_model_spec, from_dict, to_dict
from ..errors import MnistganError
from ..files import atomic_dir, write_json
from ..rundir import generator_dir
from ..version import __version__

GENERATOR_FORMAT = "mnistgan-generator"
TRACED = "model.torchscript.pt"  # your own G's traced graph (--model FILE.py:G,D)
SOURCE = "source"  # a copy of your own G's Python file, for reference
# what repairs a damaged generator/ folder: its run rewrites it from the last checkpoint
REPAIR = "rewrite it from its run with: mnistgan train --resume RUN_FOLDER"


def save_generator(
    G: torch.nn.Module, cfg: Config, out_dir: Path, extra: dict | None = None, source: Optional[Path] = None
) -> None:
    """Write out_dir/config.json + out_dir/model.safetensors, replacing out_dir atomically. Your own G
    (--model FILE.py:G,D) also gets its traced graph (model.torchscript.pt: loads without running your
    Python code) and a copy of its source file (source/FILE.py, for reference)."""
    out_dir = Path(out_dir)
    meta = {
        "format": GENERATOR_FORMAT,
        "mnistgan_version": __version__,
        "config": to_dict(cfg),
        **(extra or {}),
    }
    state = {
        k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous()
        for k, v in G.state_dict().items()
    }
    traced = trace_generator(G, cfg.model) if custom_model_spec(cfg.model.model) else None
    with atomic_dir(out_dir) as tmp:
        try:
            save_file(state, str(tmp / "model.safetensors"), metadata={"format": GENERATOR_FORMAT})
        except SafetensorError as e:  # its writer reports ENOSPC/EACCES as "... (os error N)": an OSError
            m = re.search(r"os error (\d+)", str(e))
            raise OSError(int(m.group(1)) if m else errno.EIO, str(e)) from None
        write_json(tmp / "config.json", meta)
        if traced is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.jit's deprecation notice: the format stays readable
                torch.jit.save(traced, str(tmp / TRACED))
            if source is not None and source.is_file():
                (tmp / SOURCE).mkdir()
                shutil.copyfile(source, tmp / SOURCE / source.name)


def trace_generator(G: torch.nn.Module, mc: ModelConfig) -> torch.jit.ScriptModule:
    """G(z [, labels]) traced on a CPU copy in eval mode, and checked on another batch size."""
    name = type(getattr(G, "g", G)).__name__
    G = copy.deepcopy(G).to("cpu").float().eval()

    def inputs(n: int) -> tuple:
        z = torch.randn(n, mc.z_dim, generator=torch.Generator().manual_seed(n))
        return (z, torch.arange(n) % mc.n_classes) if mc.conditional else (z,)

    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings: the check below decides
            traced = torch.jit.trace(G, inputs(2), check_trace=False)
            check = inputs(5)
            diff = float((traced(*check) - G(*check)).abs().max())
    except Exception as e:  # the user's forward under the tracer
        raise MnistganError(
            f"cannot save {name}: tracing its forward failed ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:200]})"
        ) from None
    if not diff <= 1e-5:
        raise MnistganError(
            f"cannot save {name}: its traced graph differs from it by {diff:.2g} on another "
            "batch size; its forward must not fix the batch size or branch on tensor values"
        )
    return traced


def load_traced(directory: Path) -> torch.nn.Module:
    """A saved custom generator's traced graph: no Python code of the user runs."""
    path = Path(directory) / TRACED
    if not path.is_file():
        raise MnistganError(
            f"{directory} holds your own generator but not its traced graph {TRACED}; {REPAIR}"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit's deprecation notice
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # RuntimeError (zip, format) and friends: refuse
        raise MnistganError(f"{path} is corrupt ({str(e).splitlines()[0][:120]}); {REPAIR}") from None


def read_generator(directory: str | os.PathLike) -> tuple[Config, dict, dict[str, torch.Tensor]]:
    """Read and validate an exported generator: (config, metadata, CPU state dict). No pickle."""
    d = generator_dir(directory)  # a run folder, or one of the generator's files, is allowed
    cfg_path, weights = d / "config.json", d / "model.safetensors"
    if not d.is_dir():
        raise MnistganError(
            f"generator folder {d} not found; pass a run's generator/ folder (or the run folder)"
        )
    if not cfg_path.is_file() or not weights.is_file():
        raise MnistganError(f"{d} is not a generator folder: it needs config.json and model.safetensors")
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (
        OSError,
        ValueError,
        RecursionError,
    ) as e:  # JSONDecodeError, UnicodeDecodeError, >4300 digits, nesting
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


FLOAT_DTYPES = (
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.float64,
)  # what a generator's weights may be


def load_state_strict(
    module: torch.nn.Module, state: dict[str, torch.Tensor], source: str, advice: str = REPAIR
) -> None:
    """load_state_dict with a one-line error for missing, unexpected or mis-shaped weights."""
    check_state(module.state_dict(), state, source, advice)
    module.load_state_dict(state)


def check_state(
    own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], source: str, advice: str = REPAIR
) -> None:
    """Refuse `state` unless it has exactly the names, shapes and kinds (float or integer) of `own`.

    Only shapes and dtypes are read, so `own` may come from a module built on the meta device.
    """
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise MnistganError(
            f"{source} does not match its config (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}); {advice}"
        )
    for k, v in own.items():
        if tuple(v.shape) != tuple(state[k].shape):
            raise MnistganError(
                f"{source}: weight {k} has shape {tuple(state[k].shape)}, expected {tuple(v.shape)}; {advice}"
            )
        if v.is_floating_point() != state[k].is_floating_point():
            raise MnistganError(
                f"{source}: weight {k} has dtype {state[k].dtype}, expected {v.dtype}; {advice}"
            )
