"""Shared fixtures. Real datasets come from ../shared/data (or POPDRIVERS_SHARED_DATA).

In CI (CI=true) a missing dataset is a failure, not a skip: the tests that prove the readers work on real
data must run there.

No process the suite starts outlives it: every process started during the session inherits a marker in its
environment (``POPDRIVERS_TEST_SESSION``), and when the session ends every process still carrying it is stopped
with its process group (SIGTERM, then SIGKILL) and named in the summary, orphans whose parent died included.
Tests that start a process use :func:`process_groups`, which starts each command in a process group of its own
and stops the group when the test ends.

The app's tests share one copy of ``app`` (AppTest on ``small_artifacts``), ``artifacts`` and :func:`open_page`
(imported with ``from conftest import open_page``; the fixtures need no import).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from popdrivers.sources.simulate import CatalogStructure

if TYPE_CHECKING:  # Streamlit and the pipeline load only for the tests that use them
    from streamlit.testing.v1 import AppTest

    from popdrivers import pipeline

ROOT = Path(__file__).resolve().parents[1]

# Catalogues where every track has the same, linear effect: the effect shapes off, the floor too (at 0 no effect
# acts). The release-structure checks read plain fixed-effects slopes, right only on such a catalogue; with family
# effects and the floor, the within-artist bias from campaigns is of the order of the heterogeneity itself.
LINEAR_EFFECTS = {"heterogeneous_effects": False, "saturating_effects": False, "popularity_floor": False}


def linear_structure(**changes: object) -> CatalogStructure:
    """The default catalogue structure with :data:`LINEAR_EFFECTS` (and any other ``changes``) applied."""
    return dataclasses.replace(CatalogStructure(), **LINEAR_EFFECTS, **changes)
SESSION_MARK = "POPDRIVERS_TEST_SESSION"
STOP_GRACE_SECONDS = 10.0
_MARKER = pytest.StashKey[str]()


def marked_processes(marker: str) -> list[int]:
    """Process ids of every live process whose environment carries this session's marker (Linux /proc)."""
    needle = f"{SESSION_MARK}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ and state != "Z":
            found.append(int(entry.name))
    return found


def stop_group(pgid: int, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM to a process group, SIGKILL after ``grace`` seconds if any of it is still alive."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(-pgid, os.WNOHANG)
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def stop_processes(pids: list[int]) -> None:
    """Stop each process's group (or the process alone when it shares the test run's own group)."""
    own = os.getpgid(0)
    groups, alone = set(), []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            pgid = os.getpgid(pid)
            (alone.append(pid) if pgid == own else groups.add(pgid))
    for pid in alone:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pgid in groups:
        stop_group(pgid)


def pytest_sessionstart(session: pytest.Session) -> None:
    # A fresh marker even in a test run started by a test (pytester): each run stops what it started.
    os.environ[SESSION_MARK] = uuid.uuid4().hex
    session.config.stash[_MARKER] = os.environ[SESSION_MARK]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    marker = session.config.stash.get(_MARKER, None)
    if marker is None:
        return
    left = marked_processes(marker)
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    described = []
    for pid in left:
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            described.append(f"{pid} ({command.strip()[:120]})")
    stop_processes(left)
    if reporter is not None:
        reporter.write_line(f"stopped {len(left)} process(es) the tests left running: {'; '.join(described)}",
                            yellow=True)



class ProcessGroups:
    """Starts commands each in a process group of its own, and stops every group it started at the end."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def start(self, command: list[str], **kwargs) -> subprocess.Popen:
        process = subprocess.Popen(command, process_group=0, **kwargs)
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            stop_group(process.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1)


@pytest.fixture
def process_groups() -> Iterator[ProcessGroups]:
    """Start processes in their own process groups; every group is stopped when the test ends, pass or fail."""
    groups = ProcessGroups()
    try:
        yield groups
    finally:
        groups.stop_all()


def shared_data_dir() -> Path:
    return Path(os.environ.get("POPDRIVERS_SHARED_DATA", ROOT.parent / "shared" / "data"))


def require_shared(relative: str) -> Path:
    """Path of a shared dataset; fail in CI, skip elsewhere, when it is not there."""
    path = shared_data_dir() / relative
    if not path.exists():
        message = f"shared dataset {path} is missing (set POPDRIVERS_SHARED_DATA or put shared/ beside the repo)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def catalog_2022() -> Path:
    return require_shared("catalog-2022")


@pytest.fixture(scope="session")
def playlist_songs_2020() -> Path:
    return require_shared("playlist-songs-2020/spotify_songs.csv")


@pytest.fixture(scope="session")
def genre_tracks_2021() -> Path:
    return require_shared("genre-tracks-2021/tracks.csv")


@pytest.fixture(scope="session")
def small_catalog():
    """A small simulated catalogue (60 artists x 30 tracks) and its truth."""
    from popdrivers import simulate_catalog

    return simulate_catalog(n_artists=60, tracks_per_artist=30, seed=7)


@pytest.fixture(scope="session")
def small_artifacts(tmp_path_factory):
    """An app artifact set (simulated 40 artists x 20 tracks, 1 s tuning, few folds) built once per session."""
    from popdrivers.pipeline import build_artifacts

    return build_artifacts(tmp_path_factory.mktemp("artifacts") / "small", n_artists=40, tracks_per_artist=20,
                           budget_seconds=1, seed=3, eval_splits=2, driver_folds=3, n_jobs=1)


@pytest.fixture
def quick_learners(monkeypatch):
    """Builds that check plumbing, not statistics: no tuning, no evaluation, no refutations (seconds, not a minute)."""
    import popdrivers.drivers
    import popdrivers.model

    real_train, real_drivers = popdrivers.model.train, popdrivers.drivers.estimate_drivers

    def train(tracks, **kwargs):
        return real_train(tracks, **{**kwargs, "budget_seconds": 0, "evaluate_model": False})

    def estimate_drivers(tracks, **kwargs):
        return real_drivers(tracks, **{**kwargs, "n_folds": 2, "n_rep": 1, "refute": False, "by_genre": False,
                                       "n_jobs": 1})

    monkeypatch.setattr(popdrivers.model, "train", train)
    monkeypatch.setattr(popdrivers.drivers, "estimate_drivers", estimate_drivers)


@pytest.fixture(scope="session")
def catalog(small_catalog):
    """The tracks of ``small_catalog``; modules with a catalogue of their own override this."""
    return small_catalog.tracks


APPTEST_TIMEOUT = 60  # AppTest's 3 s default is for toy scripts; a cold page imports LightGBM and plotly


@pytest.fixture(scope="module")
def artifacts(small_artifacts: Path) -> pipeline.Artifacts:
    """``small_artifacts`` loaded: what the app's pages show, to compare them with."""
    from popdrivers import pipeline

    return pipeline.load_artifacts(small_artifacts)


@pytest.fixture
def app(small_artifacts: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The Streamlit app on ``small_artifacts``, driven headless with AppTest, its first page (Predict) rendered."""
    from streamlit.testing.v1 import AppTest

    from popdrivers.app import MAIN_SCRIPT

    monkeypatch.setenv("POPDRIVERS_ARTIFACTS", str(small_artifacts))
    at = AppTest.from_file(MAIN_SCRIPT, default_timeout=APPTEST_TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def open_page(at: AppTest, page: str) -> AppTest:
    """Switch the app to ``pages/<page>.py`` and render it; fail on any exception the page raised."""
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture(scope="session", autouse=True)
def _artifacts_outside_the_repo(tmp_path_factory):
    """Default the app's artifact folder to a temp dir, so no test can build into the repo's artifacts/default.

    Tests that need a folder set POPDRIVERS_ARTIFACTS themselves; this only replaces the fallback.
    """
    previous = os.environ.get("POPDRIVERS_ARTIFACTS")
    os.environ["POPDRIVERS_ARTIFACTS"] = str(tmp_path_factory.mktemp("default-artifacts"))
    yield
    if previous is None:
        os.environ.pop("POPDRIVERS_ARTIFACTS", None)
    else:
        os.environ["POPDRIVERS_ARTIFACTS"] = previous


@pytest.fixture(autouse=True)
def _restore_main_module():
    """AppTest installs the app's script as ``sys.modules['__main__']`` and leaves it there; processes spawned
    later in the session (Dask's LocalCluster workers) would then run the app's script as their main module."""
    import sys

    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main
