"""Progress reporting that works in a terminal (Rich bar with counts and ETA) and in the app (a callback).

Library functions take ``progress: ProgressCallback | None``; the CLI passes :func:`rich_progress`'s
callback, the Streamlit app passes one that updates ``st.progress``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

# (done, total, message) -> None
ProgressCallback = Callable[[int, int, str], None]


def null_progress(done: int, total: int, message: str) -> None:
    """A callback that ignores progress."""


@contextlib.contextmanager
def rich_progress(description: str, console: Console | None = None) -> Iterator[ProgressCallback]:
    """A Rich progress bar (counts, elapsed, ETA) driven through a :data:`ProgressCallback`."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[message]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console or Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=None, message="")

        def update(done: int, total: int, message: str) -> None:
            bar.update(task, completed=done, total=total, message=message)

        yield update
