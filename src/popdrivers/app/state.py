"""Where the app's artifacts come from, how they are cached, and the session state, in one place.

The artifact folder is ``--artifacts DIR`` after ``--`` on the ``streamlit run`` line, else the environment
variable ``POPDRIVERS_ARTIFACTS``, else ``artifacts/default``. If it holds no artifacts, a build starts in its own
process (from ``--data FILE`` if given, else the simulated catalogue, and the page says so) while the server keeps
answering: the page shows the build's stage and progress and becomes the app when it is done. One build per
folder, whatever the number of tabs or reruns (:func:`popdrivers.pipeline.start_background_build` holds a lock
file); a failed build shows its error, where its log is, and a button to retry.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from popdrivers import explore, pipeline
from popdrivers.app import services
from popdrivers.artifacts import DEFAULT_ARTIFACTS_DIR
from popdrivers.errors import PopdriversError

ENV_ARTIFACTS = "POPDRIVERS_ARTIFACTS"
DEFAULT_ARTIFACTS = DEFAULT_ARTIFACTS_DIR
# Every key the pages keep between reruns, with its starting value.
SESSION_DEFAULTS: dict[str, Any] = {
    "artifacts_dir": None,        # resolved once per session
    "predict_values": None,       # inputs of the last Predict press
    "whatif_query": "",           # search text on the What-if page
    "scored_upload": None,        # (upload name, scored table) after "Score" on the Data page
    "song": None,                 # services.SongAnalysis of the song uploaded on the Predict page
    "song_values": None,          # inputs of the last "Predict from the song" press
}


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--artifacts", default=None)
    parser.add_argument("--data", default=None)
    parser.add_argument("--format", default=None)
    known, _ = parser.parse_known_args(argv)
    return known


def artifacts_dir_from(argv: list[str], environ: dict[str, str] | os._Environ[str]) -> Path:
    """The artifact folder: ``--artifacts`` in ``argv``, else ``$POPDRIVERS_ARTIFACTS``, else the default."""
    known = _parse(argv)
    if known.artifacts:
        return Path(known.artifacts)
    if environ.get(ENV_ARTIFACTS):
        return Path(environ[ENV_ARTIFACTS])
    return DEFAULT_ARTIFACTS


def build_options_from(argv: list[str]) -> list[str]:
    """Options of the build that makes missing artifacts: ``--data FILE [--format F]`` if the app was given them."""
    known = _parse(argv)
    options = []
    if known.data:
        options += ["--data", str(Path(known.data).resolve())]
        if known.format:
            options += ["--format", known.format]
    return options


def init_session_state() -> None:
    """Give every session key its starting value (idempotent; called first by the router on every run)."""
    for key, value in SESSION_DEFAULTS.items():
        st.session_state.setdefault(key, value)
    if st.session_state["artifacts_dir"] is None:
        st.session_state["artifacts_dir"] = str(artifacts_dir_from(sys.argv[1:], os.environ).resolve())


def artifacts_path() -> Path:
    return Path(st.session_state["artifacts_dir"])


def _stamp(path: Path) -> str:
    """Changes whenever the artifact folder is rebuilt, so caches reload instead of serving the old set."""
    manifest = path / "manifest.json"
    return f"{manifest.stat().st_mtime_ns}" if manifest.exists() else "missing"


BUILD_POLL_SECONDS = 1.0


def artifacts_ready() -> bool:
    """Whether the artifact folder holds a complete artifact set (its checksums are verified on loading)."""
    return pipeline.is_artifact_dir(artifacts_path())


def build_page() -> None:
    """The page shown while the artifacts are missing: the background build and its progress."""
    show_build(artifacts_path())


def show_build(path: Path) -> None:
    """Start the build of ``path`` if none is running, show its progress, and stop the page.

    The progress refreshes itself every second (a fragment, so the rest of the page does not rerun); when the
    build ends the whole page reruns: the app appears, or the failure with a button to retry.
    """
    options = build_options_from(sys.argv[1:])
    status = pipeline.build_status(path)
    if status.state == "missing":
        status = pipeline.start_background_build(path, options)
    if status.state == "failed":
        st.title("The artifacts could not be built")
        st.error(f"Building `{path}` failed: {status.error}")
        st.caption(f"The build's output is in `{status.log}`. Retry below, or build by hand and reload this page: "
                   f"`{status.command or 'popdrivers build --out ' + str(path)}`")
        if st.button("Retry the build", key="retry_build", type="primary"):
            pipeline.clear_build_status(path)
            pipeline.start_background_build(path, options)
            st.rerun()
        st.stop()
    if status.state == "done":
        return
    st.title("Building the artifacts")
    simulated = "--data" not in options and "--data" not in os.environ.get(pipeline.ENV_BUILD_OPTIONS, "")
    if simulated:
        st.warning(f"No artifacts in `{path}` yet: building them now from the **simulated catalogue** (SIMULATED "
                   "data with known causal effects, not real Spotify tracks). This happens once; the app appears "
                   "here when it is done. `popdrivers build --data FILE` builds from a real dataset.")
    else:
        st.info(f"No artifacts in `{path}` yet: building them now from `{options[1] if options else 'your data'}`; "
                "the app appears here when it is done.")
    st.caption("One build runs for this folder, whatever the number of tabs: reloading or another tab shows "
               "the same build.")
    build_progress(str(path))
    st.stop()


@st.fragment(run_every=BUILD_POLL_SECONDS)
def build_progress(path: str) -> None:
    """The build's stage and progress bar, refreshed every second; reruns the page once the build has ended."""
    status = pipeline.build_status(path)
    if status.state != "running":
        st.rerun()
    text = f"{status.percent:.0f}% - {status.stage or 'starting'}: {status.message or ''}".rstrip(": ")
    st.progress(min(max(status.percent / 100.0, 0.0), 1.0), text=text)
    st.caption(f"Build process {status.pid or '(starting)'}; its output: `{status.log}`")


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


def data_notice(artifacts: pipeline.Artifacts) -> None:
    """One line at the top of every page saying what data the app is showing."""
    if artifacts.simulated:
        st.info("Data: **SIMULATED catalogue** (the true causal effects are known and marked on the Drivers page). "
                "Build from a real dataset with `popdrivers build --data FILE --out DIR`.", icon=":material/science:")
    else:
        st.caption(f"Data: `{artifacts.build.get('source')}` ({len(artifacts.tracks):,} tracks, "
                   f"built {artifacts.build.get('created_at')})")


# Derived data, computed once per artifact version (st.cache_data: each page gets its own copy).


def without_title(figure: Any) -> Any:
    """A library figure without its own title and footnote: the page's heading and caption say the same."""
    figure.layout.annotations = ()
    figure.update_layout(title=None, margin={"t": 10, "b": 10})
    return figure


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


def cache_key() -> tuple[str, str]:
    """(path, stamp) of the current artifacts, the key of every cached table above."""
    path = artifacts_path()
    return str(path), _stamp(path)


def input_widget(spec: services.InputSpec, key: str) -> Any:
    """The Streamlit widget for one Predict input (label carries the unit; help says what it means)."""
    label = f"{spec.label} ({spec.unit})" if spec.unit and spec.unit != "0-1" else spec.label
    if spec.kind == "slider":
        default = min(max(float(spec.default), float(spec.low)), float(spec.high))
        return st.slider(label, float(spec.low), float(spec.high), default, float(spec.step), key=key,
                         help=spec.help)
    if spec.kind == "number":
        default = min(max(int(spec.default), int(spec.low)), int(spec.high))
        return st.number_input(label, int(spec.low), int(spec.high), default, int(spec.step), key=key,
                               help=spec.help)
    if spec.kind == "select":
        options = list(spec.options)
        index = options.index(spec.default) if spec.default in options else 0
        return st.selectbox(label, options, index=index, key=key, help=spec.help,
                            format_func=lambda v: spec.labels.get(v, str(v)))
    if spec.kind == "toggle":
        return st.toggle(label, bool(spec.default), key=key, help=spec.help)
    raise ValueError(f"unknown input kind {spec.kind!r}")
