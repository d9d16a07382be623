"""Typed, frozen configuration: one dataclass per concern, composed into `Config`.

Every field has a default and a help line (its unit or choices). The CLI builds one flag
per field from these (`--batch-size`, ...), config.json stores `asdict(cfg)`, and
`load_config` reads it back with full validation, so a run can be replayed exactly.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Optional

from .errors import MnistganError


def opt(default, help: str, choices: tuple = ()):
    """A config field with its help line (shown by --help) and, optionally, its choices."""
    return field(default=default, metadata={"help": help, "choices": choices})


AUTO_CLUSTERS = 100  # --clusters when unset (measured: K = 100 beat 50 and 200, docs/benchmarks.md)
AUTO_MIN_IMAGES = 10_000  # below this (one digit, --limit) clusters would hold too few images each
DATASETS = ("mnist", "fashion-mnist", "kmnist", "emnist-digits", "stacked-mnist")
STACKED = "stacked-mnist"
STACKED_SIZE = 128_000  # stacked-mnist training images: PacGAN's setting (Lin et al. 2018, their code)
MODELS = ("mlp", "dcgan", "vae")
GAN_FAMILIES = ("mlp", "dcgan")  # mnistgan's own GANs (the vae is the autoencoder baseline)
CUSTOM_SPEC = re.compile(r"(?P<source>[^:]+):(?P<g>[A-Za-z_]\w*),(?P<d>[A-Za-z_]\w*)")
LOSSES = ("bce", "hinge", "lsgan", "wgan-gp")
ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "silu", "tanh")
NORMS = ("batch", "layer", "none")
D_NORMS = ("none", "batch", "layer", "spectral")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = opt(
        "mnist",
        "training data set (stacked-mnist: three MNIST digits as the colour channels, 1,000 modes)",
        DATASETS,
    )
    data_dir: Optional[str] = opt(None, "folder with IDX files (raw or .gz); overrides the bundled MNIST")
    images: Optional[str] = opt(
        None,
        "train on your own images instead of a data set: a folder of image files (class subfolders "
        "give labels) or an .npz/.npy array (N, 28, 28)",
    )
    class_name: Optional[str] = field(
        default=None,
        metadata={
            "help": "--images with class subfolders: train on this class only",
            "choices": (),
            "flag": "class",
        },
    )
    digit: Optional[int] = opt(None, "train on this digit only (0-9); uses the labels for filtering only")
    limit: Optional[int] = opt(None, "use at most this many training images (after --digit)")
    stacked_size: int = opt(STACKED_SIZE, "stacked-mnist: how many stacked images to build")


@dataclass(frozen=True)
class ModelConfig:
    model: str = opt(
        "dcgan",
        "generator/discriminator family (vae: the autoencoder baseline), or your own "
        "classes: FILE.py:GClass,DClass or package.module:GClass,DClass",
        MODELS,
    )
    model_args: dict = field(
        default_factory=dict,
        metadata={
            "help": "constructor arguments of your own G and D (--model FILE.py:G,D): --model-arg NAME=VALUE",
            "choices": (),
        },
    )
    z_dim: int = opt(100, "latent size (the course snippet's z_dim)")
    # widths and depths left unset take the model family's own default (models.registry.default_of)
    g_width: Optional[int] = opt(
        None, "G width: channels of the last conv (dcgan) or first hidden layer (mlp)"
    )
    d_width: Optional[int] = opt(
        None, "D width: channels of the first conv (dcgan) or last hidden layer (mlp)"
    )
    g_depth: Optional[int] = opt(None, "mlp G hidden layers (dcgan: fixed 7->14->28 upsampling)")
    d_depth: Optional[int] = opt(None, "D depth: mlp hidden layers or dcgan conv layers (2 or 3)")
    g_activation: str = opt("relu", "generator hidden activation", ACTIVATIONS)
    d_activation: str = opt("leaky_relu", "discriminator activation (leaky slope 0.2)", ACTIVATIONS)
    dropout: float = opt(0.0, "dropout probability in D (0 = off; the mlp course setup uses 0.3)")
    g_norm: str = opt("batch", "generator normalisation", NORMS)
    d_norm: str = opt("none", "discriminator normalisation", D_NORMS)
    init: str = opt("dcgan", "weight init: dcgan = N(0, 0.02); default = PyTorch's", ("dcgan", "default"))
    conditional: bool = opt(False, "class-conditional GAN: G and D take the digit label (uses the labels)")
    channels: int = opt(1, "image channels: 1, or 3 (stacked-mnist, colour --images); set from the data")
    n_classes: int = opt(10, "classes of --conditional: the 10 digits, or the class subfolders of --images")
    clusters: Optional[int] = opt(
        None,
        "unsupervised cluster-conditioning: k-means the training images (no labels) "
        "into K clusters that G and D are conditioned on; G draws the cluster from "
        f"z, so it stays an unconditional G(z). 0 = off; unset = {AUTO_CLUSTERS} for an "
        f"unconditional GAN on {AUTO_MIN_IMAGES:,}+ images, else 0",
    )


@dataclass(frozen=True)
class LossConfig:
    loss: str = opt("bce", "adversarial loss (bce = non-saturating)", LOSSES)
    gp_weight: float = opt(10.0, "gradient-penalty weight (wgan-gp only)")
    n_critic: int = opt(1, "D updates per G update (wgan-gp usually 5)")
    label_smoothing: float = opt(
        0.0, "one-sided label smoothing: D's target for real images is 1 - this (bce)"
    )
    instance_noise: float = opt(0.0, "std of Gaussian noise added to D's inputs, annealed linearly to 0")
    r1_weight: float = opt(0.0, "R1 penalty gamma: gamma/2 E||grad D(x_real)||^2 (0 = off)")
    diffaug: str = opt("", "DiffAugment policy for D's inputs: '', translation, cutout, translation,cutout")


@dataclass(frozen=True)
class OptimConfig:
    optimizer: str = opt("adam", "optimiser for G and D", ("adam", "sgd"))
    lr: float = opt(2e-4, "learning rate of G and D unless --lr-g/--lr-d are given")
    lr_g: Optional[float] = opt(None, "generator learning rate (TTUR); default --lr")
    lr_d: Optional[float] = opt(None, "discriminator learning rate (TTUR); default --lr")
    beta1: float = opt(0.5, "Adam beta1")
    beta2: float = opt(0.999, "Adam beta2")
    momentum: float = opt(0.0, "SGD momentum")
    batch_size: int = opt(
        64, "images per batch (64: twice the steps per epoch of 128, better digits per epoch)"
    )
    lr_tail: float = opt(
        0.0,
        "decay both learning rates linearly to 0 over this final fraction of the run, whose end is "
        "known from --epochs or --time-budget (whichever comes first); 0 = constant",
    )

    def lr_of(self, net: str) -> float:
        """The learning rate of G ("g") or D ("d"): --lr-g / --lr-d when given, else --lr."""
        own = self.lr_g if net == "g" else self.lr_d
        return own if own is not None else self.lr


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = opt(5, "passes over the training images")
    time_budget: Optional[float] = opt(None, "stop training after this many seconds, then write every output")
    seed: int = opt(0, "seed for weights, noise and data order")
    device: str = opt("auto", "auto | cpu | cuda | cuda:N | mps", ())
    precision: str = opt(
        "auto", "auto (bf16 where fast: CPU with AVX-512 bf16, CUDA) | fp32 | bf16", ("auto", "fp32", "bf16")
    )
    cuda_graphs: bool = opt(
        True,
        "on CUDA, replay the training step as one CUDA graph where the recipe allows "
        "(docs/performance.md); --no-cuda-graphs: plain eager steps",
    )
    deterministic: bool = opt(
        False, "PyTorch deterministic algorithms (GPU; slower). CPU runs are bitwise reproducible anyway"
    )
    ema_decay: float = opt(0.999, "EMA of G's weights for samples and export (0 = off)")
    sample_epochs: tuple = opt((1, 5, 50, 100, 150, 200), "epochs at which to save a sample grid")
    sample_every: Optional[int] = opt(None, "save a sample grid every K epochs (instead of --sample-epochs)")
    log_every: int = opt(50, "steps between log.jsonl tick lines (loss curves)")
    eval_every: Optional[int] = opt(
        None, "evaluate G every K epochs with the bundled classifier (off by default)"
    )
    eval_samples: int = opt(10000, "samples per evaluation (--eval-every and the final metrics.json)")
    tensorboard: bool = opt(False, "also write TensorBoard scalars and sample images to RUN/tensorboard")
    checkpoint_every: int = opt(1, "epochs between resume checkpoints")
    keep_checkpoints: int = opt(2, "how many epoch checkpoints to keep besides last.pt")


def custom_model_spec(model: str) -> Optional[tuple[str, str, str]]:
    """(source, G class, D class) of --model FILE.py:G,D or package.module:G,D; None for a family name."""
    m = CUSTOM_SPEC.fullmatch(model)
    return (m.group("source"), m.group("g"), m.group("d")) if m else None


def auto_clusters(model_cfg: ModelConfig, n_images: int) -> int:
    """The --clusters value when it is not given: on for an unconditional GAN with enough images."""
    if model_cfg.clusters is not None:
        return model_cfg.clusters
    plain_gan = not model_cfg.conditional and model_cfg.model in GAN_FAMILIES
    return AUTO_CLUSTERS if plain_gan and n_images >= AUTO_MIN_IMAGES else 0


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


SECTIONS = tuple(f.name for f in fields(Config))  # "data", "model", "loss", "optim", "train"


def section_classes() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {name: hints[name] for name in SECTIONS}


def flat_fields() -> dict[str, tuple[str, dataclasses.Field, Any]]:
    """field name -> (section, Field, type). Field names are unique across sections."""
    out = {}
    for sec, cls in section_classes().items():
        types = typing.get_type_hints(cls)
        for f in fields(cls):
            assert f.name not in out, f"duplicate config field {f.name}"
            out[f.name] = (sec, f, types[f.name])
    return out


def with_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """Return cfg with flat field overrides applied (`{"lr": 1e-3, "model": "mlp"}`)."""
    flat = flat_fields()
    by_section: dict[str, dict] = {}
    for name, value in overrides.items():
        key = name.replace("-", "_")
        if key.startswith(
            "model_arg."
        ):  # one constructor argument of a custom model (--model-arg NAME=VALUE)
            args = {**by_section.get("model", {}).get("model_args", cfg.model.model_args)}
            args[key.split(".", 1)[1]] = coerce(key, {key.split(".", 1)[1]: value}, dict)[
                key.split(".", 1)[1]
            ]
            by_section.setdefault("model", {})["model_args"] = args
            continue
        if key not in flat:
            raise MnistganError(f"unknown setting '{name}'; see `mnistgan train --help` for the list")
        sec, f, typ = flat[key]
        by_section.setdefault(sec, {})[key] = coerce(key, value, typ)
    new = {sec: replace(getattr(cfg, sec), **vals) for sec, vals in by_section.items()}
    return replace(cfg, **new)


def coerce(name: str, value: Any, typ: Any) -> Any:
    """Convert a JSON or CLI value to the field's type, or raise a one-line error."""
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin is typing.Union and type(None) in args:
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        typ = next(a for a in args if a is not type(None))
    try:
        if typ is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            if isinstance(value, (bool, int)):
                return bool(value)
            raise ValueError
        if typ is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if typ is float:
            if isinstance(value, bool):
                raise ValueError
            v = float(value)
            if not math.isfinite(v):
                raise ValueError
            return v
        if typ is str:
            if not isinstance(value, str):
                raise ValueError
            return value
        if typ is dict:
            if isinstance(value, str):
                value = json.loads(value) if value.strip() else {}
            if not isinstance(value, dict) or not all(isinstance(k, str) and k.isidentifier() for k in value):
                raise ValueError
            return {k: model_arg_value(v) for k, v in value.items()}
        if typ is tuple:
            if isinstance(value, str):
                value = [v for v in value.replace(" ", "").split(",") if v]
            if not isinstance(value, (list, tuple)):
                raise ValueError
            return tuple(coerce(name, v, int) for v in value)
    except (TypeError, ValueError, OverflowError):
        shown = repr(value) if len(repr(value)) < 60 else repr(value)[:57] + "..."
        raise MnistganError(f"invalid value for {name}: {shown} (expected {_type_name(typ)})") from None
    raise MnistganError(f"unsupported setting type for {name}")


def model_arg_value(value: Any) -> Any:
    """A --model-arg value: a JSON number, true/false, null or list from the command line, else text;
    JSON values (config.json) as they are."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(value)
    if not isinstance(value, (str, int, float, bool, list, type(None))):
        raise ValueError(value)
    return value


def _type_name(typ) -> str:
    return {
        int: "an integer",
        float: "a finite number",
        str: "text",
        bool: "true/false",
        tuple: "a comma-separated list of integers",
        dict: "NAME=VALUE settings (NAME a Python identifier)",
    }.get(typ, str(typ))


def check_data(d: DataConfig, m: ModelConfig) -> None:
    """Combinations of data settings that cannot work, each said in one line."""
    if d.images is not None and d.data_dir is not None:
        raise MnistganError("--images and --data-dir both name the training data; give one of them")
    if d.images is not None and d.digit is not None:
        raise MnistganError("--digit selects a digit of a data set; with --images, use --class NAME")
    if d.class_name is not None and d.images is None:
        raise MnistganError("--class selects a class subfolder of --images; give --images FOLDER too")
    if d.class_name is not None and m.conditional:
        raise MnistganError(
            f"--conditional with --class {d.class_name} conditions on one class only; drop one"
        )
    if d.dataset == "stacked-mnist" and (d.digit is not None or m.conditional):
        raise MnistganError(
            "stacked-mnist images hold three digits each: --digit and --conditional do not apply"
        )
    if m.channels not in (1, 3):
        raise MnistganError(f"channels must be 1 or 3, got {m.channels}")
    if not 2 <= m.n_classes <= 1000:
        raise MnistganError(f"n_classes must be between 2 and 1000, got {m.n_classes}")


def validate(cfg: Config) -> Config:
    """Check every value a user can set; raise MnistganError naming the first bad one."""
    flat = flat_fields()
    for name, (sec, f, _) in flat.items():
        value = getattr(getattr(cfg, sec), name)
        choices = f.metadata.get("choices")
        if name == "model" and custom_model_spec(value):
            continue
        if choices and value not in choices:
            extra = " or your own classes, FILE.py:GClass,DClass" if name == "model" else ""
            raise MnistganError(f"unknown {name} '{value}'; choose one of: {', '.join(choices)}{extra}")
    m, d, o, t, lo = cfg.model, cfg.data, cfg.optim, cfg.train, cfg.loss
    if custom_model_spec(m.model) and m.clusters:
        raise MnistganError(
            "--clusters conditions mnistgan's own models on k-means clusters; drop it with your own "
            "G and D (--model FILE.py:G,D)"
        )
    if m.model_args and not custom_model_spec(m.model):
        raise MnistganError(
            f"--model-arg is for your own classes (--model FILE.py:G,D), not --model {m.model}"
        )
    check_data(d, m)
    positive = {
        "stacked_size": d.stacked_size,
        "z_dim": m.z_dim,
        "batch_size": o.batch_size,
        "epochs": t.epochs,
        "lr": o.lr,
        "log_every": t.log_every,
        "eval_samples": t.eval_samples,
        "checkpoint_every": t.checkpoint_every,
        "n_critic": lo.n_critic,
    }
    for name in (
        "g_width",
        "d_width",
        "g_depth",
        "d_depth",
        "lr_g",
        "lr_d",
        "time_budget",
        "limit",
        "sample_every",
        "eval_every",
    ):
        value = getattr(getattr(cfg, flat[name][0]), name)
        if value is not None:
            positive[name] = value
    for name, value in positive.items():
        if value <= 0:
            raise MnistganError(f"{name} must be positive, got {value}")
    for name, value in upper_bounded(cfg).items():
        if value is not None and value > LIMITS[name]:
            raise MnistganError(
                f"{name} = {value} is beyond what mnistgan supports (at most {LIMITS[name]:,})"
            )
    if not 0 <= t.seed < 2**31:
        raise MnistganError(f"seed must be in [0, 2^31), got {t.seed}")
    if d.digit is not None and not 0 <= d.digit <= 9:
        raise MnistganError(f"digit must be between 0 and 9, got {d.digit}")
    if m.model == "vae" and m.conditional:
        raise MnistganError("the vae baseline is unconditional; drop --conditional")
    if m.conditional and d.digit is not None:
        raise MnistganError(
            f"--conditional with --digit {d.digit} conditions on one label only; drop one of them "
            f"(--digit trains an unconditional GAN on that digit)"
        )
    if m.clusters and (m.conditional or m.model == "vae"):
        raise MnistganError(
            "--clusters conditions a GAN on k-means clusters of the images; it does not combine "
            "with --conditional or the vae baseline"
        )
    if m.clusters and not 2 <= m.clusters <= 1000:
        raise MnistganError(f"clusters must be 0 (off) or between 2 and 1000, got {m.clusters}")
    if m.model in ("dcgan", "vae") and m.d_depth not in (None, 2, 3):
        raise MnistganError(f"dcgan supports d_depth 2 or 3, got {m.d_depth}")
    for name, value in (("dropout", m.dropout), ("ema_decay", t.ema_decay)):
        if not 0 <= value < 1:
            raise MnistganError(f"{name} must be in [0, 1), got {value}")
    for name, value in (
        ("beta1", o.beta1),
        ("beta2", o.beta2),
        ("momentum", o.momentum),
        ("lr_tail", o.lr_tail),
    ):
        if not 0 <= value < 1:
            raise MnistganError(f"{name} must be in [0, 1), got {value}")
    for name in ("gp_weight", "instance_noise", "r1_weight"):
        if getattr(lo, name) < 0:
            raise MnistganError(f"{name} must be >= 0, got {getattr(lo, name)}")
    if lo.label_smoothing and lo.loss != "bce":
        raise MnistganError(f"label_smoothing applies to the bce loss only, not {lo.loss}")
    if not 0 <= lo.label_smoothing < 0.5:
        raise MnistganError(f"label_smoothing must be in [0, 0.5), got {lo.label_smoothing}")
    bad = [p for p in lo.diffaug.split(",") if p and p not in ("translation", "cutout")]
    if bad:
        raise MnistganError(
            f"unknown diffaug policy '{bad[0]}'; use translation, cutout or both (comma-separated)"
        )
    if t.keep_checkpoints < 0:
        raise MnistganError(f"keep_checkpoints must be >= 0, got {t.keep_checkpoints}")
    if any(e <= 0 for e in t.sample_epochs):
        raise MnistganError(f"sample_epochs must be positive, got {list(t.sample_epochs)}")
    dev = t.device
    if not (dev in ("auto", "cpu", "cuda", "mps") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise MnistganError(f"unknown device '{dev}'; choose auto, cpu, cuda, cuda:N or mps")
    return cfg


# upper bounds: far above any sensible run, low enough that a typo cannot ask for terabytes
LIMITS = {
    "stacked_size": 1_000_000,
    "z_dim": 4096,
    "g_width": 4096,
    "d_width": 4096,
    "g_depth": 32,
    "d_depth": 32,
    "batch_size": 65536,
    "epochs": 1_000_000,
    "eval_samples": 1_000_000,
    "limit": 100_000_000,
}


def upper_bounded(cfg: Config) -> dict:
    m, o, t, d = cfg.model, cfg.optim, cfg.train, cfg.data
    return {
        "z_dim": m.z_dim,
        "g_width": m.g_width,
        "d_width": m.d_width,
        "g_depth": m.g_depth,
        "d_depth": m.d_depth,
        "batch_size": o.batch_size,
        "epochs": t.epochs,
        "eval_samples": t.eval_samples,
        "limit": d.limit,
        "stacked_size": d.stacked_size,
    }


def to_dict(cfg: Config) -> dict:
    d = dataclasses.asdict(cfg)
    d["train"]["sample_epochs"] = list(cfg.train.sample_epochs)
    return d


def from_dict(raw: Any, source: str = "config") -> Config:
    """Build a validated Config from a nested dict; unknown keys are errors (typos matter)."""
    if not isinstance(raw, dict):
        raise MnistganError(f"{source}: expected a JSON object with sections {', '.join(SECTIONS)}")
    raw = dict(raw)
    raw.pop("mnistgan_version", None)
    cfg = Config()
    overrides = {}
    for sec, values in raw.items():
        if sec not in SECTIONS:
            raise MnistganError(f"{source}: unknown section '{sec}'; expected {', '.join(SECTIONS)}")
        if not isinstance(values, dict):
            raise MnistganError(f"{source}: section '{sec}' must be an object")
        known = {f.name for f in fields(section_classes()[sec])}
        for key, value in values.items():
            if key not in known:
                raise MnistganError(f"{source}: unknown setting '{sec}.{key}'")
            overrides[key] = value
    return validate(with_overrides(cfg, overrides))


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MnistganError(f"config file {path} not found; pass a run's config.json") from None
    except (OSError, UnicodeDecodeError) as e:
        raise MnistganError(f"cannot read config file {path}: {e}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise MnistganError(f"config file {path} is not valid JSON ({e.msg} at line {e.lineno})") from None
    except (ValueError, RecursionError):  # numbers beyond Python's digit limit, absurd nesting
        raise MnistganError(
            f"config file {path} is not a usable config (oversized number or nesting)"
        ) from None
    return from_dict(raw, source=str(path))
