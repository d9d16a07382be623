"""Export a saved generator to ONNX, TorchScript, Keras-style JSON + HDF5 weights, or a web page.

Every export follows the contract of `Generator.predict`: input z float32 (N, z_dim),
output images float32 (N, 28, 28) in [0, 1], with a free batch size N. Each file is
written atomically and checked after writing: ONNX with onnxruntime and TorchScript with
torch.jit.load, against PyTorch's outputs on CHECK_N random z (max abs difference <= VERIFY_TOL).
The keras-h5 format is described in docs/export.md (and built in keras.py). The web format
writes a folder, not a file: a static page that runs the generator in the browser (web.py).

The export packages are optional: `pip install "mnistgan[onnx]"` or `"mnistgan[keras]"`.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable, Optional

from ..errors import MnistganError
from ..generator import Generator, load_generator
from ..rundir import generator_dir, run_dir_of
from .keras import write_keras
from .require import require
from .traced import write_onnx, write_torchscript
from .web import SITE_FILES, write_web

FORMATS = ("onnx", "torchscript", "keras-h5", "web")
FILE_NAMES = {"onnx": "generator.onnx", "torchscript": "generator.torchscript.pt", "keras-h5": "generator.h5"}
WEB_DIR = "web"  # --format web's folder inside <run>/export/


def output_paths(generator: str | os.PathLike, fmt: str, out: Optional[str | os.PathLike]) -> list[Path]:
    """The files an export writes: into <run>/export/ by default, into folder `out`, or as file `out`.

    keras-h5 writes two files, the architecture (.json) then the weights (.h5), with one stem.
    web writes one folder (the site): <run>/export/web/ by default, else the folder `out`.
    """
    if fmt == "web":
        return [site_dir(generator, out)]
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


def site_dir(generator: str | os.PathLike, out: Optional[str | os.PathLike]) -> Path:
    """--format web's folder. It is replaced as a whole, so an existing one must be empty or a site."""
    if out is None:
        return generator_dir(generator).resolve().parent / "export" / WEB_DIR
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MnistganError(f"--out {out} is a file; --format web writes a folder (give a new folder name)")
    if out.is_dir() and any(out.iterdir()) and not all((out / name).is_file() for name in SITE_FILES):
        raise MnistganError(
            f"--out {out} is a folder with other files in it; --format web replaces its folder as a "
            "whole, so give a new or empty folder (or an earlier web export)"
        )
    return out


def write_keras_h5(gen: Generator, paths: list[Path]) -> str:
    write_keras(gen, json_path=paths[0], h5_path=paths[1])
    return "architecture in the .json, weights in the .h5 (Keras 2 save_weights layout)"


def write_web_site(gen: Generator, paths: list[Path], name: Optional[str] = None) -> str:
    return write_web(gen, paths[0], name)


WRITERS: dict[str, Callable[[Generator, list[Path]], str]] = {
    "onnx": write_onnx,
    "torchscript": write_torchscript,
    "keras-h5": write_keras_h5,
    "web": write_web_site,
}


DEPENDENCIES = {
    "onnx": ("onnx", "onnx"),
    "torchscript": None,
    "keras-h5": ("h5py", "keras"),
    "web": None,
}  # (module, extra)


def export(
    generator: str | os.PathLike,
    fmt: str,
    out: Optional[str | os.PathLike] = None,
    log: Callable[[str], None] = lambda m: None,
    trust_code: bool = False,
) -> list[Path]:
    """Export the generator at `generator` (folder or run folder) as `fmt`; return the files written
    (for web: the site's folder)."""
    if fmt not in FORMATS:
        raise MnistganError(f"unknown export format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    if DEPENDENCIES[fmt]:
        require(*DEPENDENCIES[fmt], f"{fmt} export")  # fail fast, before loading anything
    paths = output_paths(generator, fmt, out)
    gen = load_generator(generator, trust_code=trust_code)  # your own G: its class only when trusted
    writer = WRITERS[fmt]
    if fmt == "web":  # the page shows the run's name, which only the generator's path tells
        run = run_dir_of(generator)
        writer = functools.partial(write_web_site, name=run.resolve().name if run else None)
    log(writer(gen, paths))
    return paths
