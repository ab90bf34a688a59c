"""Processes popdrivers starts are stopped with it: process groups, signal forwarding, watching the parent.

``popdrivers app`` runs the Streamlit server in a process group of its own (:func:`run_process_group`): SIGTERM
(what ``kill``, a process manager or a container stop sends), SIGINT (Ctrl-C) and SIGHUP (a closed terminal) to
``popdrivers app`` stop the whole group, the server and the artifact build it started, and ``popdrivers app``
waits for them. A process that must not outlive the one that started it (the server, the background build)
calls :func:`stop_when_parent_exits`: even when its parent is killed with SIGKILL, which no handler sees, it
stops within a second.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType

# Signals that mean "stop": terminate (kill, process managers, container stop), interrupt (Ctrl-C), hang-up.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# How long a stopped group may take to exit cleanly (Streamlit closes its sessions, a build removes its
# temporary folder) before it is killed.
STOP_GRACE_SECONDS = 10.0
PARENT_POLL_SECONDS = 0.5


def pid_alive(pid: int) -> bool:
    """True when process ``pid`` exists and has not exited (a finished child of ours is reaped, not alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A finished child stays a zombie until reaped: reap it so that it does not count as alive.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not _zombie(pid)  # another's child: a zombie until its parent (or init) reaps it
    return done == 0


def _zombie(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False  # no /proc (not Linux), or gone a moment ago
    return state in {"Z", "X"}


def group_alive(pgid: int) -> bool:
    """True while any process of process group ``pgid`` is alive."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_process_group(pgid: int, grace_seconds: float = STOP_GRACE_SECONDS,
                       first_signal: int = signal.SIGTERM) -> bool:
    """Send ``first_signal`` to every process of group ``pgid``, wait up to ``grace_seconds``, then SIGKILL.

    Returns True when the group exited within the grace period (False: it had to be killed).
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, first_signal)
    deadline = time.monotonic() + grace_seconds
    while group_alive(pgid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(-pgid, os.WNOHANG)  # reap the members that are our children
        if time.monotonic() >= deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(-pgid, 0)
            return False
        time.sleep(0.05)
    return True


def run_process_group(command: Sequence[str], *, env: Mapping[str, str] | None = None,
                      grace_seconds: float = STOP_GRACE_SECONDS,
                      on_stop: Callable[[int], None] | None = None) -> int:
    """Run ``command`` in a new process group until it exits; a stop signal to us stops the whole group.

    SIGTERM, SIGINT and SIGHUP received while it runs are not left to kill this process alone (which would
    orphan the group): the group gets SIGTERM, has ``grace_seconds`` to exit, then SIGKILL. When the command
    exits on its own, whatever it left in its group (a grandchild) is stopped the same way.

    Parameters
    ----------
    command
        The program and its arguments.
    env
        Its environment (default: ours).
    grace_seconds
        How long the group may take to exit after SIGTERM.
    on_stop
        Called with the signal number when a stop signal arrives (e.g. to print a line).

    Returns
    -------
    int
        The command's exit code, or 0 when it was stopped by a signal to us (a stop asked for is a clean stop).
    """
    process = subprocess.Popen(list(command), env=None if env is None else dict(env), process_group=0)
    stopped: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        if not stopped and on_stop is not None:
            on_stop(signum)
        stopped.append(signum)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        while True:
            try:
                code = process.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if stopped and not group_alive(process.pid):
                    code = process.wait()
                    break
                continue
    finally:
        try:
            stop_process_group(process.pid, grace_seconds)  # what the command left behind in its group
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return 0 if stopped else code


def stop_when_parent_exits(expected_parent: int | None = None, *, signum: int = signal.SIGTERM,
                           poll_seconds: float = PARENT_POLL_SECONDS) -> threading.Thread:
    """Send ``signum`` to this process once its parent has exited (checked every ``poll_seconds`` in a thread).

    Parameters
    ----------
    expected_parent
        The process whose exit counts (default: the current parent). When this process is no longer its child
        (re-parented after the parent died, whatever killed it) or it is gone, ``signum`` is sent.
    """
    parent = os.getppid() if expected_parent is None else int(expected_parent)

    def watch() -> None:
        while os.getppid() == parent and pid_alive(parent):
            time.sleep(poll_seconds)
        os.kill(os.getpid(), signum)

    thread = threading.Thread(target=watch, name="popdrivers-parent-watch", daemon=True)
    thread.start()
    return thread
