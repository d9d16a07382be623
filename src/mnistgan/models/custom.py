"""Your own G and D in mnistgan's harness: `--model FILE.py:GClass,DClass` (or package.module:G,D),
or module instances through `mnistgan.train(generator=G, discriminator=D)`.

The classes are built with the arguments their constructors ask for by name (z_dim, img_dim,
img_shape, channels, n_classes or num_classes) plus `--model-arg NAME=VALUE`, then checked on a
probe batch and adapted to the loop's contract without editing them:

    G(z [, labels]) -> (N, 784), (N, 28, 28) or (N, 1, 28, 28); Tanh ([-1, 1]) or Sigmoid ([0, 1])
        -> AdaptedG: (N, 1, 28, 28) in [-1, 1]
    D(x [, labels]) on images (N, 1, 28, 28) or flat (N, 784); logits, or probabilities from a final
        nn.Sigmoid (for nn.BCELoss)  -> AdaptedD: logits (N,) (the Sigmoid's input: the same BCE,
        computed stably, and any --loss works)

Each problem is one MnistganError naming the class and what is wrong, raised before anything is
written. `notes` of the adapters say what was adapted, for the run's first lines.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from ..config import ModelConfig, custom_model_spec
from ..errors import MnistganError

SIDE = 28
PROBE_N = 4  # images in the probe batch (BatchNorm1d needs more than one)


@dataclass
class Classes:
    generator: type
    discriminator: type
    source: Optional[Path]  # the Python file that defines them, when there is one (copied into the run)


def load_classes(spec: str, fallback: Optional[Path] = None) -> Classes:
    """Import FILE.py:G,D or package.module:G,D; `fallback` is a copy of the file to use if FILE.py
    is gone (a resumed run keeps one)."""
    source, g_name, d_name = custom_model_spec(spec)
    if source == "__main__":
        raise MnistganError(
            f"{g_name} and {d_name} were trained as module instances from Python "
            "(mnistgan.train(generator=..., discriminator=...)); resume that run the same way"
        )
    if source.endswith(".py"):
        path = Path(source)
        if not path.is_file() and fallback is not None and fallback.is_file():
            path = fallback
        if not path.is_file():
            raise MnistganError(
                f"--model {spec}: {source} not found; give the path of the file that defines "
                f"{g_name} and {d_name}"
            )
        module = _import_file(path)
        where = path
    else:
        try:
            module = importlib.import_module(source)
        except Exception as e:  # the user's module: any error while importing it
            raise MnistganError(f"--model {spec}: cannot import {source} ({type(e).__name__}: {e})") from None
        where = Path(inspect.getsourcefile(module)) if getattr(module, "__file__", None) else None
    classes = [getattr(module, name, None) for name in (g_name, d_name)]
    for name, cls in zip((g_name, d_name), classes):
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            defined = sorted(
                n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, nn.Module)
            )
            what = "has no class" if cls is None else "has no nn.Module class"
            raise MnistganError(
                f"{source} {what} {name} (its nn.Module classes: {', '.join(defined) or 'none'})"
            )
    return Classes(classes[0], classes[1], where)


def _import_file(path: Path):
    name = f"mnistgan_user_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's file: any error while running it
        del sys.modules[name]
        line = f" (line {e.lineno})" if isinstance(e, SyntaxError) and e.lineno else ""
        raise MnistganError(f"cannot import {path}: {type(e).__name__}: {e}{line}") from None
    return module


def constructor_args(cls: type, cfg: ModelConfig) -> dict[str, Any]:
    """The arguments cls(...) gets: the config values its constructor asks for by name, and --model-arg."""
    c = cfg.channels
    offered = {"z_dim": cfg.z_dim, "img_dim": c * SIDE * SIDE, "img_shape": (c, SIDE, SIDE), "channels": c}
    if cfg.conditional:
        offered.update(n_classes=cfg.n_classes, num_classes=cfg.n_classes)
    params = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    args = {name: value for name, value in offered.items() if name in params}
    for name, value in cfg.model_args.items():
        if name not in params and not takes_any:
            raise MnistganError(
                f"{cls.__name__} takes no argument {name!r} (--model-arg {name}=...); its "
                f"arguments: {', '.join(n for n in params if n != 'self') or 'none'}"
            )
        args[name] = value
    missing = [
        n
        for n, p in params.items()
        if n != "self"
        and p.default is p.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and n not in args
    ]
    if missing:
        raise MnistganError(
            f"{cls.__name__} needs argument {missing[0]!r}: give --model-arg {missing[0]}=VALUE"
        )
    return args


def construct(cls: type, cfg: ModelConfig) -> nn.Module:
    args = constructor_args(cls, cfg)
    try:
        module = cls(**args)
    except Exception as e:  # the user's constructor
        shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
        raise MnistganError(f"{cls.__name__}({shown}) failed: {type(e).__name__}: {e}") from None
    if not isinstance(module, nn.Module):
        raise MnistganError(f"{cls.__name__}(...) is not an nn.Module")
    return module


def takes_labels(module: nn.Module) -> bool:
    """forward(x, labels): a second positional parameter."""
    params = [
        p
        for p in inspect.signature(module.forward).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return len(params) >= 2


def _check_labels(module: nn.Module, conditional: bool) -> None:
    name = type(module).__name__
    if conditional and not takes_labels(module):
        raise MnistganError(f"--conditional: {name}.forward must take the labels too, forward(x, labels)")
    if not conditional and takes_labels(module) and _label_required(module):
        raise MnistganError(f"{name}.forward needs labels: add --conditional, or give the labels a default")


def _label_required(module: nn.Module) -> bool:
    params = [
        p
        for p in inspect.signature(module.forward).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return params[1].default is inspect.Parameter.empty


def last_leaf(module: nn.Module, *inputs) -> tuple[Optional[str], Any]:
    """(name, output) of the module: and the name of the last leaf module its forward ran, found with
    hooks (None when it ends in a functional op whose result is not a leaf's output)."""
    order: list[tuple[str, Any]] = []
    hooks = [
        m.register_forward_hook(lambda _m, _a, out, n=name: order.append((n, out)))
        for name, m in module.named_modules()
        if not list(m.children())
    ]
    try:
        out = module(*inputs)
    finally:
        for h in hooks:
            h.remove()
    name = order[-1][0] if order and order[-1][1] is out else None
    return name, out


def leaf_sequence(module: nn.Module, *inputs) -> list[tuple[str, nn.Module]]:
    """The leaf modules the forward pass runs, in order (eval mode, no gradients)."""
    order: list[tuple[str, nn.Module]] = []
    hooks = [
        m.register_forward_hook(lambda m_, _a, _o, n=name: order.append((n, m_)))
        for name, m in module.named_modules()
        if not list(m.children())
    ]
    try:
        _probe(module, *inputs)
    finally:
        for h in hooks:
            h.remove()
    return order


def _probe(module: nn.Module, *inputs):
    """The module's output on a probe batch, in eval mode, without gradients; errors name the class."""
    was = module.training
    module.eval()
    try:
        with torch.no_grad():
            return last_leaf(module, *inputs)
    finally:
        module.train(was)


@dataclass
class Adaptation:
    notes: list[str] = field(default_factory=list)


class AdaptedG(nn.Module):
    """G(z, labels=None) -> (N, 1, 28, 28) in [-1, 1] from a user's generator."""

    def __init__(self, g: nn.Module, conditional: bool, from_unit: bool, channels: int = 1):
        super().__init__()
        self.g, self.conditional, self.from_unit, self.channels = g, conditional, from_unit, channels

    def forward(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.g(z, labels) if self.conditional else self.g(z)
        x = x.reshape(x.shape[0], self.channels, SIDE, SIDE)
        return x * 2 - 1 if self.from_unit else x


class AdaptedD(nn.Module):
    """D(x, labels=None) -> logits (N,) from a user's discriminator."""

    def __init__(self, d: nn.Module, conditional: bool, flat: bool):
        super().__init__()
        self.d, self.conditional, self.flat = d, conditional, flat

    def forward(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = x.flatten(1) if self.flat else x
        out = self.d(x, labels) if self.conditional else self.d(x)
        return out.reshape(x.shape[0])


def _probe_labels(cfg: ModelConfig) -> tuple:
    return (torch.arange(PROBE_N) % cfg.n_classes,) if cfg.conditional else ()


def adapt_generator(g: nn.Module, cfg: ModelConfig, notes: list[str]) -> AdaptedG:
    name = type(g).__name__
    _check_labels(g, cfg.conditional)
    try:
        leaf, out = _probe(
            g,
            torch.randn(PROBE_N, cfg.z_dim, generator=torch.Generator().manual_seed(0)),
            *_probe_labels(cfg),
        )
    except Exception as e:  # the user's forward
        raise MnistganError(
            f"{name} failed on z of shape ({PROBE_N}, {cfg.z_dim}): {type(e).__name__}: {e}"
        ) from None
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    c, flat = cfg.channels, cfg.channels * SIDE * SIDE
    if not isinstance(out, torch.Tensor) or out.shape[0] != PROBE_N or out[0].numel() != flat:
        raise MnistganError(
            f"{name} returned {shape} for {PROBE_N} z; expected (N, {flat}) or (N, {c}, 28, 28)"
        )
    if out.dim() == 2:
        notes.append(f"{name} returns flat images (N, {flat}): reshaped to (N, {c}, 28, 28)")
    last = dict(g.named_modules()).get(leaf) if leaf else None
    if isinstance(last, nn.Sigmoid):
        notes.append(f"{name} ends in Sigmoid (images in [0, 1]): mapped to [-1, 1] as 2x - 1")
        return AdaptedG(g, cfg.conditional, from_unit=True, channels=c)
    if not isinstance(last, nn.Tanh):
        lo, hi = float(out.min()), float(out.max())
        if not (torch.isfinite(out).all() and -1.0 - 1e-6 <= lo and hi <= 1.0 + 1e-6):
            raise MnistganError(
                f"{name}'s images lie in [{lo:.3g}, {hi:.3g}]; end it in nn.Tanh() (images in "
                f"[-1, 1]) or nn.Sigmoid() ([0, 1])"
            )
        notes.append(
            f"{name} does not end in nn.Tanh: its output, within [-1, 1] here, is taken as images in [-1, 1]"
        )
    return AdaptedG(g, cfg.conditional, from_unit=False, channels=c)


def adapt_discriminator(d: nn.Module, cfg: ModelConfig, notes: list[str]) -> AdaptedD:
    name = type(d).__name__
    _check_labels(d, cfg.conditional)
    images = torch.zeros(PROBE_N, cfg.channels, SIDE, SIDE)
    errors, flat, probed = [], False, None
    for flat_input in (False, True):
        try:
            probed = _probe(d, images.flatten(1) if flat_input else images, *_probe_labels(cfg))
            flat = flat_input
            break
        except Exception as e:  # the user's forward: try the other input shape
            errors.append(f"{type(e).__name__}: {e}")
    if probed is None:
        raise MnistganError(
            f"{name} takes neither images (N, {cfg.channels}, 28, 28) nor flat images "
            f"(N, {cfg.channels * SIDE * SIDE}): {errors[-1]}"
        )
    leaf, out = probed
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if not isinstance(out, torch.Tensor) or out.numel() != PROBE_N or out.shape[0] != PROBE_N:
        raise MnistganError(
            f"{name} returned {shape} for {PROBE_N} images; expected one value per image, (N,) or (N, 1)"
        )
    if flat:
        notes.append(f"{name} takes flat images: it is given (N, 784)")
    modules = dict(d.named_modules())
    if leaf and isinstance(modules[leaf], nn.Sigmoid):
        _replace(d, leaf, nn.Identity())
        notes.append(
            f"{name} ends in Sigmoid (probabilities, for nn.BCELoss): mnistgan reads the logit before it "
            "(the same BCE, computed stably; every --loss works on it)"
        )
    return AdaptedD(d, cfg.conditional, flat)


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, new)


def build_custom(
    cfg: ModelConfig, fallback: Optional[Path] = None
) -> tuple[nn.Module, nn.Module, list[str], Classes]:
    """The adapted G and D of a --model FILE.py:G,D config, and what was adapted."""
    classes = load_classes(cfg.model, fallback)
    notes: list[str] = []
    G = adapt_generator(construct(classes.generator, cfg), cfg, notes)
    D = adapt_discriminator(construct(classes.discriminator, cfg), cfg, notes)
    return G, D, notes, classes


def adapt_instances(G: nn.Module, D: nn.Module, cfg: ModelConfig) -> tuple[nn.Module, nn.Module, list[str]]:
    """mnistgan.train(generator=G, discriminator=D): the same checks and adapters for module instances."""
    for role, m in (("generator", G), ("discriminator", D)):
        if not isinstance(m, nn.Module):
            raise MnistganError(f"{role}= must be an nn.Module instance, got {type(m).__name__}")
    notes: list[str] = []
    return adapt_generator(G, cfg, notes), adapt_discriminator(D, cfg, notes), notes


def generator_only(cfg: ModelConfig, fallback: Optional[Path] = None) -> nn.Module:
    """The adapted G alone, for loading a saved custom generator with trust_code=True."""
    classes = load_classes(cfg.model, fallback)
    return adapt_generator(construct(classes.generator, cfg), cfg, [])
