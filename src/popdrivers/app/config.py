"""Where the app's artifacts come from and what a session keeps between reruns.

The artifact folder is ``--artifacts DIR`` after ``--`` on the ``streamlit run`` line, else the environment
variable ``POPDRIVERS_ARTIFACTS``, else ``artifacts/default``; ``--data FILE [--format F]`` there say what a build
of missing artifacts reads (else the simulated catalogue).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import streamlit as st

from popdrivers.artifacts import DEFAULT_ARTIFACTS_DIR

ENV_ARTIFACTS = "POPDRIVERS_ARTIFACTS"
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
    return DEFAULT_ARTIFACTS_DIR


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
    """This session's artifact folder (resolved by :func:`init_session_state`)."""
    return Path(st.session_state["artifacts_dir"])
