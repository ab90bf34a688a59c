"""Command line interface: one module per command, each a thin call into the library."""

from __future__ import annotations

from popdrivers.cli import run, simulate  # noqa: F401  (importing registers the commands)
from popdrivers.cli._app import app


def main() -> None:
    """Entry point of the ``popdrivers`` console script."""
    app()


__all__ = ["app", "main"]
