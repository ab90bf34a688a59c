"""The Typer application and the one place user errors become a message and exit code 2."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from popdrivers.errors import ArtifactError, CredentialsError, FormatError, PopdriversError

if TYPE_CHECKING:
    import pandas as pd

    from popdrivers.sources.files import ReadReport

app = typer.Typer(
    name="popdrivers",
    help="Predict Spotify track popularity and estimate which features causally drive it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help text is shown as written: Rich markup would eat "[dask]" in "pip install 'popdrivers[dask]'".
    rich_markup_mode=None,
)
# Piped or logged output keeps whole tables (Rich assumes 80 columns when it is not a terminal, which cut the
# drivers table to "…"); COLUMNS still wins when set.
_PIPE_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
console = Console(width=_PIPE_WIDTH)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() or os.environ.get("COLUMNS") else 200)
F = TypeVar("F", bound=Callable[..., Any])
# What the running command read (see read_data): an error about the table then says what reading kept.
_LAST_READ: ContextVar[ReadReport | None] = ContextVar("popdrivers_last_read", default=None)
# Errors that already name the file or folder they are about.
_NAMES_ITS_FILE = (FormatError, ArtifactError, CredentialsError)


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` to stderr and return the exit (code 2) to raise."""
    # Escaped: messages quote user data and commands ("pip install 'popdrivers[dask]'") that Rich would eat as markup.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def read_data(data: Path, fmt: str = "auto", *, require_popularity: bool = True) -> tuple[pd.DataFrame, ReadReport]:
    """Read a command's ``--data`` with its report; a later error about the table says what reading kept."""
    from popdrivers.sources.files import read_tracks_with_report

    tracks, report = read_tracks_with_report(data, fmt, require_popularity=require_popularity)
    _LAST_READ.set(report)
    return tracks, report


def about_data(exc: Exception, data: Any) -> str:
    """The message of an error raised while a command worked on ``--data``, naming the file.

    Errors about the track table (too few tracks, no usable feature, a column the model needs) are raised by
    the library without a file name; the command knows it. When reading dropped rows, what it kept is added:
    "7 tracks, too few" is then explained by "7 of 10 source rows kept: 3 without popularity".
    """
    from popdrivers.schema import SchemaError

    message = str(exc)
    source = os.fspath(data)
    if isinstance(exc, SchemaError) and exc.source is None:
        message = str(SchemaError(exc.problems, source))
    elif not isinstance(exc, _NAMES_ITS_FILE) and source not in message and not message.startswith("--"):
        message = f"{source}: {message}"
    report = _LAST_READ.get()
    if report is not None and report.rows_dropped and isinstance(exc, SchemaError | PopdriversError | ValueError) \
            and not isinstance(exc, _NAMES_ITS_FILE):
        message += f"\n  ({report.summary()})"
    return message


def user_errors(func: F) -> F:
    """Turn errors the user can fix (bad files, columns, artifacts, credentials) into exit code 2, no traceback.

    In a command with a ``data`` argument, an error about the table names that file (see :func:`about_data`).
    Only :class:`PopdriversError` (bad input raises :class:`~popdrivers.errors.InputError`) and file-system
    errors: any other exception, a plain ``ValueError`` included, is a bug and keeps its traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        data = kwargs.get("data")
        token = _LAST_READ.set(None)
        try:
            return func(*args, **kwargs)
        except PopdriversError as exc:
            raise fail(about_data(exc, data) if data is not None else str(exc)) from None
        except FileNotFoundError as exc:
            raise fail(f"{exc.filename or exc}: no such file or folder") from None
        except (IsADirectoryError, NotADirectoryError, PermissionError) as exc:
            raise fail(f"{exc.filename or ''}: {exc.strerror}") from None
        finally:
            _LAST_READ.reset(token)

    return wrapper  # type: ignore[return-value]


def _print_version(value: bool) -> None:
    if value:
        from popdrivers import __version__

        typer.echo(f"popdrivers {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print popdrivers' version and exit."),
) -> None:
    """Predict Spotify track popularity and estimate which features causally drive it.

    Start with `popdrivers simulate` or `popdrivers inspect PATH`; `popdrivers run` builds the default
    artifacts from the simulated catalogue and opens the app.
    """
