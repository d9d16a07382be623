"""Command line: parsing only; every command calls a library function.

`mnistgan --help` lists the commands without importing them (click's lazy-group pattern): a command
family's module, and the library (torch) behind it, is imported when one of its commands runs or
shows its own help.
"""

from __future__ import annotations

import importlib
import sys

import click

from ..errors import MnistganError
from ..version import __version__

# command -> (module in this package, click command in it, the line `mnistgan --help` shows)
COMMANDS = {
    "train": ("train", "train_command", "Train a GAN; writes a self-describing run folder."),
    "generate": ("generate", "generate_command", "Generate images from a saved generator."),
    "interpolate": (
        "generate",
        "interpolate_command",
        "Write a latent-interpolation grid (PNG) and its animation.",
    ),
    "evaluate": ("evaluate", "evaluate_command", "Score a generator's samples with the bundled classifier."),
    "predict": ("evaluate", "predict_command", "Label images with the bundled classifier."),
    "export": (
        "export",
        "export_command",
        "Export a saved generator (ONNX, TorchScript, Keras, a web page).",
    ),
    "sweep": ("sweep", "sweep_command", "Train and evaluate every combination of a grid for several seeds."),
    "report": ("report", "report_command", "Write a report (HTML and PDF) on runs and sweeps."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str):
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][2]) for name in self.list_commands(ctx)])


@click.group(
    cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110}
)
@click.version_option(__version__, prog_name="mnistgan")
def cli():
    """Train, evaluate, sample and report GANs on MNIST-style 28x28 images."""


def main(argv=None) -> None:
    """Entry point: one clear line on errors (no traceback), exit status 2; 130 on Ctrl-C."""
    try:
        cli.main(args=argv, prog_name="mnistgan", standalone_mode=False)
    except MnistganError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except click.ClickException as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # bare `mnistgan`: show the help
            click.echo(e.format_message())
            sys.exit(0)
        msg = e.format_message().replace("\n", " ")
        command = (e.ctx.info_name + " ") if getattr(e, "ctx", None) and e.ctx.parent else ""
        click.echo(f"error: {msg} (see mnistgan {command}--help)", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
