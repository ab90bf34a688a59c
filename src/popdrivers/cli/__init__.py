"""Command line interface: one module per command in this package, each a thin call into the library.

Every module here (except those starting with '_') is imported, which registers its command on ``app``.
"""

from __future__ import annotations

import importlib
import pkgutil

from popdrivers.cli._app import app

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")


def main() -> None:
    """Entry point of the ``popdrivers`` console script."""
    app()


__all__ = ["app", "main"]
