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
        from .train import train_api
        return train_api
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
