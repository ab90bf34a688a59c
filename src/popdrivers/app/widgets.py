"""Streamlit pieces every page draws the same way: the data notice, a Predict input, a library figure."""

from __future__ import annotations

from typing import Any

import streamlit as st

from popdrivers import pipeline
from popdrivers.app import services


def data_notice(artifacts: pipeline.Artifacts) -> None:
    """One line at the top of every page saying what data the app is showing."""
    if artifacts.simulated:
        st.info("Data: **SIMULATED catalogue** (the true causal effects are known and marked on the Drivers page). "
                "Build from a real dataset with `popdrivers build --data FILE --out DIR`.", icon=":material/science:")
    else:
        st.caption(f"Data: `{artifacts.build.get('source')}` ({len(artifacts.tracks):,} tracks, "
                   f"built {artifacts.build.get('created_at')})")


def without_title(figure: Any) -> Any:
    """A library figure without its own title and footnote: the page's heading and caption say the same."""
    figure.layout.annotations = ()
    figure.update_layout(title=None, margin={"t": 10, "b": 10})
    return figure


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
