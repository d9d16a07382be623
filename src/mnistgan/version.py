"""The package version: one place, read by pyproject.toml, the CLI, run and generator metadata."""

__version__ = "0.1.0"
