"""Drivers on what was measured: popdrivers' descriptors as drivers, each driver's source named, one source per column.

The simulated catalogue with ``measured=True`` is the default catalogue as popdrivers' audio analysis would give it:
each Spotify 0-1 feature replaced by one descriptor, an exact linear relabelling of it, so the descriptors' true
effects are known.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from popdrivers import estimate_drivers, registry, simulate_catalog, validate
from popdrivers.drivers import load_drivers, save_drivers
from popdrivers.drivers_report import drivers_report_html, estimates_table
from popdrivers.sources.simulate import MEASURED_DESCRIPTORS, SIMULATED_FEATURES_SOURCE

FAST = {"n_rep": 1, "n_permutations": 20, "n_bootstrap": 300, "learner": "linear", "seed": 0}
SPOTIFY_ONLY = ("danceability", "energy", "speechiness", "acousticness", "instrumentalness", "liveness", "valence")


@pytest.fixture(scope="module")
def measured():
    return simulate_catalog(150, 20, seed=2, measured=True)


@pytest.fixture(scope="module")
def measured_report(measured):
    return estimate_drivers(measured.tracks, **FAST)


def test_the_measured_catalogue_is_off_by_default_and_relabels_the_features_exactly():
    spotify, spotify_truth = simulate_catalog(40, 10, seed=3)
    tracks, truth = simulate_catalog(40, 10, seed=3, measured=True)
    assert "features_source" not in spotify.columns
    assert not set(MEASURED_DESCRIPTORS) & set(spotify.columns)
    assert not set(SPOTIFY_ONLY) & set(tracks.columns)  # never measured from the sound
    assert (tracks["features_source"] == SIMULATED_FEATURES_SOURCE).all()
    pd.testing.assert_series_equal(tracks["popularity"], spotify["popularity"])  # the same catalogue otherwise
    for name, (feature, offset, scale) in MEASURED_DESCRIPTORS.items():
        np.testing.assert_allclose(tracks[name], offset + scale * spotify[feature].astype("float64"), atol=1e-4)
        assert truth.effects[name] == pytest.approx(spotify_truth.effects[feature] / scale)
        spec = registry.spec(name)  # inside the registry's range, so the schema takes it
        assert tracks[name].min() >= (spec.low or 0.0) and (spec.high is None or tracks[name].max() <= spec.high)
    assert truth.effects["brightness_hz"] == 0.0 and truth.units["rhythm_regularity"] == "+1 on the DFA scale"
    validate(tracks)


def test_drivers_on_measured_features_use_the_descriptors_and_recover_their_truth(measured, measured_report):
    report, truth = measured_report, measured.truth
    assert report.info["features_source"] == "audio"
    assert set(report.features) == set(registry.measured_driver_names())
    assert not set(SPOTIFY_ONLY) & set(report.features)
    sources = report.info["driver_sources"]
    assert {d for d, s in sources.items() if s == "metadata"} == {"duration_min", "explicit"}
    assert all(sources[d] == "audio" for d in (*MEASURED_DESCRIPTORS, "tempo", "loudness", "mode"))
    for name in ("rhythm_regularity", "percussive_share", "spectral_flatness", "onset_rate", "brightness_hz"):
        result = report[name]
        assert result.unit == registry.spec(name).effect_unit
        assert result.ci_low <= truth.effects[name] <= result.ci_high, (name, result.effect, truth.effects[name])
    assert report["rhythm_regularity"].ci_low > 0 and report["spectral_flatness"].ci_high < 0
    # The measured key (a label, not a driver) is among every design's controls.
    assert all(any(c.startswith("key ") for c in design.controls) for design in report.designs)


def test_each_driver_names_its_source_in_drivers_json_the_report_and_the_manifest(measured_report, tmp_path):
    html = drivers_report_html(measured_report)
    save_drivers(measured_report, tmp_path / "d", html=html)
    stored = json.loads((tmp_path / "d" / "drivers.json").read_text())
    assert stored["driver_sources"]["rhythm_regularity"] == "popdrivers' audio analysis"
    assert stored["driver_sources"]["explicit"] == "metadata"
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["features_source"] == "audio" and manifest["driver_sources"] == stored["driver_sources"]
    table = estimates_table(load_drivers(tmp_path / "d")).set_index("driver")
    assert table.loc["key_strength", "source"] == "popdrivers' audio analysis"
    assert table.loc["duration_min", "source"] == "metadata"
    assert "measured by popdrivers&#x27; audio analysis: loudness, tempo, mode, rhythm_regularity" in html


def test_a_spotify_table_keeps_its_drivers_and_says_spotify():
    tracks, _ = simulate_catalog(60, 20, seed=1)
    report = estimate_drivers(tracks, refute=False, by_genre=False, compare=False, **FAST)
    assert report.info["features_source"] == "spotify" and "danceability" in report.features
    assert not set(MEASURED_DESCRIPTORS) & set(report.features)
    assert estimates_table(report).set_index("driver").loc["danceability", "source"] == "Spotify"
    assert not any(c.startswith("key ") for c in report.designs[0].controls)  # Spotify tables: as before


def test_tracks_whose_features_come_from_another_source_are_left_out_of_the_columns(measured):
    own = measured.tracks
    other, _ = simulate_catalog(40, 20, seed=9, measured=True)
    other = other.assign(features_source="file:other.csv",
                         artist_id=lambda f: "other-" + f["artist_id"], album_id=lambda f: "other-" + f["album_id"])
    mixed = pd.concat([own, other], ignore_index=True)
    alone = estimate_drivers(own, refute=False, by_genre=False, compare=False, **FAST)
    report = estimate_drivers(mixed, refute=False, by_genre=False, compare=False, **FAST)
    assert report.rows == alone.rows  # none of the other file's tracks enters a measured column
    said = [w for w in report.warnings if w.startswith("features of ")]
    assert said == [f"features of {len(other):,} tracks left out of the drivers ({len(other):,} from other.csv): one "
                    "column never mixes two sources, and most tracks' features come from popdrivers' audio "
                    "analysis"]
    assert report.info["features_source"] == "audio"


def test_drivers_refuse_a_driver_no_source_offers():
    from popdrivers.errors import InputError

    tracks, _ = simulate_catalog(30, 10, seed=1, measured=True)
    with pytest.raises(InputError, match="unknown driver"):
        estimate_drivers(tracks, ["groove"], **FAST)


@pytest.mark.slow
def test_the_app_names_each_drivers_source_and_edits_the_measured_drivers(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from popdrivers.app import MAIN_SCRIPT
    from popdrivers.pipeline import build_artifacts
    from popdrivers.sources.files import write_tracks

    tracks, _ = simulate_catalog(40, 20, seed=3, measured=True)
    write_tracks(tracks, tmp_path / "measured.parquet")
    artifacts = build_artifacts(tmp_path / "artifacts", data=tmp_path / "measured.parquet", budget_seconds=1, seed=3,
                                eval_splits=2, driver_folds=3, n_jobs=1)
    monkeypatch.setenv("POPDRIVERS_ARTIFACTS", str(artifacts))
    at = AppTest.from_file(MAIN_SCRIPT, default_timeout=60)
    at.run()
    at.switch_page("pages/drivers.py").run()
    assert not at.exception, [e.value for e in at.exception]
    said = [c.value for c in at.caption if c.value.startswith("Driver sources: ")]
    assert said and "measured by popdrivers' audio analysis: loudness, tempo, mode, rhythm_regularity" in said[0]
    assert "from metadata: duration_min, explicit" in said[0]
    table = next(f.value for f in at.dataframe if "source" in f.value.columns)
    sources = dict(zip(table["driver"], table["source"], strict=True))
    assert sources["percussive_share"] == "popdrivers' audio analysis" and sources["explicit"] == "metadata"
    assert "danceability" not in sources

    # The What-if page edits the measured drivers and sweeps a descriptor's curve.
    at.switch_page("pages/what_if.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(s.key.endswith("_rhythm_regularity") for s in at.slider)
    at.selectbox(key="whatif_curve_driver").set_value("rhythm_regularity").run()
    assert not at.exception, [e.value for e in at.exception]
