"""The keras-h5 export: a Keras-style architecture (generator.json) + weights (generator.h5, h5py only).

The generator becomes a Keras `Sequential`, channels-last, that maps z (N, z_dim) to images
(N, 28, 28) in [0, 1] like `Generator.predict`. The weights file uses the layout that Keras 2's
`model.save_weights("x.h5")` writes (and Keras 3's `load_weights("x.h5")` reads): root attrs
`layer_names`, `backend`, `keras_version`; one group per layer with attr `weight_names`, and
dataset `<layer>/<layer>/<weight>:0` per weight, in Keras' order. docs/export.md has the details.

Layout conversions from PyTorch (NCHW, weight (out, in)) to Keras (NHWC, kernel (in, out)):
  Linear (out, in)                -> Dense kernel (in, out), bias (out,)
  ConvTranspose2d (in, out, kh, kw) -> Conv2DTranspose kernel (kh, kw, out, in); no spatial flip:
                                     both frameworks scatter x[i] * W[k] to output row i*s + k - pad
  DCGAN's fc -> view(N, C, 7, 7)  -> Dense whose output columns are permuted to (7, 7, C) order,
                                     then Reshape((7, 7, C)), so the rest runs channels-last

A cluster generator (models.ClusterG, --clusters K) becomes a Keras `Functional` model instead:
z -> Reshape + Cropping1D + Reshape (z_0 alone, exactly) -> Rescaling(1) (a contiguous copy) ->
Discretization(bin_boundaries=b) (the cluster index) -> CategoryEncoding(K, "one_hot") ->
Reshape((K,)) -> Concatenate([z, one_hot]) -> the family's layers. b_k is the float32 just above t_k,
so that Discretization's #{b_k <= z_0} is ClusterG's #{t_k < z_0} for every float32 z_0: the same
cluster exactly, with no matmul (a TF32 matmul, TensorFlow's default on recent GPUs, would move a
steep step made of matmuls).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..errors import MnistganError
from ..files import write_text, write_with
from ..models import ClusterG
from ..models.custom import AdaptedG, leaf_sequence
from ..models.dcgan import DCGANGenerator
from ..models.mlp import MLPGenerator

KERAS_VERSION = "2.15.0"  # the writer whose legacy .h5 weight layout we reproduce (Keras 3 reads it too)
# Keras 3's Discretization.__init__ takes no **kwargs: a "trainable" key fails model_from_json
# ("unexpected keyword argument 'trainable'"), so its entry has only name, dtype and its own settings
NO_TRAINABLE = {"Discretization"}
CONTRACT = "z float32 (N, z_dim) -> images float32 (N, 28, 28) in [0, 1] (colour: (N, 3, 28, 28))"

# One Keras layer: (class_name, config without name, [(weight_name, array), ...])
KerasLayer = tuple[str, dict, list[tuple[str, np.ndarray]]]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy().copy()


# ----------------------------------------------------------------------------- one converter per torch layer


def _dense(m: nn.Linear, out_perm: np.ndarray | None = None) -> list[KerasLayer]:
    kernel = _np(m.weight).T  # (in, out)
    weights = [("kernel", kernel if out_perm is None else kernel[:, out_perm])]
    if m.bias is not None:
        weights.append(("bias", _np(m.bias) if out_perm is None else _np(m.bias)[out_perm]))
    return [
        ("Dense", {"units": m.out_features, "activation": "linear", "use_bias": m.bias is not None}, weights)
    ]


def _batch_norm(m: nn.modules.batchnorm._BatchNorm) -> list[KerasLayer]:
    if not (m.affine and m.track_running_stats):
        raise MnistganError("keras-h5 export needs BatchNorm layers with affine weights and running stats")
    # Keras' momentum weights the old statistic; PyTorch's weights the new one
    config = {
        "axis": -1,
        "momentum": 1.0 - (m.momentum or 0.1),
        "epsilon": m.eps,
        "center": True,
        "scale": True,
    }
    weights = [
        ("gamma", _np(m.weight)),
        ("beta", _np(m.bias)),
        ("moving_mean", _np(m.running_mean)),
        ("moving_variance", _np(m.running_var)),
    ]
    return [("BatchNormalization", config, weights)]


def _layer_norm(m: nn.LayerNorm) -> list[KerasLayer]:
    if len(m.normalized_shape) != 1 or not m.elementwise_affine or m.bias is None:
        raise MnistganError("keras-h5 export handles LayerNorm over the last axis with affine weights only")
    config = {"axis": -1, "epsilon": m.eps, "center": True, "scale": True}
    return [("LayerNormalization", config, [("gamma", _np(m.weight)), ("beta", _np(m.bias))])]


def _group_norm(m: nn.GroupNorm) -> list[KerasLayer]:
    # GroupNorm(G, C) normalises each group of C/G consecutive channels over (C/G, H, W); Keras'
    # GroupNormalization does the same along its channels-last axis.
    if not m.affine:
        raise MnistganError("keras-h5 export handles GroupNorm with affine weights only")
    config = {"groups": m.num_groups, "axis": -1, "epsilon": m.eps, "center": True, "scale": True}
    return [("GroupNormalization", config, [("gamma", _np(m.weight)), ("beta", _np(m.bias))])]


def _conv_transpose(m: nn.ConvTranspose2d) -> list[KerasLayer]:
    (kh, kw), (sh, sw), (ph, pw) = m.kernel_size, m.stride, m.padding
    if m.groups != 1 or tuple(m.dilation) != (1, 1) or tuple(m.output_padding) != (0, 0):
        raise MnistganError(
            "keras-h5 export handles ConvTranspose2d without groups, dilation or output_padding"
        )
    # PyTorch crops `p` from each side of the full (in-1)*s + k output. Keras "same" crops
    # k - s in total, the smaller half first; "valid" crops nothing.
    if (ph, pw) == (0, 0):
        padding = "valid"
    elif (2 * ph, 2 * pw) == (kh - sh, kw - sw):
        padding = "same"
    else:
        raise MnistganError(
            f"keras-h5 export: ConvTranspose2d padding {m.padding} with kernel {m.kernel_size} "
            f"and stride {m.stride} has no Keras equivalent"
        )
    config = {
        "filters": m.out_channels,
        "kernel_size": [kh, kw],
        "strides": [sh, sw],
        "padding": padding,
        "data_format": "channels_last",
        "activation": "linear",
        "use_bias": m.bias is not None,
    }
    weights = [("kernel", _np(m.weight).transpose(2, 3, 1, 0))]  # (in, out, kh, kw) -> (kh, kw, out, in)
    if m.bias is not None:
        weights.append(("bias", _np(m.bias)))
    return [("Conv2DTranspose", config, weights)]


def _activation(name: str) -> Callable[[nn.Module], list[KerasLayer]]:
    return lambda m: [("Activation", {"activation": name}, [])]


def _leaky_relu(m: nn.LeakyReLU) -> list[KerasLayer]:
    # ReLU(negative_slope=a) is LeakyReLU(a) in Keras 2 and 3 alike (f(x) = a * x below threshold 0).
    # LeakyReLU itself would need `alpha` (Keras 2), which Keras 3 reads with a UserWarning
    # ("Argument `alpha` is deprecated"), or `negative_slope` (Keras 3), which Keras 2 rejects.
    return [("ReLU", {"max_value": None, "negative_slope": m.negative_slope, "threshold": 0.0}, [])]


def _elu(m: nn.ELU) -> list[KerasLayer]:
    if m.alpha != 1.0:
        raise MnistganError("keras-h5 export handles ELU with alpha=1 only")
    return [("Activation", {"activation": "elu"}, [])]


def _gelu(m: nn.GELU) -> list[KerasLayer]:
    if m.approximate != "none":
        raise MnistganError("keras-h5 export handles exact (erf) GELU only")
    return [("Activation", {"activation": "gelu"}, [])]  # Keras' gelu defaults to approximate=False


CONVERTERS: dict[type, Callable[[nn.Module], list[KerasLayer]]] = {
    nn.Linear: _dense,
    nn.BatchNorm1d: _batch_norm,
    nn.BatchNorm2d: _batch_norm,
    nn.LayerNorm: _layer_norm,
    nn.GroupNorm: _group_norm,
    nn.ConvTranspose2d: _conv_transpose,
    nn.ReLU: _activation("relu"),
    nn.LeakyReLU: _leaky_relu,
    nn.ELU: _elu,
    nn.GELU: _gelu,
    nn.SiLU: _activation("silu"),
    nn.Tanh: _activation("tanh"),
    nn.Identity: lambda m: [],  # g_norm "none"
    nn.Dropout: lambda m: [],  # inactive at inference
}


def _convert(modules) -> list[KerasLayer]:
    layers = []
    for m in modules:
        if type(m) not in CONVERTERS:
            raise MnistganError(
                f"keras-h5 export cannot convert a {type(m).__name__} layer; use --format onnx"
            )
        layers += CONVERTERS[type(m)](m)
    return layers


# ----------------------------------------------------------------------------- one flattener per model family


def _mlp_layers(G: MLPGenerator) -> list[KerasLayer]:
    # net ends in Linear(., 784) + Tanh; 784 is already (28, 28) row-major, one channel
    return _convert(G.net)


def _dcgan_layers(G: DCGANGenerator) -> list[KerasLayer]:
    channels = G.fc.out_features // 49
    # column (c, h, w) of PyTorch's view(N, C, 7, 7) becomes column (h, w, c) for Reshape((7, 7, C))
    perm = np.arange(channels * 49).reshape(channels, 7, 7).transpose(1, 2, 0).ravel()
    reshape = ("Reshape", {"target_shape": [7, 7, channels]}, [])
    return _dense(G.fc, out_perm=perm) + [reshape] + _convert(G.net)


FAMILIES: dict[type, Callable[[nn.Module], list[KerasLayer]]] = {
    MLPGenerator: _mlp_layers,
    DCGANGenerator: _dcgan_layers,
}


def _unwrap(G: nn.Module) -> nn.Module:
    """models.Unconditional wraps a family's G as `.net` (forward(z, labels=None) = net(z))."""
    inner = getattr(G, "net", None)
    return inner if type(G) not in FAMILIES and type(inner) in FAMILIES and not isinstance(G, ClusterG) else G


def _custom_layers(G: AdaptedG, z_dim: int) -> list[KerasLayer]:
    """Your own G (trust_code), when its forward is a chain of layers that map to Keras: the layers
    its forward runs, in order, must reproduce its output on a probe z (no other arithmetic)."""
    name = type(G.g).__name__
    z = torch.randn(4, z_dim, generator=torch.Generator().manual_seed(0))
    leaves = leaf_sequence(G.g, z)
    with torch.no_grad():
        x = z
        for _, m in leaves:
            x = m.eval()(x)
        expected = G.g.eval()(z)
    if x.shape != expected.shape or not torch.allclose(x, expected, atol=1e-6):
        raise MnistganError(
            f"keras-h5 export maps a chain of layers, and {name}'s forward does more than run "
            "its layers in order; use --format onnx"
        )
    for path, m in leaves:
        if type(m) not in CONVERTERS:
            raise MnistganError(
                f"keras-h5 export cannot map {name}'s layer {path} ({type(m).__name__}) to Keras; "
                "use --format onnx"
            )
    scale = (
        [] if G.from_unit else [("Rescaling", {"scale": 0.5, "offset": 0.5}, [])]
    )  # tanh's [-1, 1] -> [0, 1]
    return _convert(m for _, m in leaves) + scale + [image_shape(G.channels, channels_last=False)]


def keras_layers(G: nn.Module, z_dim: int = 0) -> list[KerasLayer]:
    """The Sequential layers of G in Keras terms, ending with the [0, 1] (N, 28, 28) image contract."""
    if isinstance(G, AdaptedG):
        return _custom_layers(G, z_dim)
    G = _unwrap(G)
    if isinstance(G, torch.jit.ScriptModule):
        raise MnistganError(
            "keras-h5 export maps your own generator's layers and needs its class: pass "
            "--trust-code (runs the class from the Python file it was trained with)"
        )
    if type(G) not in FAMILIES:
        raise MnistganError(
            f"keras-h5 export knows the mlp and dcgan generators, not {type(G).__name__}; use --format onnx"
        )
    channels_last = isinstance(G, DCGANGenerator)  # its convolutions run channels-last in Keras
    channels = G.net[-2].out_channels if channels_last else G.channels
    tail = [("Rescaling", {"scale": 0.5, "offset": 0.5}, []), image_shape(channels, channels_last)]
    return FAMILIES[type(G)](G) + tail  # tanh's [-1, 1] -> [0, 1], then predict()'s shape


def image_shape(channels: int, channels_last: bool) -> KerasLayer:
    """The last layer: (N, 784) or (N, 28, 28, 1) -> (N, 28, 28); colour: (N, 3, 28, 28), as predict()."""
    if channels == 1:
        return ("Reshape", {"target_shape": [28, 28]}, [])
    if channels_last:  # (N, 28, 28, C) -> (N, C, 28, 28)
        return ("Permute", {"dims": [3, 1, 2]}, [])
    return ("Reshape", {"target_shape": [channels, 28, 28]}, [])


def _cluster_head(G: ClusterG, z_dim: int) -> list[KerasLayer]:
    """z -> one_hot(c(z), K) with standard weightless layers, then Concatenate([z, one_hot])
    (keras_model wires the Concatenate's inputs).

    ClusterG: c = #{k : z_0 > t_k} (float32). Keras' Discretization: index = #{k : b_k <= x}
    (ops.digitize: torch.bucketize(right=True), np/jnp.digitize, tf Bucketize). With
    b_k = nextafter(t_k, +inf) in float32 the two agree for every float32 z_0, z_0 == t_k included.
    z_0 is sliced with Cropping1D (no arithmetic), then copied by Rescaling(1.0) (exact), because
    torch.bucketize warns about a non-contiguous input. The index goes through CategoryEncoding, not
    Discretization(output_mode="one_hot"), whose symbolic output shape is (N, 1) before Keras 3.15
    (model_from_json then fails). Keras 3.0-3.3's CategoryEncoding returns the one-hot of an (N, 1)
    input as (N, 1, K) (its symbolic shape says (N, K)): the last Reshape makes it (N, K) in all.
    """
    k = G.k
    t = G.thresholds.detach().to("cpu", torch.float32).numpy()
    if k < 2 or len(t) != k - 1 or not np.all(np.isfinite(t)) or np.any(t[1:] < t[:-1]):
        raise MnistganError(
            "keras-h5 export: the cluster thresholds are not finite and ascending; use --format onnx"
        )
    bounds = [float(b) for b in np.nextafter(t, np.float32(np.inf))]  # float32 values, exact in JSON
    return [
        ("Reshape", {"target_shape": [z_dim, 1]}, []),
        ("Cropping1D", {"cropping": [0, z_dim - 1]}, []),
        ("Reshape", {"target_shape": [1]}, []),
        ("Rescaling", {"scale": 1.0, "offset": 0.0}, []),
        ("Discretization", {"bin_boundaries": bounds, "output_mode": "int", "dtype": "int64"}, []),
        (
            "CategoryEncoding",
            {"num_tokens": k, "output_mode": "one_hot"},
            [],
        ),  # no "sparse": 3.0-3.1 reject it
        ("Reshape", {"target_shape": [k]}, []),
        ("Concatenate", {"axis": -1}, []),
    ]


def keras_model(G: nn.Module, z_dim: int) -> tuple[list[tuple[str, KerasLayer]], list[list[str]] | None]:
    """G's named Keras layers and, for a Functional model, each one's input layers (None: a Sequential)."""
    if not isinstance(G, ClusterG):
        return named(keras_layers(G, z_dim)), None
    head = _cluster_head(G, z_dim)
    layers = named(head + keras_layers(G.net))
    names = ["z"] + [name for name, _ in layers]
    inbound = [[name] for name in names[:-1]]  # a chain from the input z ...
    inbound[len(head) - 1] = ["z", names[len(head) - 1]]  # ... except Concatenate([z, one_hot])
    return layers, inbound


def _snake(class_name: str) -> str:
    """Keras' to_snake_case: Conv2DTranspose -> conv2d_transpose, LeakyReLU -> leaky_re_lu."""
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def named(layers: list[KerasLayer]) -> list[tuple[str, KerasLayer]]:
    """Keras' default names: dense, dense_1, ... per class."""
    seen: dict[str, int] = {}
    out = []
    for layer in layers:
        base = _snake(layer[0])
        k = seen.get(base, 0)
        seen[base] = k + 1
        out.append((base if k == 0 else f"{base}_{k}", layer))
    return out


# ----------------------------------------------------------------------------- writing


def architecture(
    layers: list[tuple[str, KerasLayer]], z_dim: int, inbound: list[list[str]] | None = None
) -> dict:
    """Sequential (or, given `inbound`, Functional) JSON in the shape model.to_json() gives,
    with only the non-default settings.

    Where Keras 2 and 3 differ, the Keras 2 spelling is used (Keras 3 still reads it):
    InputLayer `batch_input_shape`, LeakyReLU `alpha`, and a Functional layer's
    `"inbound_nodes": [[[input_layer, 0, 0, {}], ...]]` (one call, its input tensors).
    """

    def entry(class_name: str, config: dict) -> dict:
        return {"module": "keras.layers", "class_name": class_name, "config": config, "registered_name": None}

    items = [entry("InputLayer", {"batch_input_shape": [None, z_dim], "dtype": "float32", "name": "z"})]
    items += [
        entry(
            cls,
            {
                "name": name,
                **({} if cls in NO_TRAINABLE else {"trainable": True}),
                "dtype": "float32",
                **config,
            },
        )
        for name, (cls, config, _) in layers
    ]
    config = {"name": "mnistgan_generator", "trainable": True, "layers": items}
    if inbound is not None:
        for item, sources in zip(items, [[]] + inbound):
            item["name"] = item["config"]["name"]
            item["inbound_nodes"] = [[[source, 0, 0, {}] for source in sources]] if sources else []
        config.update(input_layers=[["z", 0, 0]], output_layers=[[layers[-1][0], 0, 0]])
    # Keras 3 finds Functional only under its own module path; Keras 2 looks the class name up
    kind = ("keras", "Sequential") if inbound is None else ("keras.src.models.functional", "Functional")
    return {
        "module": kind[0],
        "class_name": kind[1],
        "config": config,
        "keras_version": KERAS_VERSION,
        "backend": "tensorflow",
        "mnistgan": {"contract": CONTRACT, "weights": "generator.h5 (Keras 2 save_weights layout)"},
    }


def write_h5(tmp: Path, layers: list[tuple[str, KerasLayer]]) -> None:
    import h5py  # optional dependency (mnistgan[keras])

    with h5py.File(tmp, "w") as f:
        f.attrs["layer_names"] = np.array([name.encode() for name, _ in layers])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = KERAS_VERSION.encode()
        f.attrs["mnistgan_contract"] = CONTRACT.encode()
        for name, (_, _, weights) in layers:
            g = f.create_group(name)
            names = [f"{name}/{w}:0".encode() for w, _ in weights]
            g.attrs["weight_names"] = np.array(names, dtype="S") if names else np.zeros(0, dtype="S1")
            for wname, (_, value) in zip(names, weights):
                g.create_dataset(wname.decode(), data=value.astype(np.float32))


def write_keras(gen, json_path: Path, h5_path: Path) -> None:
    """Write generator.json (architecture) and generator.h5 (weights) for a loaded Generator."""
    if getattr(gen.config.model, "conditional", False):
        raise MnistganError("keras-h5 export does not handle conditional generators; use --format onnx")
    layers, inbound = keras_model(gen.module, gen.z_dim)
    write_text(json_path, json.dumps(architecture(layers, gen.z_dim, inbound), indent=1) + "\n")
    # Keras' save_weights lists a Functional model's InputLayer too (with no weights)
    h5_layers = layers if inbound is None else [("z", ("InputLayer", {}, []))] + layers
    write_with(h5_path, lambda tmp: write_h5(tmp, h5_layers))
