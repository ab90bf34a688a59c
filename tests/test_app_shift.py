"""Issue 23: the app says when the tracks differ from the model's training data (Data and Predict pages), and the
model card states what the conformal interval assumes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import open_page
from streamlit.testing.v1 import AppTest

from popdrivers import pipeline

DIFFERS = "differs from the model's training data"


def csv_bytes(tracks: pd.DataFrame, folder: Path) -> bytes:
    from popdrivers.sources.files import write_tracks

    return write_tracks(tracks, folder / "upload.csv").read_bytes()


def score_upload(at: AppTest, tracks: pd.DataFrame, folder: Path, name: str) -> AppTest:
    open_page(at, "data")
    at.file_uploader(key="data_upload").set_value((name, csv_bytes(tracks, folder), "text/csv")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.button(key="data_score").click().run()
    assert not at.exception
    return at


@pytest.mark.slow
def test_data_page_says_when_uploaded_tracks_differ_from_the_training_data(app: AppTest, small_catalog,
                                                                          tmp_path: Path) -> None:
    tracks = small_catalog.tracks.head(300).copy()
    tracks["loudness"] = tracks["loudness"] - 20.0   # a catalogue mastered 20 dB quieter
    score_upload(app, tracks, tmp_path, "quiet.csv")
    warning = " ".join(w.value for w in app.warning)
    assert "differ from the model's training data" in warning and "loudness" in warning.lower(), warning
    assert "PSI" in warning
    captions = " ".join(c.value for c in app.caption)
    assert "calibrated on held-out tracks of the training data" in captions


@pytest.mark.slow
def test_data_page_says_tracks_like_the_training_data_are_not_contradicted(app: AppTest, artifacts: pipeline.Artifacts,
                                                                          tmp_path: Path) -> None:
    # Tracks drawn at random from the training catalogue (a few artists' tracks would differ in followers).
    score_upload(app, artifacts.tracks.sample(300, random_state=0), tmp_path, "alike.csv")
    assert not app.warning, [w.value for w in app.warning]
    assert any("look like the model's training data" in s.value for s in app.success)


@pytest.mark.slow
def test_predict_page_warns_when_a_typed_track_is_outside_the_training_range(app: AppTest,
                                                                            artifacts: pipeline.Artifacts) -> None:
    app.button[0].click().run()   # the training medians: like the training data
    assert not app.exception
    assert not [w for w in app.warning if DIFFERS in w.value]
    quietest = float(artifacts.tracks["loudness"].min())
    app.slider(key="predict_loudness").set_value(max(quietest - 15.0, -60.0))
    app.button[0].click().run()
    warnings = [w.value for w in app.warning if DIFFERS in w.value]
    assert len(warnings) == 1 and "outside the training range" in warnings[0], [w.value for w in app.warning]


@pytest.mark.slow
def test_model_card_states_what_the_interval_assumes(app: AppTest, artifacts: pipeline.Artifacts) -> None:
    open_page(app, "model_card")
    text = " ".join(m.value for m in app.markdown)
    assert "What the prediction interval assumes" in text
    for assumption in ("Tracks like the training data", "Exchangeability", "By-artist clusters"):
        assert assumption in text, assumption
    coverage = artifacts.metrics["interval"]["coverage"]
    assert f"{100 * coverage:.1f}%" in text
