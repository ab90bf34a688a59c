"""The feature registry is the one place a feature's meaning is written: register it once, every face shows it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from popdrivers import registry, schema
from popdrivers.app import services
from popdrivers.cli import app
from popdrivers.registry import FeatureSpec


@pytest.fixture
def pulse_clarity():
    """A driver that exists only in the registry (as a new audio descriptor would), removed after the test."""
    feature = registry.register(FeatureSpec(
        "pulse_clarity", "Pulse clarity", "0-1", "How clearly a steady beat can be heard.", low=0.0, high=1.0,
        step=0.01, per_unit="+1.0 on the pulse-clarity scale", typical_change=0.1, change_label="+0.1 clarity",
        sources=("audio",), driver=True))
    yield feature
    registry.unregister(feature.name)


def test_a_driver_registered_once_reaches_the_cli_the_report_the_app_and_drivers_json(
        pulse_clarity, small_catalog, tmp_path):
    tracks = small_catalog.tracks.copy()
    rng = np.random.default_rng(0)
    # Popularity moves with the new feature within albums, so the estimate has something to find.
    tracks["pulse_clarity"] = rng.uniform(0.0, 1.0, len(tracks))
    tracks["popularity"] = (tracks["popularity"] + np.round(8 * tracks["pulse_clarity"])).clip(0, 100)
    data = tmp_path / "tracks.parquet"
    tracks.to_parquet(data)
    out = tmp_path / "drivers"

    result = CliRunner().invoke(app, ["drivers", "--data", str(data), "--out", str(out), "--drivers",
                                      "danceability,pulse_clarity", "--no-refute", "--n-rep", "1"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.lstrip("│ ").startswith("pulse_clarity"))
    assert "0-1" in row, "the CLI table gives the registry's unit"

    saved = json.loads((out / "drivers.json").read_text())
    driver = next(d for d in saved["drivers"] if d["feature"] == "pulse_clarity")
    assert driver["unit"] == "+1.0 on the pulse-clarity scale"
    assert 4.0 < driver["effect"] < 12.0, driver["effect"]

    html = (out / "report.html").read_text()
    assert "pulse_clarity (+0.1 clarity)" in html, "the report labels the typical change from the registry"

    inputs = {spec.name: spec for spec in services.predict_inputs(tracks)}
    assert inputs["pulse_clarity"].label == "Pulse clarity"
    assert (inputs["pulse_clarity"].low, inputs["pulse_clarity"].high, inputs["pulse_clarity"].step) == (0, 1, 0.01)
    assert inputs["pulse_clarity"].help == "How clearly a steady beat can be heard."


def test_registering_twice_needs_replace_and_unknown_sources_are_refused(pulse_clarity):
    with pytest.raises(ValueError, match="already registered"):
        registry.register(pulse_clarity)
    with pytest.raises(ValueError, match="unknown source"):
        FeatureSpec("x", "X", "", "help", sources=("myspace",))
    with pytest.raises(KeyError, match="unknown feature 'nope'"):
        registry.spec("nope")


def test_the_followers_input_reaches_as_far_as_the_registry_says(small_catalog):
    """The Predict page's followers box offers up to the registry's ``input_high`` when the data's artists are small
    (a thousand times their median, when that is more); a bound changed in the registry changes the box, and
    validation still accepts more followers than the box offers (an input bound, not a valid range)."""
    from dataclasses import replace

    tracks = small_catalog.tracks.copy()
    tracks["artist_followers"] = (tracks["artist_followers"] / 10_000).round()  # a median of a few hundred
    followers = registry.spec("artist_followers")
    assert followers.input_high is not None and followers.high is None
    assert tracks["artist_followers"].median() * 1000 < followers.input_high

    def followers_input() -> services.InputSpec:
        return next(s for s in services.predict_inputs(tracks) if s.name == "artist_followers")

    assert (followers_input().low, followers_input().high) == (followers.low, followers.input_high)
    try:
        registry.register(replace(followers, input_high=3 * followers.input_high), replace=True)
        assert followers_input().high == 3 * followers.input_high
    finally:
        registry.register(followers, replace=True)
    bigger = tracks.head(5).assign(artist_followers=2 * followers.input_high)
    assert (schema.validate(bigger)["artist_followers"] == 2 * followers.input_high).all()
    # The catalogue's own, bigger artists: a thousand times their median, beyond the registry's bound.
    big = next(s for s in services.predict_inputs(small_catalog.tracks) if s.name == "artist_followers")
    assert big.high == small_catalog.tracks["artist_followers"].median() * 1000 > followers.input_high


def test_schema_ranges_and_units_are_the_registrys():
    # Validation accepts exactly what the registry says a feature can be; duration is stored in ms.
    for name in ("danceability", "loudness", "tempo", "key", "mode", "time_signature"):
        feature, column = registry.spec(name), schema.SPECS[name]
        assert (column.low, column.high, column.unit) == (feature.low, feature.high, feature.unit), name
    assert schema.SPECS["duration_ms"].unit == "ms" and schema.SPECS["duration_ms"].low == 0.0
    table = pd.DataFrame({"track_id": ["a", "b"], "popularity": [10, 20],
                                            "loudness": [-5.0, registry.spec("loudness").high + 1]})
    with pytest.raises(schema.SchemaError, match="loudness"):
        schema.validate(table)


def test_model_columns_resolve_to_their_feature():
    assert registry.spec("explicit_int").name == "explicit"
    assert registry.spec("key_cat").name == "key"
    assert registry.label("log_followers") == "artist followers"
    assert registry.label("loudness") == "loudness (dB)"
    assert registry.input_range("duration_min", [2.0, 3.0, 4.0])[1] == pytest.approx(3.99)


def test_explained_values_carry_the_registrys_units():
    """The followers count and the track's age beside their SHAP contributions are in the units the registry
    writes: a unit changed there changes what the explanation says."""
    from dataclasses import replace

    from popdrivers import explain

    assert explain.format_value("log_followers", np.log10(1 + 25_000)) == "25,000 followers"
    assert explain.format_value("track_age_days", 400.0) == "400 days"
    age, followers = registry.spec("track_age_days"), registry.spec("artist_followers")
    try:
        registry.register(replace(age, unit="d"), replace=True)
        registry.register(replace(followers, unit="fans"), replace=True)
        assert explain.format_value("track_age_days", 400.0) == "400 d"
        assert explain.format_value("log_followers", np.log10(1 + 25_000)) == "25,000 fans"
    finally:
        registry.register(age, replace=True)
        registry.register(followers, replace=True)
