"""Parsing a sweep's command line: the grid (`lr=1e-4,2e-4 model=mlp,dcgan`), the seeds, and the
fixed settings as JSON values for sweep.json (sweepdir.SweepSpec)."""

from __future__ import annotations

from typing import Any

from ..config import Config, coerce, flat_fields, to_dict, with_overrides
from ..errors import MnistganError

NOT_SWEEPABLE = {
    "seed": "use --seeds N (or --seeds 0,5,9) for seeds",
    "sample_epochs": "set it once with --sample-epochs",
}


def parse_grid(specs: list[str]) -> dict[str, list]:
    """["lr=1e-4,2e-4", "model=mlp,dcgan"] -> {"lr": [0.0001, 0.0002], "model": ["mlp", "dcgan"]}.

    Keys are config field names (dashes allowed), or model_arg.NAME for a constructor argument of
    your own model; values are parsed with the field's type.
    """
    flat = flat_fields()
    grid: dict[str, list] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key or not values.strip(","):
            raise MnistganError(f"grid entry '{spec}' must look like KEY=V1,V2 (e.g. lr=1e-4,2e-4)")
        model_arg = key.startswith("model_arg.") and key.split(".", 1)[1].isidentifier()
        if key not in flat and not model_arg:
            raise MnistganError(f"grid: unknown setting '{key}'; see `mnistgan train --help` for the list")
        if key in NOT_SWEEPABLE:
            raise MnistganError(f"grid: {key} cannot be swept this way; {NOT_SWEEPABLE[key]}")
        if key in grid:
            raise MnistganError(f"grid: {key} is given twice; list all its values once ({key}=A,B,C)")
        try:
            if model_arg:  # a constructor argument of your own model: model_arg.hidden=128,256
                parsed = [coerce(key, {"v": v.strip()}, dict)["v"] for v in values.split(",") if v.strip()]
            else:
                parsed = [coerce(key, v.strip(), flat[key][2]) for v in values.split(",") if v.strip()]
        except MnistganError as e:
            raise MnistganError(f"grid: {e}") from None
        if len(set(map(repr, parsed))) != len(parsed):
            raise MnistganError(f"grid: {key} lists a value twice ({values})")
        grid[key] = parsed
    return grid


def parse_seeds(text: str | int | list) -> list[int]:
    """'3' -> [0, 1, 2]; '0,5,9' -> [0, 5, 9]."""
    if isinstance(text, int):
        text = str(text)
    if isinstance(text, list):
        text = ",".join(map(str, text))
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise MnistganError(
            f"--seeds must be a count (3) or a list of integers (0,5,9), got '{text}'"
        ) from None
    if len(values) == 1 and "," not in str(text):
        if values[0] <= 0:
            raise MnistganError(f"--seeds must be at least 1, got {values[0]}")
        return list(range(values[0]))
    if not values or len(set(values)) != len(values) or min(values) < 0:
        raise MnistganError(f"--seeds: give distinct non-negative integers, got '{text}'")
    return values


def json_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """Flat overrides as JSON values (tuples become lists), checked against the config."""
    flat = to_dict(with_overrides(Config(), overrides))  # coerced; validated per combination in check()
    by_name = {name: flat[sec][name] for name, (sec, _, _) in flat_fields().items()}
    by_name.update({f"model_arg.{k}": v for k, v in flat["model"]["model_args"].items()})
    return {k.replace("-", "_"): by_name[k.replace("-", "_")] for k in overrides}
