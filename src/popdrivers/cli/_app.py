"""The Typer application and the one place user errors become a message and exit code 2."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from popdrivers.errors import PopdriversError

app = typer.Typer(
    name="popdrivers",
    help="Predict Spotify track popularity and estimate which features causally drive it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` to stderr and return the exit (code 2) to raise."""
    # Escaped: messages quote user data and commands ("pip install 'popdrivers[dask]'") that Rich would eat as markup.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def user_errors(func: F) -> F:
    """Turn errors the user can fix (bad files, columns, artifacts, credentials) into exit code 2, no traceback.

    Only :class:`PopdriversError` (bad input raises :class:`~popdrivers.errors.InputError`) and file-system
    errors: any other exception, a plain ``ValueError`` included, is a bug and keeps its traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PopdriversError as exc:
            raise fail(str(exc)) from None
        except FileNotFoundError as exc:
            raise fail(f"{exc.filename or exc}: no such file or folder") from None
        except (IsADirectoryError, NotADirectoryError, PermissionError) as exc:
            raise fail(f"{exc.filename or ''}: {exc.strerror}") from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def _root() -> None:
    """Predict Spotify track popularity and estimate which features causally drive it.

    Start with `popdrivers simulate` or `popdrivers inspect PATH`; `popdrivers run` builds the default
    artifacts from the simulated catalogue and opens the app.
    """
