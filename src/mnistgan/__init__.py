"""mnistgan: train, evaluate, sample and report GANs on MNIST-style 28x28 grayscale data.

The public API:
    train(config=None, preset=None, **settings) -> run folder
    load_generator(path) -> Generator with .predict(z) and .generate(n, seed)
    generate(path, n=25, seed=504, out=None) -> uint8 images (n, 28, 28)
    evaluate(generator=... | samples=..., n=10000, ...) -> metrics dict
    export(generator, fmt, out=None) -> files written
    report(paths, out="report", ...) -> {"html", "pdf", ...}

Each name is imported on first use (PEP 562), so `import mnistgan` and `mnistgan --help` load
neither torch nor matplotlib. docs/architecture.md shows the package's layers.
"""

from __future__ import annotations

import importlib

from .errors import MnistganError
from .version import __version__

_API = {  # public name -> the module that defines it
    "train": "mnistgan.training",
    "load_generator": "mnistgan.generator",
    "generate": "mnistgan.generator",
    "evaluate": "mnistgan.evaluator",
    "export": "mnistgan.exporting",
    "report": "mnistgan.reporting",
}
__all__ = [*_API, "MnistganError", "__version__"]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'mnistgan' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
