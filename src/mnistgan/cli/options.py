"""One command-line flag per config field (`--batch-size`, `--no-conditional`, ...), built from the
config dataclasses so that the CLI, config.json and the Python API never drift."""

from __future__ import annotations

import typing

import click

from ..config import flat_fields
from ..errors import MnistganError
from ..models import REGISTRY, default_of
from ..presets import PRESETS

PRESET_HELP = f"a named recipe [{'|'.join(PRESETS)}]"


def _click_type(typ):
    if typing.get_origin(typ) is typing.Union:
        typ = next(a for a in typing.get_args(typ) if a is not type(None))
    return {int: click.INT, float: click.FLOAT, bool: click.BOOL}.get(typ, click.STRING)


def _default_text(name: str, default) -> str:
    """'[default: X]' as click shows it; for a width or depth, each model family's own default."""
    if default is None:
        per_model = [f"{model} {default_of(model, name)}" for model in REGISTRY if default_of(model, name)]
        return f"  [default: {', '.join(per_model)}]" if per_model else ""
    shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
    return "" if shown == "" else f"  [default: {shown}]"


def config_options(func):
    """Add one option per config field; all default to None so the command knows what was given.
    The constructor arguments of your own model come as repeated --model-arg NAME=VALUE."""
    func = click.option(
        "--model-arg",
        "model_arg",
        multiple=True,
        metavar="NAME=VALUE",
        help="an argument of your own G's and D's constructors (--model FILE.py:G,D); repeat for more",
    )(func)
    for name, (_, f, typ) in reversed(list(flat_fields().items())):
        if typ is dict:  # model_args: --model-arg above
            continue
        choices = f.metadata.get("choices")
        help_text = (
            f.metadata["help"]
            + (f" [{'|'.join(choices)}]" if choices else "")
            + _default_text(name, f.default)
        )
        flag = f.metadata.get("flag") or name.replace("_", "-")
        if typ is bool:  # --conditional / --no-conditional
            func = click.option(f"--{flag}/--no-{flag}", name, default=None, help=help_text)(func)
        else:
            func = click.option(f"--{flag}", name, type=_click_type(typ), default=None, help=help_text)(func)
    return func


def given_settings(flags: dict) -> dict:
    """The config settings a command line gave: flags not left at None, and each --model-arg NAME=VALUE
    as "model_arg.NAME"."""
    given = {k: v for k, v in flags.items() if v is not None and k != "model_arg"}
    for item in flags.get("model_arg") or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip().isidentifier():
            raise MnistganError(f"--model-arg {item}: expected NAME=VALUE, e.g. --model-arg hidden=256")
        given[f"model_arg.{name.strip()}"] = value
    return given
