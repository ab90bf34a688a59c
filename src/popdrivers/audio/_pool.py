"""A pool of long-lived worker processes with a wall-time limit per file.

Each worker (``_worker.py``) loads Essentia and librosa once and analyses file after file, so a batch pays the
start-up (about 2-5 s) once per core, not once per file. A file that takes longer than ``timeout`` seconds gets
its worker killed and replaced; a worker that dies (a decoder crash, the memory limit) fails only the file it
held. Every worker is stopped when the pool closes, also on Ctrl-C or an exception.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from popdrivers.errors import PopdriversError

STARTUP_TIMEOUT = 180.0


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    started_at: float
    ready: bool = False
    task: tuple[int, Any] | None = None
    task_started: float = 0.0
    buffer: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True)
class Outcome:
    """What became of one task: ``result`` (a dict) or ``reason`` (why it failed)."""

    index: int
    item: Any
    result: dict[str, Any] | None
    reason: str | None
    seconds: float


class WorkerPool:
    """``jobs`` analysis workers; use as a context manager and call :meth:`run`."""

    def __init__(self, jobs: int, *, timeout: float, memory_limit: int, max_seconds: float):
        self.jobs = max(1, int(jobs))
        self.timeout = float(timeout)
        self.memory_limit = int(memory_limit)
        self.max_seconds = float(max_seconds)
        self._workers: list[_Worker] = []
        self._selector = selectors.DefaultSelector()
        self._queue: deque[tuple[int, tuple[Any, str]]] = deque()
        self._next_index = 0
        self._outstanding = 0
        self.restarts = 0

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self) -> _Worker:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        process = subprocess.Popen(
            [sys.executable, "-m", "popdrivers.audio._worker", str(self.memory_limit)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
            start_new_session=True)
        worker = _Worker(process, time.monotonic())
        assert process.stdout is not None
        os.set_blocking(process.stdout.fileno(), False)
        self._selector.register(process.stdout, selectors.EVENT_READ, worker)
        self._workers.append(worker)
        return worker

    def _stop(self, worker: _Worker) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(worker.process.stdout)  # type: ignore[arg-type]
        if worker.process.poll() is None:
            worker.process.kill()
        with contextlib.suppress(Exception):
            worker.process.wait(timeout=10)
        for stream in (worker.process.stdin, worker.process.stdout):
            with contextlib.suppress(Exception):
                stream.close()  # type: ignore[union-attr]
        if worker in self._workers:
            self._workers.remove(worker)

    def close(self) -> None:
        """Stop every worker (their stdin closes, then a kill for any still running)."""
        for worker in list(self._workers):
            with contextlib.suppress(Exception):
                worker.process.stdin.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + 2.0
        for worker in list(self._workers):
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            self._stop(worker)
        self._selector.close()

    def _send(self, worker: _Worker, index: int, item: Any, path: str) -> None:
        worker.task = (index, item)
        worker.task_started = time.monotonic()
        message = json.dumps({"id": index, "path": path, "max_seconds": self.max_seconds}) + "\n"
        try:
            worker.process.stdin.write(message.encode("utf-8"))  # type: ignore[union-attr]
            worker.process.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):
            pass  # the worker died: its EOF is seen by the loop and the task fails there

    def _lines(self, worker: _Worker) -> tuple[list[dict[str, Any]], bool]:
        """Complete messages from a worker, and whether its stdout has closed (the worker ended)."""
        closed = False
        while True:
            try:
                chunk = os.read(worker.process.stdout.fileno(), 1 << 16)  # type: ignore[union-attr]
            except BlockingIOError:
                break
            except OSError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            worker.buffer.extend(chunk)
        messages = []
        while b"\n" in worker.buffer:
            line, _, rest = bytes(worker.buffer).partition(b"\n")
            worker.buffer = bytearray(rest)
            with contextlib.suppress(ValueError):
                messages.append(json.loads(line))
        return messages, closed

    @property
    def pending(self) -> int:
        """Items submitted and not yet returned by :meth:`poll`."""
        return self._outstanding

    def submit(self, item: Any, path: str) -> int:
        """Queue ``path`` for analysis (never blocks); workers start lazily, up to ``jobs``. Returns its index."""
        index = self._next_index
        self._next_index += 1
        self._queue.append((index, (item, path)))
        self._outstanding += 1
        while len(self._workers) < min(self.jobs, self._outstanding):
            self._spawn()
        return index

    def poll(self, timeout: float | None = None) -> list[Outcome]:
        """Outcomes finished by now; waits up to ``timeout`` seconds for one (None: until there is one).

        Also hands queued items to idle workers and enforces the time limit, so call it often while items are
        pending (it wakes at least every 0.5 s while it waits).
        """
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        outcomes: list[Outcome] = []
        while True:
            if self._queue and not self._workers:
                self._spawn()
            self._dispatch()
            now = time.monotonic()
            wait = 0.5 if deadline is None else max(0.0, min(0.5, deadline - now))
            events = self._selector.select(timeout=wait) if self._workers else []
            for key, _ in events:
                worker: _Worker = key.data
                messages, closed = self._lines(worker)
                for message in messages:
                    if message.get("ready"):
                        worker.ready = True
                    elif worker.task is not None and message.get("id") == worker.task[0]:
                        index, item = worker.task
                        seconds = time.monotonic() - worker.task_started
                        outcomes.append(Outcome(index, item, message.get("result") if message.get("ok") else None,
                                                None if message.get("ok") else str(message.get("reason")),
                                                seconds))
                        worker.task = None
                if closed:
                    outcomes += self._replace(worker, died=True)
            now = time.monotonic()
            for worker in list(self._workers):
                if worker.task is not None and now - worker.task_started > self.timeout:
                    outcomes += self._replace(worker, died=False)
                elif not worker.ready and now - worker.started_at > STARTUP_TIMEOUT:
                    self.close()
                    raise PopdriversError(f"the audio analysis workers did not start within {STARTUP_TIMEOUT:.0f} s "
                                          "(is the machine overloaded, or is essentia installed? "
                                          "python -c 'import essentia')")
            self._outstanding -= len(outcomes)
            if outcomes or not self._outstanding or (deadline is not None and time.monotonic() >= deadline):
                self._dispatch()
                return outcomes

    def _dispatch(self) -> None:
        for worker in list(self._workers):
            if worker.ready and worker.task is None and self._queue:
                index, (item, path) = self._queue.popleft()
                self._send(worker, index, item, path)

    def run(self, items: Iterable[tuple[Any, str]]) -> Iterator[Outcome]:
        """Analyse ``(item, path)`` pairs; yields an :class:`Outcome` per item as each finishes (any order)."""
        for item, path in items:
            self.submit(item, path)
        while self.pending:
            yield from self.poll(None)

    def _replace(self, worker: _Worker, *, died: bool) -> list[Outcome]:
        """Stop ``worker``, fail its task with the reason, start a replacement if work is left."""
        outcomes = []
        if worker.task is not None:
            index, item = worker.task
            seconds = time.monotonic() - worker.task_started
            if died:
                code = worker.process.poll()
                if code is None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        code = worker.process.wait(timeout=5)
                how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                reason = (f"the decoder or analysis crashed ({how}); the file is probably damaged or exceeded the "
                          f"memory limit ({self.memory_limit / 2**30:.1f} GiB)")
            else:
                reason = (f"analysis took longer than the time limit ({self.timeout:g} s) and was stopped; the file "
                          "may be damaged or very long (raise --timeout if it is a real recording)")
            outcomes.append(Outcome(index, item, None, reason, seconds))
            worker.task = None
        elif died and not worker.ready:
            self.close()
            raise PopdriversError("an audio analysis worker could not start (check that essentia, librosa and "
                                  "soundfile import: python -m popdrivers.audio._worker)")
        self._stop(worker)
        self.restarts += 1
        busy = sum(1 for w in self._workers if w.task is not None)
        if len(self._workers) < min(self.jobs, len(self._queue) + busy):
            self._spawn()
        return outcomes
