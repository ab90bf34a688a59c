"""Progress reporting that works in a terminal (Rich bar with counts and ETA), in a log file and in the app.

Library functions take ``progress: ProgressCallback | None``; the CLI passes :func:`rich_progress`'s
callback, the Streamlit app passes one that updates ``st.progress`` (or a build status file).
When the output is not a terminal (redirected to a file, CI), a Rich bar would show nothing until the end,
so :func:`rich_progress` prints a plain line instead every few seconds and whenever the stage changes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TextIO

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
PLAIN_INTERVAL_SECONDS = 5.0


def null_progress(done: int, total: int, message: str) -> None:
    """A callback that ignores progress."""


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class PlainProgress:
    """A :data:`ProgressCallback` that writes plain lines: elapsed, stage, done/total, percent, ETA, message.

    A line is written when the stage (the message up to its first colon) changes, when a stage finishes,
    and otherwise at most every ``interval`` seconds, so a log shows where the time goes without flooding.
    """

    def __init__(self, description: str, stream: TextIO, interval: float = PLAIN_INTERVAL_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.description = description
        self.stream = stream
        self.interval = interval
        self.clock = clock
        self.started = clock()
        self.stage: str | None = None
        # Where the current stage started (time, done): the ETA extrapolates the stage's own pace.
        self.baseline = (self.started, 0)
        self.last_line = -float("inf")

    def __call__(self, done: int, total: int, message: str) -> None:
        now = self.clock()
        stage = message.split(":", 1)[0].strip() if message else self.description
        changed = stage != self.stage
        if changed or done < self.baseline[1]:
            self.stage, self.baseline = stage, (now, done)
        finished = bool(total) and done >= total
        if not (changed or finished or now - self.last_line >= self.interval):
            return
        self.last_line = now
        parts = [f"[{_duration(now - self.started):>6}] {self.description}: {message or stage}"]
        if total:
            parts.append(f"{done}/{total} ({100 * min(done / total, 1.0):.0f}%)")
            since, done_then = self.baseline
            if done_then < done < total and now > since:
                rate = (now - since) / (done - done_then)
                parts.append(f"ETA {_duration(rate * (total - done))}")
        print(" - ".join(parts), file=self.stream, flush=True)


@contextlib.contextmanager
def rich_progress(description: str, console: Console | None = None,
                  plain_interval: float = PLAIN_INTERVAL_SECONDS) -> Iterator[ProgressCallback]:
    """A Rich progress bar (counts, elapsed, ETA) driven through a :data:`ProgressCallback`.

    When the console is not a terminal, plain lines (see :class:`PlainProgress`) instead.
    """
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield PlainProgress(description, console.file, plain_interval)
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[message]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=None, message="")

        def update(done: int, total: int, message: str) -> None:
            bar.update(task, completed=done, total=total, message=message)

        yield update
