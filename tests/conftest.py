"""Shared fixtures. Real datasets come from ../shared/data (or POPDRIVERS_SHARED_DATA).

In CI (CI=true) a missing dataset is a failure, not a skip: the tests that prove the readers work on real
data must run there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
