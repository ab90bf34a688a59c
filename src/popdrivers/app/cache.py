"""The artifact set and the tables derived from it, loaded once per folder version and shared by every page.

The launcher may :func:`preload` the set while the server starts; the first page then takes it from there.
Derived tables are ``st.cache_data`` functions keyed by :func:`cache_key` (each page gets its own copy).
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import pandas as pd
import streamlit as st

from popdrivers import explore, pipeline
from popdrivers.app import services
from popdrivers.app.build_page import show_build
from popdrivers.app.config import artifacts_path
from popdrivers.errors import PopdriversError


def _stamp(path: Path) -> str:
    """Changes whenever the artifact folder is rebuilt, so caches reload instead of serving the old set."""
    manifest = path / "manifest.json"
    return f"{manifest.stat().st_mtime_ns}" if manifest.exists() else "missing"


def artifacts_ready() -> bool:
    """Whether the artifact folder holds a complete artifact set (its checksums are verified on loading)."""
    return pipeline.is_artifact_dir(artifacts_path())


# Artifact sets loaded by preload() while the server was starting, waiting for the first page to take them.
_PRELOADED: dict[tuple[str, str], pipeline.Artifacts] = {}
_PRELOAD_LOCK = threading.Lock()


def _load_and_warm(path: str) -> pipeline.Artifacts:
    from popdrivers.explain import explained_prediction

    artifacts = pipeline.load_artifacts(path)
    # One throw-away explanation so the first Predict press is as fast as the next ones (lazy LightGBM setup).
    explained_prediction(artifacts.model, artifacts.tracks.head(1))
    return artifacts


def preload(path: str | os.PathLike[str]) -> None:
    """Load (and warm up) the artifact set at ``path`` ahead of the first page, if it is complete.

    The app's launcher runs this in a thread while the server starts, so the first visitor does not wait for
    the imports and the loading; pages then take the loaded set from here.
    """
    path = str(Path(path).resolve())
    with _PRELOAD_LOCK:
        # A set that cannot be used is loaded again by the page, which shows the reason.
        if pipeline.is_artifact_dir(path):
            with contextlib.suppress(PopdriversError):
                _PRELOADED[(path, _stamp(Path(path)))] = _load_and_warm(path)


@st.cache_resource(show_spinner="Loading the model and the causal drivers ...")
def _load(path: str, stamp: str) -> pipeline.Artifacts:
    with _PRELOAD_LOCK:  # waits for a preload in progress rather than loading twice
        preloaded = _PRELOADED.pop((str(Path(path).resolve()), stamp), None)
    return preloaded if preloaded is not None else _load_and_warm(path)


def ensure_loaded() -> pipeline.Artifacts:
    """The current artifact set: loaded once per folder version; while it is being built, the build's progress.

    Stops the page with the reason when the artifacts cannot be used (tampered, wrong kind).
    """
    path = artifacts_path()
    if not pipeline.is_artifact_dir(path):
        show_build(path)
    try:
        return _load(str(path), _stamp(path))
    except PopdriversError as exc:
        st.error(f"Cannot use the artifacts in `{path}`: {exc}")
        st.stop()
        raise  # st.stop() raises; this line keeps type checkers honest


def current() -> pipeline.Artifacts:
    """The loaded artifact set (pages call this; the router has already built and verified it)."""
    path = artifacts_path()
    return _load(str(path), _stamp(path))


def cache_key() -> tuple[str, str]:
    """(path, stamp) of the current artifacts, the key of every cached table below."""
    path = artifacts_path()
    return str(path), _stamp(path)


@st.cache_data(show_spinner=False)
def predict_specs(path: str, stamp: str) -> list[services.InputSpec]:
    art = _load(path, stamp)
    return services.predict_inputs(art.tracks, art.model)


@st.cache_data(show_spinner=False)
def eda_frame(path: str, stamp: str) -> pd.DataFrame:
    return explore.eda_frame(_load(path, stamp).tracks)


@st.cache_data(show_spinner="Computing variance inflation factors ...")
def vif_table(path: str, stamp: str) -> pd.DataFrame:
    return explore.vif_table(_load(path, stamp).tracks)


@st.cache_data(show_spinner=False)
def popularity_by(path: str, stamp: str, by: str) -> pd.DataFrame:
    return explore.popularity_by(_load(path, stamp).tracks, by)


@st.cache_data(show_spinner="Validating the upload ...", max_entries=8)
def read_upload(content: bytes, filename: str, format: str) -> services.Upload:
    return services.read_upload(content, filename, format)
