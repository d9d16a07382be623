"""The web export: a static folder whose index.html runs the generator in the browser, offline.

    SITE/index.html        the page (samples, seed, interpolation, digit picker, the run's settings)
    SITE/mnistgan-web.css  its style
    SITE/mnistgan-web.js   the runtime: the few layers mnistgan's generators use, a WebAssembly SIMD
                           kernel inlined as base64, and numpy's RandomState(seed).normal
    SITE/page.js           the page's behaviour
    SITE/model.js          window.MNISTGAN_MODEL = {ops, weights (float32, base64), run, test}

Every file is a classic <script> or stylesheet (no fetch, no ES modules), so the page works opened
from disk (file://) as well as served over HTTP. The files other than model.js are copied from
web_assets/. docs/export.md says why the runtime is hand-written rather than onnxruntime-web.

model.js describes G as a list of ops over channels-last (HWC) activations: BatchNorm is folded
into the Linear or ConvTranspose2d before it, and the DCGAN's fc rows are permuted from PyTorch's
(c, h, w) order to (h, w, c), so a convolution's inner loop is a dot product over channels. The
ops are read off the loaded Generator's modules, as the keras-h5 export does; a layer it has no
op for is refused in one line naming the layer.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from ..config import Config
from ..errors import MnistganError
from ..files import atomic_dir
from ..generator import Generator
from ..generator.sample import COURSE_SEED, to_uint8
from ..models import ClusterG, ConditionalG, default_of
from ..models.dcgan import DCGANGenerator
from ..models.layers import N_CLASSES
from ..models.mlp import MLPGenerator
from ..rundir import default_name
from ..version import __version__

FORMAT = "mnistgan-web-1"  # model.js's layout; mnistgan-web.js refuses any other
ASSETS = Path(__file__).resolve().parent / "web_assets"
ASSET_FILES = ("index.html", "mnistgan-web.css", "mnistgan-web.js", "page.js")
SITE_FILES = ASSET_FILES + ("model.js",)
SIZE = 28  # image side in pixels
TEST_SEED, TEST_N = 2024, 4  # the bundled test vector (index.html#test): its z and the expected pixels
DATASETS = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "kmnist": "KMNIST", "emnist-digits": "EMNIST"}

Op = dict  # one op of model.js; its weight arrays stay float64 numpy arrays until `pack`


def refuse(what: str) -> MnistganError:
    return MnistganError(f"web export cannot convert {what}; use --format onnx")


def f64(t: Optional[torch.Tensor], n: int = 0, fill: float = 0.0) -> np.ndarray:
    """A weight as float64 numpy (folding BatchNorm in float64 rounds once, when packed); None -> fill."""
    if t is None:
        return np.full(n, fill)
    return t.detach().to("cpu", torch.float64).numpy().copy()


# ----------------------------------------------------------------------------- one converter per torch layer


def linear(m: nn.Linear, rows: Optional[np.ndarray] = None) -> Op:
    """y = W x + b, W stored (out, in); `rows` reorders the outputs (the DCGAN's fc: (c, p) -> (p, c))."""
    w, b = f64(m.weight), f64(m.bias, m.out_features)
    if rows is not None:
        w, b = w[rows], b[rows]
    return {"op": "linear", "in": m.in_features, "out": m.out_features, "weight": w, "bias": b}


def conv_transpose(m: nn.ConvTranspose2d, height: int, width: int) -> Op:
    """ConvTranspose2d on HWC activations, W stored (ky, kx, out, in)."""
    if m.groups != 1 or tuple(m.dilation) != (1, 1):
        raise refuse("a ConvTranspose2d with groups or dilation")
    (kh, kw), (sh, sw), (ph, pw), (oph, opw) = m.kernel_size, m.stride, m.padding, m.output_padding
    return {
        "op": "conv_t",
        "height": height,
        "width": width,
        "cin": m.in_channels,
        "cout": m.out_channels,
        "kernel": [kh, kw],
        "stride": [sh, sw],
        "padding": [ph, pw],
        "out_height": (height - 1) * sh - 2 * ph + kh + oph,
        "out_width": (width - 1) * sw - 2 * pw + kw + opw,
        "weight": f64(m.weight).transpose(2, 3, 1, 0),  # (in, out, kh, kw) -> (kh, kw, out, in)
        "bias": f64(m.bias, m.out_channels),
    }


def fold_batch_norm(op: Op, bn: nn.modules.batchnorm._BatchNorm) -> None:
    """Eval-mode BatchNorm y = x s + t, folded into the op before it (whose outputs are channels-last)."""
    if op["op"] not in ("linear", "conv_t") or not bn.track_running_stats:
        raise refuse("a BatchNorm that does not follow a Linear or ConvTranspose2d")
    c = bn.num_features
    s = f64(bn.weight, c, 1.0) / np.sqrt(f64(bn.running_var) + bn.eps)
    t = f64(bn.bias, c) - f64(bn.running_mean) * s
    if op["op"] == "conv_t":
        op["weight"] = op["weight"] * s[None, None, :, None]
    else:  # a Linear's row r feeds channel r % c (HWC)
        s, t = np.tile(s, op["out"] // c), np.tile(t, op["out"] // c)
        op["weight"] = op["weight"] * s[:, None]
    op["bias"] = op["bias"] * s + t


def norm(m: nn.Module) -> Op:
    """LayerNorm(F) of the MLP, GroupNorm(1, C) of the DCGAN: normalise over all of an image's values."""
    if isinstance(m, nn.GroupNorm) and m.num_groups != 1:
        raise refuse(f"a GroupNorm with {m.num_groups} groups")
    c = m.num_channels if isinstance(m, nn.GroupNorm) else int(np.prod(m.normalized_shape))
    return {"op": "norm", "c": c, "eps": m.eps, "gamma": f64(m.weight, c, 1.0), "beta": f64(m.bias, c)}


def activation(m: nn.Module) -> Op:
    if isinstance(m, nn.GELU) and m.approximate != "none":
        raise refuse("a tanh-approximated GELU")
    fn = {nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu", nn.ELU: "elu", nn.GELU: "gelu", nn.SiLU: "silu"}.get(
        type(m), "tanh"
    )
    return {
        "op": "act",
        "fn": fn,
        "slope": getattr(m, "negative_slope", 0.0),
        "alpha": getattr(m, "alpha", 1.0),
    }


ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh)
SKIPPED = (nn.Identity, nn.Dropout)  # g_norm "none"; dropout is inactive at inference


def convert(modules, ops: list[Op], height: int = 1, width: int = 1) -> tuple[int, int]:
    """Append the ops of `modules` to `ops`; returns the spatial size after them."""
    for m in modules:
        if isinstance(m, nn.Linear):
            ops.append(linear(m))
        elif isinstance(m, nn.ConvTranspose2d):
            ops.append(conv_transpose(m, height, width))
            height, width = ops[-1]["out_height"], ops[-1]["out_width"]
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            fold_batch_norm(ops[-1] if ops else {"op": "input"}, m)
        elif isinstance(m, (nn.LayerNorm, nn.GroupNorm)):
            ops.append(norm(m))
        elif type(m) in ACTIVATIONS:
            ops.append(activation(m))
        elif not isinstance(m, SKIPPED):
            raise refuse(f"a {type(m).__name__} layer")
    return height, width


# ----------------------------------------------------------------------------- one walker per model family


def mlp_ops(G: MLPGenerator) -> tuple[list[Op], str]:
    """Linear/norm/activation layers ending in Linear(., channels * 784) + Tanh, viewed as (C, 28, 28)."""
    ops: list[Op] = []
    convert(G.net, ops)
    return ops, "chw"


def dcgan_ops(G: DCGANGenerator) -> tuple[list[Op], str]:
    """fc -> view(C, 7, 7) -> the conv stack (the VAE's decoder is this generator too)."""
    channels = G.fc.out_features // 49
    rows = np.arange(channels * 49).reshape(channels, 49).T.ravel()  # output (p, c) <- PyTorch's (c, p)
    ops = [linear(G.fc, rows)]
    if convert(G.net, ops, 7, 7) != (SIZE, SIZE):
        raise refuse("a DCGAN generator whose images are not 28x28")
    return ops, "hwc"


FAMILIES: dict[type, Callable[[nn.Module], tuple[list[Op], str]]] = {
    MLPGenerator: mlp_ops,
    DCGANGenerator: dcgan_ops,
}


def code_of(module: nn.Module) -> Optional[dict]:
    """What G concatenates to z: a cluster's one-hot (read off z_0) or a digit's, or nothing."""
    if isinstance(module, ClusterG):
        return {"kind": "cluster", "k": module.k, "thresholds": module.thresholds.float().tolist()}
    if isinstance(module, ConditionalG):
        return {"kind": "label", "k": N_CLASSES}
    return None


def pack(ops: list[Op]) -> tuple[list[Op], np.ndarray]:
    """Replace each op's arrays by their offset (in floats) into one float32 buffer."""
    chunks, size = [], 0
    for op in ops:
        for key in ("weight", "bias", "gamma", "beta"):
            if key in op:
                a = np.ascontiguousarray(op[key], dtype="<f4").ravel()
                chunks.append(a)
                op[key], size = size, size + a.size
    return ops, np.concatenate(chunks) if chunks else np.zeros(0, "<f4")


def describe_network(gen: Generator) -> dict:
    """z (+ code) -> images as ops over one weight buffer (the part of model.js the runtime runs)."""
    inner = getattr(gen.module, "net", gen.module)  # the family's G inside its label wrapper
    if type(inner) not in FAMILIES:
        raise MnistganError(
            f"web export knows the mlp, dcgan and vae generators, not {type(inner).__name__}; "
            "use --format onnx"
        )
    with torch.no_grad():
        ops, layout = FAMILIES[type(inner)](inner)
    ops, weights = pack(ops)
    last = next(op for op in reversed(ops) if op["op"] in ("linear", "conv_t"))
    channels = last["out"] // SIZE**2 if last["op"] == "linear" else last["cout"]
    return {
        "format": FORMAT,
        "z_dim": gen.z_dim,
        "channels": channels,
        "size": SIZE,
        "layout": layout,
        "code": code_of(gen.module),
        "ops": ops,
        "n_weights": int(weights.size),
        "weights": base64.b64encode(weights.tobytes()).decode("ascii"),
    }


# ----------------------------------------------------------------------------- what the page shows


def settings(cfg: Config, meta: dict) -> list[list[str]]:
    """The run's settings as (label, value) rows for the page's table."""
    m, t, o = cfg.model, cfg.train, cfg.optim
    width = m.g_width or default_of(m.model, "g_width")
    if m.model == "mlp":
        family = f"MLP, {m.g_depth or default_of('mlp', 'g_depth')} hidden layers from width {width}"
    else:
        family = f"{'VAE decoder (DCGAN)' if m.model == 'vae' else 'DCGAN'}, width {width}"
    if m.conditional:
        conditioning = "digit label"
    else:
        conditioning = f"{m.clusters} k-means clusters, read off z" if m.clusters else "none"
    data = DATASETS.get(cfg.data.dataset, cfg.data.dataset)
    data += f", digit {cfg.data.digit}" if cfg.data.digit is not None else ""
    data += f", {cfg.data.limit:,} images" if cfg.data.limit else ""
    asked = f"{t.epochs} epoch{'s' if t.epochs != 1 else ''}" + (
        f" or {t.time_budget:g} s, whichever came first" if t.time_budget else ""
    )
    if "steps" in meta and "images_seen" in meta:
        trained = f"{meta['steps']:,} steps, {meta['images_seen']:,} images ({asked})"
    else:
        trained = asked
    rows = [
        ["model", family],
        ["G layers", f"{m.g_norm if m.g_norm != 'none' else 'no'} norm, {m.g_activation}"],
        ["z_dim", str(m.z_dim)],
        ["conditioning", conditioning],
        ["loss", "reconstruction + KL" if m.model == "vae" else cfg.loss.loss],
        ["optimiser", f"{o.optimizer}, lr {o.lr_of('g'):g}, batch {o.batch_size}"],
        ["training", trained],
        ["data", data],
        ["EMA of G", f"decay {t.ema_decay:g}" if meta.get("ema", t.ema_decay > 0) else "off"],
        ["seed", str(t.seed)],
    ]
    if stabilisers(cfg):
        rows.insert(5, ["stabilisers", stabilisers(cfg)])
    rows.append(["mnistgan", str(meta.get("mnistgan_version", __version__))])
    return rows


def stabilisers(cfg: Config) -> str:
    """The GAN stabilisers a run used, in one line ('' for none)."""
    loss = cfg.loss
    used = (
        (f"label smoothing {loss.label_smoothing:g}", loss.label_smoothing),
        (f"instance noise {loss.instance_noise:g}", loss.instance_noise),
        (f"R1 {loss.r1_weight:g}", loss.r1_weight),
        (f"DiffAugment {loss.diffaug}", loss.diffaug),
        (f"{cfg.model.d_norm} norm in D", cfg.model.d_norm != "none"),
    )
    return ", ".join(name for name, on in used if on)


def check_vector(gen: Generator) -> dict:
    """TEST_N z and `mnistgan generate`'s pixels for them (index.html#test compares its own)."""
    z = np.random.RandomState(TEST_SEED).normal(size=[TEST_N, gen.z_dim]).astype("<f4")
    images = to_uint8(gen.predict(z))  # a conditional G draws its default digits 0, 1, 2, 3
    return {
        "n": TEST_N,
        "z": base64.b64encode(z.tobytes()).decode("ascii"),
        "images": base64.b64encode(images.tobytes()).decode("ascii"),
    }


def describe(gen: Generator, name: Optional[str] = None) -> dict:
    """Everything model.js holds: the network, the run's name and settings, the test vector."""
    model = describe_network(gen)
    model["run"] = {
        "name": name or default_name(gen.config),
        "dataset": DATASETS.get(gen.config.data.dataset, gen.config.data.dataset),
        "model": gen.config.model.model,
        "seed": COURSE_SEED,
        "settings": settings(gen.config, gen.meta),
    }
    model["test"] = check_vector(gen)
    return model


def write_web(gen: Generator, out_dir: Path, name: Optional[str] = None) -> str:
    """Write the site folder `out_dir` (replaced as a whole, atomically); returns what to do with it."""
    model = describe(gen, name)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        for asset in ASSET_FILES:
            shutil.copyfile(ASSETS / asset, tmp / asset)
        # one line of JSON in a classic script: it loads from file:// (no fetch), and JSON is valid JS
        js = "window.MNISTGAN_MODEL = " + json.dumps(model, separators=(",", ":")) + ";\n"
        (tmp / "model.js").write_text(js, encoding="utf-8")
    size = sum((out_dir / f).stat().st_size for f in SITE_FILES)
    where = "offline, from disk or a web server"
    return f"open {out_dir / 'index.html'} in a browser ({size / 1e6:.1f} MB; {where})"
