"""Optional dependencies of the exports, imported when an export needs them."""

from __future__ import annotations

import importlib

from ..errors import MnistganError


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency, or fail with one line saying which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MnistganError(
            f"{purpose} needs the '{module}' package: pip install \"mnistgan[{extra}]\""
        ) from None
