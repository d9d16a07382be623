"""Named recipes: each preset is a set of config fields (docs/benchmarks.md has the measurements
behind them). Settings resolve as defaults <- a config file <- a preset <- explicit settings, the
same for the command line (`--preset fast --lr 1e-3`) and the Python API
(`mnistgan.train(preset="fast", lr=1e-3)`)."""

from __future__ import annotations

from typing import Any, Optional

from .config import Config, from_dict, load_config, validate, with_overrides
from .errors import MnistganError

_HINGE_SN = {"loss": "hinge", "d_norm": "spectral", "beta1": 0.0, "beta2": 0.9}
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # hinge loss + spectral-norm D + Adam(0, 0.9) at 4e-4, batch 64 (+ the default 100 clusters): the
    # best FID per epoch measured, first to the textbook setups' 10-minute FID (docs/benchmarks.md)
    "fast": {**_HINGE_SN, "lr": 4e-4, "batch_size": 64},
    # the same recipe, trained longer (pair it with --time-budget)
    "best": {**_HINGE_SN, "lr": 4e-4, "batch_size": 64, "epochs": 100, "ema_decay": 0.999, "sample_every": 5},
    # small data (--digit D --limit N): DiffAugment keeps D from memorising a few thousand images
    "small-data": {**_HINGE_SN, "lr": 4e-4, "batch_size": 64, "epochs": 60, "diffaug": "translation,cutout"},
    # the autoencoder baseline with its usual optimiser settings
    "vae": {"model": "vae", "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "ema_decay": 0.0},
    # the course material's setups, for side-by-side comparisons
    "textbook-mlp": {
        "model": "mlp",
        "g_activation": "leaky_relu",
        "dropout": 0.3,
        "batch_size": 64,
        "ema_decay": 0.0,
        "precision": "fp32",
        "init": "default",
        "clusters": 0,
    },
    "textbook-dcgan": {
        "model": "dcgan",
        "batch_size": 64,
        "ema_decay": 0.0,
        "precision": "fp32",
        "clusters": 0,
    },
}


def preset_settings(name: Optional[str]) -> dict[str, Any]:
    """The fields a preset sets ({} for none), or one error naming the presets."""
    if not name:
        return {}
    if name not in PRESETS:
        raise MnistganError(f"unknown preset '{name}'; choose one of: {', '.join(PRESETS)}")
    return dict(PRESETS[name])


def resolve_config(
    config: Optional[Config | dict | str] = None,
    preset: Optional[str] = None,
    settings: Optional[dict[str, Any]] = None,
    skip_none: bool = True,
) -> Config:
    """Defaults <- config (a Config, a nested dict as in config.json, or a config.json path) <- preset
    <- settings (flat fields). skip_none: None means "not given" (command-line flags) rather than
    "set this field to None" (the Python API)."""
    if config is None:
        cfg = Config()
    elif isinstance(config, Config):
        cfg = config
    elif isinstance(config, dict):
        cfg = from_dict(config)
    else:
        cfg = load_config(config)
    cfg = with_overrides(cfg, preset_settings(preset))
    given = {k: v for k, v in (settings or {}).items() if v is not None or not skip_none}
    return validate(with_overrides(cfg, given))
