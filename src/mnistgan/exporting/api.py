"""Export a saved generator to ONNX, TorchScript, or Keras-style JSON + HDF5 weights.

Every export follows the contract of `Generator.predict`: input z float32 (N, z_dim),
output images float32 (N, 28, 28) in [0, 1], with a free batch size N. Each file is
written atomically and checked after writing: ONNX with onnxruntime and TorchScript with
torch.jit.load, against PyTorch's outputs on CHECK_N random z (max abs difference <= VERIFY_TOL).
The keras-h5 format is described in docs/export.md (and built in keras.py).

The export packages are optional: `pip install "mnistgan[onnx]"` or `"mnistgan[keras]"`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

from ..errors import MnistganError
from ..generator import Generator, load_generator
from ..rundir import generator_dir
from .keras import write_keras
from .require import require
from .traced import write_onnx, write_torchscript

FORMATS = ("onnx", "torchscript", "keras-h5")
FILE_NAMES = {"onnx": "generator.onnx", "torchscript": "generator.torchscript.pt", "keras-h5": "generator.h5"}


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
            raise MnistganError(
                f"--out {out} does not fit --format {fmt}: give a folder or a "
                f"*{Path(main_name).suffix} file name"
            )
        else:
            target = out / main_name
    if fmt == "keras-h5":
        return [target.with_suffix(".json"), target]
    return [target]


def write_keras_h5(gen: Generator, paths: list[Path]) -> str:
    write_keras(gen, json_path=paths[0], h5_path=paths[1])
    return "architecture in the .json, weights in the .h5 (Keras 2 save_weights layout)"


WRITERS: dict[str, Callable[[Generator, list[Path]], str]] = {
    "onnx": write_onnx,
    "torchscript": write_torchscript,
    "keras-h5": write_keras_h5,
}


DEPENDENCIES = {
    "onnx": ("onnx", "onnx"),
    "torchscript": None,
    "keras-h5": ("h5py", "keras"),
}  # (module, extra)


def export(
    generator: str | os.PathLike,
    fmt: str,
    out: Optional[str | os.PathLike] = None,
    log: Callable[[str], None] = lambda m: None,
) -> list[Path]:
    """Export the generator at `generator` (folder or run folder) as `fmt`; return the files written."""
    if fmt not in FORMATS:
        raise MnistganError(f"unknown export format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    if DEPENDENCIES[fmt]:
        require(*DEPENDENCIES[fmt], f"{fmt} export")  # fail fast, before loading anything
    paths = output_paths(generator, fmt, out)
    gen = load_generator(generator)
    log(WRITERS[fmt](gen, paths))
    return paths
