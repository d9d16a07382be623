"""Exports of a saved generator for other runtimes: ONNX and TorchScript (traced.py), Keras-style
generator.json + generator.h5 (keras.py), a static web page that runs it in the browser (web.py,
web_assets/); `export` (api.py) picks the format and the file names."""

from .api import FORMATS, export

__all__ = ["FORMATS", "export"]
