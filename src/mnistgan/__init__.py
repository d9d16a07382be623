"""mnistgan: train, evaluate, sample and report GANs on MNIST-style 28x28 grayscale data.

Public API (imported lazily, so `import mnistgan` has no side effects):
    train(config=None, **overrides) -> run directory
    load_generator(path) -> Generator with .predict(z) and .generate(n, seed)
    generate(path, n=25, seed=504, out=None) -> uint8 images (n, 28, 28)
    evaluate(...) -> metrics dict
"""

__version__ = "0.1.0"
__all__ = ["train", "load_generator", "generate", "evaluate", "MnistganError", "__version__"]


def __getattr__(name):
    if name == "train":
        import importlib

        return importlib.import_module(".train", __name__)  # made callable by _Package.__setattr__ below
    if name in ("load_generator", "generate"):
        from . import sample
        return getattr(sample, name)
    if name == "evaluate":
        from .evaluate import evaluate
        return evaluate
    if name == "MnistganError":
        from .errors import MnistganError
        return MnistganError
    raise AttributeError(f"module 'mnistgan' has no attribute {name!r}")


# `mnistgan.train` and `mnistgan.evaluate` name both a function of the API and a submodule.
# Once a submodule is imported, Python binds the package attribute to the module, whatever
# __getattr__ returned; so the module itself is made callable, forwarding to the function.
_CALLABLE_MODULES = {"train": (".train", "train_api"), "evaluate": (".evaluate.api", "evaluate")}


def _make_submodules_callable() -> None:
    import importlib
    import sys
    import types

    class _CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            module, function = _CALLABLE_MODULES[self.__name__.rsplit(".", 1)[1]]
            return getattr(importlib.import_module(module, __name__), function)(*args, **kwargs)

    class _Package(types.ModuleType):
        def __setattr__(self, name, value):
            if name in _CALLABLE_MODULES and type(value) is types.ModuleType:
                value.__class__ = _CallableModule
            super().__setattr__(name, value)

    sys.modules[__name__].__class__ = _Package


_make_submodules_callable()
