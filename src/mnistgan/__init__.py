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

        return importlib.import_module(".train", __name__)  # made callable by _Package.__setattr__
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


def _make_train_callable() -> None:
    """Let `mnistgan.train(...)` and `from mnistgan import train; train(...)` call train_api.

    `mnistgan.train` names both the function and the submodule: once anything imports the submodule,
    Python binds the package attribute to the module, whatever __getattr__ returned. So the module is
    made callable (forwarding to train_api) the moment it is bound, in whatever order imports happen.
    """
    import sys
    import types

    class _CallableTrain(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return self.train_api(*args, **kwargs)

    class _Package(types.ModuleType):
        def __setattr__(self, name, value):
            if name == "train" and type(value) is types.ModuleType:
                value.__class__ = _CallableTrain
            super().__setattr__(name, value)

    sys.modules[__name__].__class__ = _Package


_make_train_callable()
