"""Export a saved generator to ONNX, TorchScript, or Keras-style JSON + HDF5 weights.

Every export follows the contract of `Generator.predict`: input z float32 (N, z_dim),
output images float32 (N, 28, 28) in [0, 1], with a free batch size N. Each file is
written atomically and checked after writing: ONNX with onnxruntime and TorchScript with
torch.jit.load, against PyTorch's outputs on CHECK_N random z (max abs difference <= VERIFY_TOL).
The keras-h5 format is described in docs/export.md (and built in export_keras.py).

The export packages are optional: `pip install "mnistgan[onnx]"` or `"mnistgan[keras]"`.
"""

from __future__ import annotations

import importlib
import os
import warnings
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from .errors import MnistganError
from .files import write_with
from .sample import Generator, load_generator

FORMATS = ("onnx", "torchscript", "keras-h5")
FILE_NAMES = {"onnx": "generator.onnx", "torchscript": "generator.torchscript.pt", "keras-h5": "generator.h5"}
ONNX_OPSET = 18  # onnxruntime >= 1.14 runs it; the torch.export-based exporter's oldest well-tested opset
VERIFY_TOL = 1e-4  # max abs difference (images in [0, 1]) allowed between an export and PyTorch
CHECK_N = 64  # z per check: not the traced batch size (2), and enough to draw many clusters of a --clusters G


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency, or fail with one line saying which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MnistganError(f"{purpose} needs the '{module}' package: pip install \"mnistgan[{extra}]\"") from None


def is_conditional(gen: Generator) -> bool:
    """Conditional generators take (z, labels); the flag is absent from older configs."""
    return bool(getattr(gen.config.model, "conditional", False))


class ImageContract(nn.Module):
    """Wrap G so its output follows predict(): (N, 1, 28, 28) in [-1, 1] -> (N, 28, 28) in [0, 1]."""

    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.G(z) if labels is None else self.G(z, labels)
        return x.float().add(1).mul(0.5).clamp(0, 1).squeeze(1)  # same arithmetic as run_generator


def example_inputs(gen: Generator, n: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs for tracing and checking: z (n, z_dim) float32 [, labels (n,) int64]."""
    rng = np.random.RandomState(seed)
    z = torch.from_numpy(rng.normal(size=[n, gen.z_dim]).astype(np.float32))
    if not is_conditional(gen):
        return (z,)
    return z, torch.from_numpy(rng.randint(0, 10, size=n).astype(np.int64))


def input_names(gen: Generator) -> list[str]:
    return ["z", "labels"] if is_conditional(gen) else ["z"]


# ----------------------------------------------------------------------------- where files go

def generator_dir(path: str | os.PathLike) -> Path:
    """The generator folder that `read_generator` would load for `path` (a run folder is allowed)."""
    d = Path(path)
    if d.is_file() and d.name in ("config.json", "model.safetensors"):
        d = d.parent
    if (d / "generator" / "model.safetensors").is_file() and not (d / "model.safetensors").is_file():
        d = d / "generator"
    return d


def output_paths(generator: str | os.PathLike, fmt: str, out: Optional[str | os.PathLike]) -> list[Path]:
    """The files an export writes: into <run>/export/ by default, into folder `out`, or as file `out`.

    keras-h5 writes two files, the architecture (.json) then the weights (.h5), with one stem.
    """
    main_name = FILE_NAMES[fmt]
    if out is None:
        target = generator_dir(generator).resolve().parent / "export" / main_name
    else:
        out = Path(out)
        suffix = out.suffix.lower()
        known = {Path(n).suffix for n in FILE_NAMES.values()} | {".json"}
        if suffix == Path(main_name).suffix:
            target = out
        elif suffix in known:
            raise MnistganError(f"--out {out} does not fit --format {fmt}: give a folder or a "
                                f"*{Path(main_name).suffix} file name")
        else:
            target = out / main_name
    if fmt == "keras-h5":
        return [target.with_suffix(".json"), target]
    return [target]


# ----------------------------------------------------------------------------- the formats

def _max_diff(a: np.ndarray, b: np.ndarray, what: str) -> float:
    if a.shape != b.shape:
        raise MnistganError(f"{what} returned shape {a.shape}, expected {b.shape}; the export is broken")
    diff = float(np.abs(a.astype(np.float64) - b).max()) if a.size else 0.0
    if not diff <= VERIFY_TOL:  # also catches NaN
        raise MnistganError(f"{what} differs from PyTorch by {diff:.2e} (> {VERIFY_TOL}); nothing was written. "
                            f"Please report this with the generator's config.json")
    return diff


def _reference(gen: Generator, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
    with torch.no_grad():
        return ImageContract(gen.module).eval()(*inputs).numpy()


def write_onnx(gen: Generator, paths: list[Path]) -> str:
    """ONNX via torch.export (the supported exporter since torch 2.9; needs onnxscript), dynamic N."""
    for module in ("onnx", "onnxscript"):
        require(module, "onnx", "ONNX export")
    ort = require("onnxruntime", "onnx", "checking the ONNX export")
    names = input_names(gen)
    batch = torch.export.Dim("N", min=1)  # one symbol: z and labels share the batch size
    wrapper = ImageContract(gen.module).eval()
    diff = []

    def writer(tmp: Path) -> None:  # checked before it is renamed into place: a bad export leaves no file
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # exporter chatter (deprecations inside torch.export)
            torch.onnx.export(wrapper, example_inputs(gen, 2), str(tmp), input_names=names,
                              output_names=["images"], dynamic_shapes=tuple({0: batch} for _ in names),
                              opset_version=ONNX_OPSET, dynamo=True, external_data=False, verbose=False)
        importlib.import_module("onnx").checker.check_model(str(tmp))
        inputs = example_inputs(gen, CHECK_N, seed=1)
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = session.run(["images"], {k: v.numpy() for k, v in zip(names, inputs)})[0]
        diff.append(_max_diff(got, _reference(gen, inputs), "the ONNX model (onnxruntime)"))

    write_with(paths[0], writer)
    return f"checked with onnxruntime: max abs difference {diff[0]:.1e}"


def write_torchscript(gen: Generator, paths: list[Path]) -> str:
    """A traced ImageContract wrapper; load it with torch.jit.load, no mnistgan needed."""
    wrapper = ImageContract(gen.module).eval()
    diff = []

    def writer(tmp: Path) -> None:  # checked before it is renamed into place
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export, but still works
            with torch.no_grad():
                torch.jit.save(torch.jit.trace(wrapper, example_inputs(gen, 2)), str(tmp))
            loaded = torch.jit.load(str(tmp), map_location="cpu")
        inputs = example_inputs(gen, CHECK_N, seed=1)
        with torch.no_grad():
            got = loaded(*inputs).numpy()
        diff.append(_max_diff(got, _reference(gen, inputs), "the TorchScript model"))

    write_with(paths[0], writer)
    return f"checked with torch.jit.load: max abs difference {diff[0]:.1e}"


def write_keras_h5(gen: Generator, paths: list[Path]) -> str:
    from .export_keras import write_keras

    write_keras(gen, json_path=paths[0], h5_path=paths[1])
    return "architecture in the .json, weights in the .h5 (Keras 2 save_weights layout)"


WRITERS: dict[str, Callable[[Generator, list[Path]], str]] = {
    "onnx": write_onnx, "torchscript": write_torchscript, "keras-h5": write_keras_h5}
DEPENDENCIES = {"onnx": ("onnx", "onnx"), "torchscript": None, "keras-h5": ("h5py", "keras")}  # (module, extra)


def export(generator: str | os.PathLike, fmt: str, out: Optional[str | os.PathLike] = None,
           log: Callable[[str], None] = lambda m: None) -> list[Path]:
    """Export the generator at `generator` (folder or run folder) as `fmt`; return the files written."""
    if fmt not in FORMATS:
        raise MnistganError(f"unknown export format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    if DEPENDENCIES[fmt]:
        require(*DEPENDENCIES[fmt], f"{fmt} export")  # fail fast, before loading anything
    paths = output_paths(generator, fmt, out)
    gen = load_generator(generator)
    log(WRITERS[fmt](gen, paths))
    return paths
