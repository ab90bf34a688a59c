"""The page shown while the artifacts are missing: the background build, its progress, its failure and a retry.

A build starts in its own process (from ``--data FILE`` if the app was given one, else the simulated catalogue,
and the page says so) while the server keeps answering: the page shows the build's stage and progress and
becomes the app when it is done. One build per folder, whatever the number of tabs or reruns
(:func:`popdrivers.pipeline.start_background_build` holds a lock file); a failed build shows its error, where its
log is, and a button to retry.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import streamlit as st

from popdrivers import pipeline
from popdrivers.app.config import artifacts_path, build_options_from

BUILD_POLL_SECONDS = 1.0


def build_page() -> None:
    """The router's only page while the artifacts are missing."""
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
