"""Causal drivers: the within-artist estimates recover the simulated truth, the naive design does not, and the
checks, artifacts and CLI keep their promises."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from popdrivers.drivers import (
    DriverReport,
    DriverResult,
    GenreEffect,
    artist_grouped_folds,
    estimate_drivers,
    implied_change,
    load_drivers,
    robustness_values,
    save_drivers,
)
from popdrivers.errors import ArtifactError
from popdrivers.features import DRIVERS
from popdrivers.sources.simulate import simulate_catalog

# Small and quick: fewer folds and trees than the defaults, one thread.
FAST = {"n_folds": 3, "n_estimators": 30, "refute_folds": 2, "n_jobs": 1}


@pytest.fixture(scope="module")
def simulated():
    return simulate_catalog(n_artists=120, tracks_per_artist=40, seed=11)


@pytest.fixture(scope="module")
def report(simulated):
    tracks, _ = simulated
    return estimate_drivers(tracks, seed=0, **FAST)


def test_every_driver_is_estimated_within_artist(report):
    assert report.design == "within_artist"
    assert report.features == DRIVERS
    assert report.rows == 120 * 40 and report.artists == 120
    assert report.warnings == ()


def test_within_artist_estimates_recover_the_truth(report, simulated):
    truth = simulated.truth.effects
    covered = [r.feature for r in report.drivers if r.ci_low <= truth[r.feature] <= r.ci_high]
    assert len(covered) >= 10, f"95% CIs cover the truth for only {covered}"
    for r in report.drivers:
        assert abs(r.effect - truth[r.feature]) < 4 * r.se, f"{r.feature}: {r.effect:.3f} vs {truth[r.feature]:.3f}"
    # The clearly non-zero effects are found, with the right sign.
    for name in ("danceability", "loudness", "acousticness", "duration_min", "explicit"):
        assert report[name].significant and np.sign(report[name].effect) == np.sign(truth[name])


def test_naive_design_is_biased_where_the_simulation_confounds(report, simulated):
    truth = simulated.truth.effects
    # Energy and valence do nothing, danceability pays, but all three go with artist appeal.
    for name in ("danceability", "energy", "valence"):
        r = report[name]
        assert r.naive_effect - truth[name] > abs(r.effect - truth[name]) + 1.0, name
    energy = report["energy"]
    assert energy.naive_ci_low > 0, "naive design finds an effect of energy that the simulation does not have"
    assert energy.ci_low <= 0 <= energy.ci_high


def test_placebo_effects_are_near_zero(report):
    placebo_p = [r.placebo_p for r in report.drivers]
    assert sum(p < 0.05 for p in placebo_p) <= 1, placebo_p
    for r in report.drivers:
        if r.significant and abs(r.effect / r.se) > 5:
            assert abs(r.placebo_effect) < 0.3 * abs(r.effect), r.feature


def test_refutations_leave_strong_estimates_stable(report):
    for name in ("danceability", "loudness", "duration_min", "explicit"):
        r = report[name]
        width = r.ci_high - r.ci_low
        assert abs(r.random_common_cause_effect - r.subset_effect) < 0.25 * width, name
        assert abs(r.subset_effect - r.effect) < width, name
        assert 0 < r.robustness_value_ci < r.robustness_value < 1


def test_genre_effects_show_danceability_pays_more_in_hip_hop(report, simulated):
    groups = {g.genre: g for g in report["danceability"].by_genre}
    assert {"hip hop", "pop"} <= set(groups)
    assert sum(g.n for g in groups.values()) <= report.rows
    assert groups["hip hop"].effect > groups["pop"].effect
    assert groups["hip hop"].ci_low <= simulated.truth.effects_by_family["hip hop"]["danceability"] \
        <= groups["hip hop"].ci_high


def test_no_artist_is_in_two_folds():
    rng = np.random.default_rng(0)
    artists = rng.integers(0, 50, size=2000)
    folds = artist_grouped_folds(artists, n_folds=5, seed=1)
    per_artist = pd.DataFrame({"artist": artists, "fold": folds}).groupby("artist")["fold"].nunique()
    assert (per_artist == 1).all()
    sizes = np.bincount(folds)
    assert len(sizes) == 5 and sizes.min() > 0.6 * sizes.max()


def test_without_artist_id_it_falls_back_to_the_naive_design_and_says_so(simulated):
    tracks = simulated.tracks.drop(columns=["artist_id"])
    report = estimate_drivers(tracks, ["danceability", "loudness"], refute=False, **FAST)
    assert report.design == "naive"
    assert any("artist_id" in w and "naive" in w for w in report.warnings)
    assert report["danceability"].effect == report["danceability"].naive_effect


def test_too_few_tracks_per_artist_falls_back_with_a_warning():
    tracks, _ = simulate_catalog(n_artists=400, tracks_per_artist=1, seed=3)
    report = estimate_drivers(tracks, ["loudness"], refute=False, **FAST)
    assert report.design == "naive"
    assert any("two or more tracks" in w for w in report.warnings)


def test_unknown_or_absent_drivers_are_refused_with_the_fix(simulated):
    with pytest.raises(ValueError, match="choose from"):
        estimate_drivers(simulated.tracks, ["catchiness"])
    with pytest.raises(ValueError, match="drop them from --drivers"):
        estimate_drivers(simulated.tracks.drop(columns=["explicit"]), ["explicit"])


def test_drivers_json_follows_the_schema(report):
    data = json.loads(json.dumps(report.to_dict()))
    assert data["design"] == "within_artist" and data["rows"] == report.rows and data["artists"] == report.artists
    keys = {"feature", "unit", "effect", "ci_low", "ci_high", "p_value", "naive_effect", "naive_ci_low",
            "naive_ci_high", "placebo_effect", "placebo_p", "robustness_value", "by_genre"}
    for driver in data["drivers"]:
        assert keys <= set(driver)
        for group in driver["by_genre"]:
            assert set(group) == {"genre", "effect", "ci_low", "ci_high", "n"}
    assert DriverReport.from_dict(data) == report


def test_save_load_round_trip_and_tamper_refusal(report, tmp_path):
    importance = pd.DataFrame({"feature": ["log_followers", "danceability"], "mean_abs_shap": [8.0, 1.5]})
    folder = save_drivers(report, tmp_path / "drivers", importance=importance, data_source="simulated",
                          truth={"danceability": 12.0})
    assert {"drivers.json", "report.html", "manifest.json", "importance.csv"} <= {p.name for p in folder.iterdir()}
    assert load_drivers(folder) == report
    page = (folder / "report.html").read_text()
    assert "plotly" in page and "Model association (not causal)" in page and "true effect" in page
    data = json.loads((folder / "drivers.json").read_text())
    data["drivers"][0]["effect"] = 99.0
    (folder / "drivers.json").write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="checksum"):
        load_drivers(folder)


def _result(feature: str, effect: float, se: float) -> DriverResult:
    nan = math.nan
    return DriverResult(feature, "unit", effect, effect - 1.96 * se, effect + 1.96 * se, 0.01, se, nan, nan, nan,
                        nan, nan, nan, nan, nan, nan, nan, nan, 100, (GenreEffect("pop", effect, 0, 1, 50),))


def test_implied_change_sums_effects_with_independent_errors():
    report = DriverReport("within_artist", 100, 10, (_result("danceability", 10.0, 1.0), _result("loudness", 0.5, 0.2)))
    effect, low, high = implied_change(report, {"danceability": 0.1, "loudness": 2.0})
    assert effect == pytest.approx(10.0 * 0.1 + 0.5 * 2.0)
    half = 1.959964 * math.sqrt((1.0 * 0.1) ** 2 + (0.2 * 2.0) ** 2)
    assert (low, high) == (pytest.approx(effect - half), pytest.approx(effect + half))
    assert implied_change(report, {}) == (0.0, 0.0, 0.0)
    with pytest.raises(KeyError, match="tempo"):
        implied_change(report, {"tempo": 5.0})


def test_robustness_value_matches_cinelli_hazlett():
    # Their Darfur example: t = 4.18 on 783 residual df gives RV = 13.9% and RV(alpha=0.05) = 7.6%.
    rv, rv_alpha = robustness_values(4.18, 783)
    assert rv == pytest.approx(0.139, abs=0.001) and rv_alpha == pytest.approx(0.076, abs=0.001)


def test_cli_writes_the_report_and_shows_the_truth(tmp_path):
    from popdrivers.cli import app

    data = tmp_path / "sim.parquet"
    runner = CliRunner()
    made = runner.invoke(app, ["simulate", "--out", str(data), "--n-artists", "60", "--tracks-per-artist", "30"])
    assert made.exit_code == 0, made.output
    out = tmp_path / "drivers"
    result = runner.invoke(app, ["drivers", "--data", str(data), "--out", str(out), "--drivers",
                                 "danceability,explicit", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "danceability" in result.output and "truth" in result.output
    report = load_drivers(out)
    assert report.features == ("danceability", "explicit") and report.rows == 1800
    bad = runner.invoke(app, ["drivers", "--data", str(data), "--out", str(tmp_path / "x"), "--drivers", "hype"])
    assert bad.exit_code == 2 and "choose from" in bad.output
