"""Building an artifact set in the background: the app starts at once and shows the build's progress.

Beside the artifact folder DIR, a folder ``.DIR.build/`` holds ``lock`` (created exclusively; the builder's
process id), ``request.json`` (what to build, and the process that asked for it: its *owner*), ``status.json``
(state, stage, percent, message, error; rewritten as the build advances) and ``build.log`` (the builder's
output). The lock is what keeps a second browser tab, a rerun or a second server from starting a second build:
whoever creates it builds, everyone else watches ``status.json``.

The builder is a process of its own (a fit holds the GIL for seconds; the server must keep answering) that runs
one library function, :func:`run_background_build`, on the request: not the command line. It belongs to its
owner, the app's server: it stops when the owner exits, however the owner ends (a stop signal to the app's
process group reaches it directly; a killed owner is noticed within a second), and it stops cleanly (its
temporary folder removed, its status saying it was stopped). A build whose process is gone is recognised
from its lock and status: stopped with its app (or killed together with it), it is stale and the next start
builds again; dead while its app still runs (killed alone, out of memory), it is reported as failed, with its
log, and retried only when the user asks.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from popdrivers.artifacts import remove_stale_temporaries, utc_now, write_json_atomic
from popdrivers.errors import InputError, PopdriversError
from popdrivers.pipeline._artifacts import DEFAULT_BUDGET_SECONDS, build_artifacts, is_artifact_dir
from popdrivers.processes import pid_alive, stop_when_parent_exits
from popdrivers.progress import ProgressCallback

BUILD_STATES = ("missing", "running", "failed", "done")
STATUS_FILE = "status.json"
LOCK_FILE = "lock"
LOG_FILE = "build.log"
REQUEST_FILE = "request.json"
# A lock younger than this without a process id is a build being started, not a stale one.
LOCK_GRACE_SECONDS = 30.0
ENV_BUILD_OPTIONS = "POPDRIVERS_BUILD_OPTIONS"
# What the builder process runs: one library function on the request in the build folder.
_BUILDER = ("import sys; from popdrivers.pipeline import run_background_build; "
            "sys.exit(run_background_build(sys.argv[1]))")


class BuildStopped(BaseException):
    """The background build was asked to stop (its app stopped, or a stop signal): not an error of the build.

    A :class:`BaseException`, like :class:`KeyboardInterrupt`, so that no ``except Exception`` on the way
    swallows it and every ``finally`` (the temporary folder's removal) runs.
    """


@dataclass(frozen=True)
class BuildStatus:
    """Where a background build of an artifact folder stands.

    ``state`` is "missing" (no artifacts and no build running: ``message`` may say why an earlier build is
    gone), "running", "failed" (``error`` says why) or "done".
    """

    state: str
    stage: str = ""
    percent: float = 0.0
    message: str = ""
    error: str | None = None
    pid: int | None = None
    log: str | None = None
    command: str | None = None


@dataclass(frozen=True)
class BuildRequest:
    """What a background build builds: the keyword arguments of :func:`build_artifacts` it takes from options.

    Options are written as for ``popdrivers build`` (``--data FILE --format F --budget-seconds S --seed N
    --n-artists N --tracks-per-artist N``): the app passes ``--data`` when it was given one, and the
    environment variable ``POPDRIVERS_BUILD_OPTIONS`` adds any of them.
    """

    out_dir: str
    data: str | None = None
    format: str = "auto"
    budget_seconds: float = DEFAULT_BUDGET_SECONDS
    seed: int = 0
    n_artists: int = 300
    tracks_per_artist: int = 60

    @classmethod
    def from_options(cls, out_dir: str | os.PathLike[str], options: Sequence[str] = ()) -> BuildRequest:
        """The request for ``out_dir`` with ``options`` (``popdrivers build`` syntax).

        Raises
        ------
        InputError
            An option the build does not know, or a value of the wrong type, naming the option.
        """
        parser = _OptionParser(prog="popdrivers build", add_help=False, allow_abbrev=False)
        parser.add_argument("--data", default=None)
        parser.add_argument("--format", default="auto")
        parser.add_argument("--budget-seconds", type=float, default=DEFAULT_BUDGET_SECONDS)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--n-artists", type=int, default=300)
        parser.add_argument("--tracks-per-artist", type=int, default=60)
        parsed = parser.parse_args(list(options))
        data = None if parsed.data is None else str(Path(parsed.data).resolve())
        return cls(str(Path(out_dir).resolve()), data, parsed.format, parsed.budget_seconds, parsed.seed,
                   parsed.n_artists, parsed.tracks_per_artist)

    def command(self, shown_out: str | os.PathLike[str] | None = None) -> str:
        """The ``popdrivers build`` line that builds the same by hand (shown when the build fails)."""
        words = ["popdrivers", "build", "--out", str(shown_out or self.out_dir)]
        defaults = BuildRequest(self.out_dir)
        for name, value in asdict(self).items():
            if name != "out_dir" and value != getattr(defaults, name):
                words += [f"--{name.replace('_', '-')}", f"{value:g}" if isinstance(value, float) else str(value)]
        return shlex.join(words)

    def build_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`build_artifacts` (``out_dir`` aside)."""
        return {k: v for k, v in asdict(self).items() if k != "out_dir"}


class _OptionParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"build options ({ENV_BUILD_OPTIONS} or the app's --data): {message}. Fix: use the "
                         "options of `popdrivers build`: --data, --format, --budget-seconds, --seed, --n-artists, "
                         "--tracks-per-artist")


def build_dir(out_dir: str | os.PathLike[str]) -> Path:
    """The folder holding the lock, request, status and log of the background build of ``out_dir``."""
    out_dir = Path(out_dir).resolve()
    return out_dir.parent / f".{out_dir.name}.build"


def _lock_pid(lock: Path) -> int | None:
    try:
        text = lock.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _write_status(folder: Path, **fields: Any) -> None:
    path = folder / STATUS_FILE
    tmp = folder / f".{STATUS_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({**fields, "updated_at": utc_now()}), encoding="utf-8")
    os.replace(tmp, path)


def build_status(out_dir: str | os.PathLike[str]) -> BuildStatus:
    """The state of ``out_dir``: done (artifacts there), running, failed, or missing (nothing to wait for).

    A build whose process is gone is stale (state "missing", so that the next start builds again) when it was
    stopped, or when the process that started it is gone too (the app was stopped, or killed with it); it is
    "failed" when it died while its starter still runs (killed alone or out of memory: it would die again).
    """
    if is_artifact_dir(out_dir):
        return BuildStatus("done", percent=100.0)
    folder = build_dir(out_dir)
    lock = folder / LOCK_FILE
    status = _read_json(folder / STATUS_FILE)
    log = str(folder / LOG_FILE)
    fields = {k: status.get(k) for k in ("stage", "message", "command") if status.get(k) is not None}
    percent = float(status.get("percent") or 0.0)
    state = status.get("state")
    if lock.exists():
        pid = _lock_pid(lock)
        if pid is not None and pid_alive(pid):
            return BuildStatus("running", percent=percent, pid=pid, log=log, **fields)
        try:
            young = time.time() - lock.stat().st_mtime < LOCK_GRACE_SECONDS
        except OSError:  # removed a moment ago: the build has just ended
            return build_status(out_dir)
        if pid is None and young:
            return BuildStatus("running", percent=percent, log=log, **fields)
        builder_gone = True
    else:
        builder_gone = state == "running"  # it never said how it ended
    if state == "failed":
        return BuildStatus("failed", percent=percent, log=log, error=status.get("error") or "unknown error",
                           **fields)
    if state == "stopped":
        return BuildStatus("missing", log=log, message=f"the previous build was stopped ({status.get('error')})")
    if not builder_gone:
        return BuildStatus("missing")
    owner = status.get("owner")
    if isinstance(owner, int) and (owner == os.getpid() or pid_alive(owner)):
        return BuildStatus("failed", percent=percent, log=log, error="the build process stopped before it "
                           "finished (killed or out of memory?) while the app that started it kept running; its "
                           f"output is in {log}", **fields)
    return BuildStatus("missing", log=log, message="the previous build ended with the app that started it "
                       "(stopped or killed before it finished): it is started again")


def start_background_build(out_dir: str | os.PathLike[str], options: Sequence[str] | None = None) -> BuildStatus:
    """Start building ``out_dir`` in a process of its own, unless a build of it runs (or failed, or is done).

    The builder belongs to this process: it stops when this process exits. Options (``popdrivers build``
    syntax, see :class:`BuildRequest`) come from ``options`` plus the environment variable
    ``POPDRIVERS_BUILD_OPTIONS``. Returns the status afterwards: running, or done or failed if that is where it
    already was (a failed build is started again only after :func:`clear_build_status`: the user decides).

    Raises
    ------
    InputError
        Options the build does not know.
    """
    status = build_status(out_dir)
    if status.state != "missing":
        return status
    request = BuildRequest.from_options(out_dir, [*(options or []),
                                                  *shlex.split(os.environ.get(ENV_BUILD_OPTIONS, ""))])
    folder = build_dir(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_FILE
    if lock.exists():  # a stale lock of a stopped, failed or killed build: move it aside, then compete
        aside = folder / f"{LOCK_FILE}.stale.{os.getpid()}"
        with contextlib.suppress(OSError):
            lock.rename(aside)
            aside.unlink()
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return build_status(out_dir)  # someone else started it a moment ago
    try:
        # Half-written folders of builders that died without cleaning up (killed with SIGKILL).
        removed = remove_stale_temporaries(request.out_dir)
        shown = request.command(out_dir)
        write_json_atomic(folder / REQUEST_FILE, {**asdict(request), "owner": os.getpid(), "command": shown})
        _write_status(folder, state="running", stage="starting", percent=0.0, message="starting the build",
                      command=shown, owner=os.getpid())
        with open(folder / LOG_FILE, "a", encoding="utf-8") as log:  # appended: earlier attempts stay readable
            log.write(f"== build started {utc_now()}: {shown}\n")
            for path in removed:
                log.write(f"removed {path}, left by a build that did not finish\n")
            log.flush()
            # In this process's group: a stop signal to the app's group reaches the builder too.
            process = subprocess.Popen([sys.executable, "-c", _BUILDER, str(folder)], stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        os.write(fd, str(process.pid).encode())
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            lock.unlink()
        raise
    os.close(fd)
    return BuildStatus("running", stage="starting", message="starting the build", pid=process.pid,
                       log=str(folder / LOG_FILE), command=shown)


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise BuildStopped(f"stopped by {signal.Signals(signum).name}")


def run_background_build(status_dir: str | os.PathLike[str]) -> int:
    """Build what ``status_dir/request.json`` asks for, reporting to ``status_dir`` (the builder process's job).

    Stops cleanly (:class:`BuildStopped`: no half-written folder, status "stopped") on SIGTERM, SIGINT or
    SIGHUP, and when the process that asked for the build exits. Returns the exit code: 0 built, 2 bad input
    (the status says why), 143 stopped.
    """
    from popdrivers.progress import rich_progress

    folder = Path(status_dir)
    request = _read_json(folder / REQUEST_FILE)
    with contextlib.suppress(OSError):
        os.nice(10)  # the server and the page it shows come first on a busy machine
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _raise_stopped)
    owner = request.get("owner")
    if isinstance(owner, int):
        stop_when_parent_exits(owner)
    fields = {k: v for k, v in request.items() if k in BuildRequest.__dataclass_fields__}
    build = BuildRequest(**fields)
    try:
        with rich_progress("build") as log_progress:  # plain lines in build.log
            build_with_status(build.out_dir, folder, log_progress=log_progress, **build.build_kwargs())
    except BuildStopped as exc:
        print(f"build {exc}: nothing was written to {build.out_dir}", flush=True)
        return 143
    except (PopdriversError, OSError) as exc:
        print(f"error: {exc}", flush=True)
        return 2
    print(f"Artifacts ready in {build.out_dir}.", flush=True)
    return 0


def build_with_status(out_dir: str | os.PathLike[str], status_dir: str | os.PathLike[str], *,
                      log_progress: ProgressCallback | None = None, **kwargs: Any) -> Path:
    """:func:`build_artifacts`, writing its progress to ``status_dir`` (what the background build runs).

    On failure the status says why (one line) and the exception propagates; a stop (:class:`BuildStopped`,
    Ctrl-C) is recorded as "stopped", not as a failure. Either way the lock is released.
    """
    folder = Path(status_dir)
    folder.mkdir(parents=True, exist_ok=True)
    previous = _read_json(folder / STATUS_FILE)
    command, owner = previous.get("command"), previous.get("owner")
    last = [0.0]

    def update(done: int, total: int, message: str) -> None:
        if log_progress is not None:
            log_progress(done, total, message)
        now = time.monotonic()
        if now - last[0] < 0.5 and done < total:
            return
        last[0] = now
        stage = message.split(":", 1)[0] if message else ""
        _write_status(folder, state="running", stage=stage, percent=round(100.0 * done / total, 1) if total else 0.0,
                      message=message, pid=os.getpid(), command=command, owner=owner)

    try:
        path = build_artifacts(out_dir, progress=update, **kwargs)
    except (BuildStopped, KeyboardInterrupt) as exc:
        _write_status(folder, state="stopped", error=str(exc) or "interrupted", command=command, owner=owner)
        raise
    except BaseException as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _write_status(folder, state="failed", error=f"{type(exc).__name__}: {reason}", command=command, owner=owner)
        raise
    finally:
        with contextlib.suppress(OSError):
            (folder / LOCK_FILE).unlink()
    _write_status(folder, state="done", percent=100.0, stage="done", message="artifacts built", command=command,
                  owner=owner)
    return path


def clear_build_status(out_dir: str | os.PathLike[str]) -> None:
    """Forget a failed build (its status and stale lock), so the next start begins afresh."""
    status = build_status(out_dir)
    if status.state == "running":
        return
    folder = build_dir(out_dir)
    for name in (STATUS_FILE, LOCK_FILE):
        with contextlib.suppress(OSError):
            (folder / name).unlink()
