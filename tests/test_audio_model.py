"""The audio model: what popdrivers can measure from a recording plus what a person types, never mixed silently
with a model of Spotify's features, evaluated on the same folds as the full model."""

from __future__ import annotations

import pandas as pd
import pytest

from popdrivers.model import (
    PopularityModel,
    load_audio_model,
    load_model,
    metrics_frame,
    save_model,
    scored_table,
    train,
)
from popdrivers.schema import SchemaError

FAST = {"n_estimators": 60, "num_leaves": 15, "learning_rate": 0.1, "calibration_folds": 3, "n_jobs": 1,
        "new_artist_n_estimators": 60}
SPOTIFY_ONLY = {"danceability", "energy", "speechiness", "acousticness", "instrumentalness", "liveness", "valence"}


@pytest.fixture(scope="module")
def trained(catalog):
    return train(catalog, n_trials=0, params=FAST, n_splits=3)


def test_train_fits_an_audio_model_on_measurable_features_and_typed_context(trained):
    audio = trained.audio_model
    assert audio is not None and audio.feature_set == "sound"
    used = set(audio.feature_names_)
    assert not used & SPOTIFY_ONLY, "no Spotify-only feature in the model that predicts from a song"
    assert {"tempo", "loudness", "key_cat", "mode", "duration_min"} <= used
    assert {"log_followers", "genre_family", "explicit_int", "track_age_days"} <= used
    assert "artist_track_record" not in used
    assert audio.interval_.available and audio.calibration_method_ == "cross"


def test_audio_model_is_evaluated_on_the_full_models_folds(trained):
    splits = trained.metrics["splits"]
    for name in ("random", "by_artist", "by_time"):
        assert "audio_model" in splits[name], name
    # In the simulation danceability, instrumentalness and liveness move popularity: without them (and without
    # the artist's track record) the audio model must be worse than the full model on tracks of known artists.
    assert splits["random"]["audio_model"]["rmse"] > splits["random"]["model"]["rmse"]
    coverage = trained.metrics["audio_model"]["interval"]["coverage"]
    assert 0.7 < coverage < 0.9
    table = metrics_frame(trained.metrics)
    assert "audio model (from the sound)" in set(table["method"])


def test_model_folder_holds_both_and_rows_go_to_the_model_of_their_source(trained, catalog, tmp_path):
    folder = save_model(trained.model, tmp_path / "m", metrics=trained.metrics, audio_model=trained.audio_model)
    full, audio = load_model(folder), load_audio_model(folder)
    assert audio is not None and audio.feature_names_ == trained.audio_model.feature_names_
    rows = catalog.head(6).copy()
    measured = rows.drop(columns=sorted(SPOTIFY_ONLY)).assign(features_source="audio:popdrivers-test-1")
    mixed = pd.concat([rows.iloc[:3], measured.iloc[3:]], ignore_index=True)
    scored = scored_table(full, mixed, audio)
    assert list(scored["model"]) == ["full"] * 3 + ["audio"] * 3
    assert list(scored["track_id"]) == list(mixed["track_id"])
    expected = audio.predict_interval(measured.iloc[3:])["prediction"].round(2).to_numpy()
    assert scored["prediction"].iloc[3:].to_numpy() == pytest.approx(expected)


def test_a_model_of_spotify_features_refuses_features_measured_from_audio(trained, catalog):
    measured = catalog.head(5).assign(features_source="audio:popdrivers-test-1")
    with pytest.raises(SchemaError, match="features_source.*measured|audio model") as caught:
        trained.model.predict(measured)
    assert "5 rows" in str(caught.value)
    # The audio model takes them (its tempo, key, mode, loudness and duration are on Spotify's scales).
    assert len(trained.audio_model.predict(measured)) == 5


def test_without_any_measurable_feature_no_audio_model_is_trained_and_the_reason_is_said(catalog):
    bare = catalog.drop(columns=["tempo", "loudness", "key", "mode", "time_signature", "duration_ms"])
    result = train(bare, n_trials=0, params=FAST, evaluate_model=False)
    assert result.audio_model is None
    assert "measures from audio" in result.info["audio_model"]["skipped"]


def test_a_sound_model_fitted_directly_needs_no_spotify_feature(catalog):
    measured = catalog.drop(columns=sorted(SPOTIFY_ONLY))
    model = PopularityModel(**FAST, feature_set="sound").fit(measured)
    assert not set(model.feature_names_) & SPOTIFY_ONLY
