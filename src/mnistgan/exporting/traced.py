"""ONNX and TorchScript: the generator as a traced graph, z (N, z_dim) [, labels (N,)] -> images
(N, 28, 28) in [0, 1], with a free batch size. Each file is checked after writing (onnxruntime,
torch.jit.load) against PyTorch's outputs, and only then renamed into place."""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..errors import MnistganError
from ..files import write_with
from ..generator import Generator
from ..models.layers import to_unit_interval
from .require import require

ONNX_OPSET = 18  # onnxruntime >= 1.14 runs it; the torch.export-based exporter's oldest well-tested opset
VERIFY_TOL = 1e-4  # max abs difference (images in [0, 1]) allowed between an export and PyTorch
CHECK_N = 64  # z per check: not the traced batch size (2), and enough to draw many clusters of a --clusters G


class ImageContract(nn.Module):
    """Wrap G so its output follows predict(): (N, 1, 28, 28) in [-1, 1] -> (N, 28, 28) in [0, 1];
    colour (N, 3, 28, 28) keeps its channels."""

    def __init__(self, G: nn.Module, channels: int = 1):
        super().__init__()
        self.G, self.channels = G, channels

    def forward(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = to_unit_interval(self.G(z) if labels is None else self.G(z, labels))  # as run_generator
        return x.squeeze(1) if self.channels == 1 else x


def example_inputs(gen: Generator, n: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs for tracing and checking: z (n, z_dim) float32 [, labels (n,) int64]."""
    rng = np.random.RandomState(seed)
    z = torch.from_numpy(rng.normal(size=[n, gen.z_dim]).astype(np.float32))
    if not gen.conditional:
        return (z,)
    return z, torch.from_numpy(rng.randint(0, 10, size=n).astype(np.int64))


def input_names(gen: Generator) -> list[str]:
    return ["z", "labels"] if gen.conditional else ["z"]


def max_diff(a: np.ndarray, b: np.ndarray, what: str) -> float:
    if a.shape != b.shape:
        raise MnistganError(f"{what} returned shape {a.shape}, expected {b.shape}; the export is broken")
    diff = float(np.abs(a.astype(np.float64) - b).max()) if a.size else 0.0
    if not diff <= VERIFY_TOL:  # also catches NaN
        raise MnistganError(
            f"{what} differs from PyTorch by {diff:.2e} (> {VERIFY_TOL}); nothing was written. "
            f"Please report this with the generator's config.json"
        )
    return diff


def reference_images(gen: Generator, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
    with torch.no_grad():
        return ImageContract(gen.module, gen.channels).eval()(*inputs).numpy()


def write_onnx(gen: Generator, paths: list[Path]) -> str:
    """ONNX via torch.export (the supported exporter since torch 2.9; needs onnxscript), dynamic N."""
    for module in ("onnx", "onnxscript"):
        require(module, "onnx", "ONNX export")
    ort = require("onnxruntime", "onnx", "checking the ONNX export")
    names = input_names(gen)
    batch = torch.export.Dim("N", min=1)  # one symbol: z and labels share the batch size
    wrapper = ImageContract(gen.module, gen.channels).eval()
    diff = []

    def writer(tmp: Path) -> None:  # checked before it is renamed into place: a bad export leaves no file
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # exporter chatter (deprecations inside torch.export)
            if isinstance(gen.module, torch.jit.ScriptModule):  # your own G, loaded as its traced graph:
                export_traced_graph(wrapper, gen, names, tmp)  # torch.export cannot read TorchScript
            else:
                torch.onnx.export(
                    wrapper,
                    example_inputs(gen, 2),
                    str(tmp),
                    input_names=names,
                    output_names=["images"],
                    dynamic_shapes=tuple({0: batch} for _ in names),
                    opset_version=ONNX_OPSET,
                    dynamo=True,
                    external_data=False,
                    verbose=False,
                )
        importlib.import_module("onnx").checker.check_model(str(tmp))
        inputs = example_inputs(gen, CHECK_N, seed=1)
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = session.run(["images"], {k: v.numpy() for k, v in zip(names, inputs)})[0]
        diff.append(max_diff(got, reference_images(gen, inputs), "the ONNX model (onnxruntime)"))

    write_with(paths[0], writer)
    return f"checked with onnxruntime: max abs difference {diff[0]:.1e}"


def export_traced_graph(wrapper: nn.Module, gen: Generator, names: list[str], path: Path) -> None:
    """ONNX of a generator loaded as a TorchScript graph: the contract traced around it, then
    torch.onnx's TorchScript-based exporter, with a free batch size."""
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, example_inputs(gen, 2), check_trace=False)
    axes = {name: {0: "N"} for name in [*names, "images"]}
    torch.onnx.export(
        traced,
        example_inputs(gen, 2),
        str(path),
        input_names=names,
        output_names=["images"],
        dynamic_axes=axes,
        opset_version=ONNX_OPSET,
        dynamo=False,
    )


def write_torchscript(gen: Generator, paths: list[Path]) -> str:
    """A traced ImageContract wrapper; load it with torch.jit.load, no mnistgan needed."""
    wrapper = ImageContract(gen.module, gen.channels).eval()
    diff = []

    def writer(tmp: Path) -> None:  # checked before it is renamed into place
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # torch.jit is deprecated in favour of torch.export, but still works
            with torch.no_grad():
                torch.jit.save(torch.jit.trace(wrapper, example_inputs(gen, 2)), str(tmp))
            loaded = torch.jit.load(str(tmp), map_location="cpu")
        inputs = example_inputs(gen, CHECK_N, seed=1)
        with torch.no_grad():
            got = loaded(*inputs).numpy()
        diff.append(max_diff(got, reference_images(gen, inputs), "the TorchScript model"))

    write_with(paths[0], writer)
    return f"checked with torch.jit.load: max abs difference {diff[0]:.1e}"
