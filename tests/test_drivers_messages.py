"""What `drivers` tells a user (issue 23): the real reason a small table cannot be estimated, a warning for an effect
resting on one artist, placebo rates far below the nominal 5% flagged, and p-values printed with the digits that
agree with the "distinguishable from 0" decision, the same in the CLI and the HTML report."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from popdrivers import registry
from popdrivers.drivers import DriverReport, estimate_drivers
from popdrivers.errors import InputError
from popdrivers.format import number, p_value, percent
from popdrivers.sources.simulate import simulate_catalog

FAST = {"n_folds": 3, "n_estimators": 30, "n_rep": 1, "n_permutations": 100, "n_bootstrap": 300, "n_jobs": 1}


def test_a_table_of_25_tracks_is_refused_for_too_few_tracks_not_for_missing_columns():
    tracks = simulate_catalog(n_artists=5, tracks_per_artist=5, seed=0).tracks
    with pytest.raises(InputError) as caught:
        estimate_drivers(tracks, n_jobs=1)
    first, *detail = str(caught.value).splitlines()
    assert first.startswith("too few tracks to estimate drivers: the table has only 25 tracks")
    assert "Fix: use a larger table" in first and "none of" not in str(caught.value)
    assert "danceability" in detail[0] and "energy" in detail[0]
    with pytest.raises(InputError, match="^too few tracks to estimate drivers"):
        estimate_drivers(tracks, ["danceability"], n_jobs=1)  # asked for by name: the same reason


def test_a_table_of_100_tracks_names_what_each_design_needs_with_the_fix_first():
    tracks = simulate_catalog(n_artists=10, tracks_per_artist=10, seed=0).tracks
    with pytest.raises(InputError) as caught:
        estimate_drivers(tracks, n_jobs=1)
    first, *detail = str(caught.value).splitlines()
    assert first.startswith("too few tracks for any design: 100 complete tracks")
    assert "30 albums with two or more tracks" in first and "Fix:" in first
    assert [line.strip().split(":")[0] for line in detail] == ["within album", "within artist", "naive"]


def test_a_table_without_driver_columns_says_so():
    tracks = simulate_catalog(n_artists=5, tracks_per_artist=10, seed=0).tracks
    drivers = [registry.spec(d).canonical for d in registry.driver_names()]
    with pytest.raises(InputError, match="no driver column"):
        estimate_drivers(tracks.drop(columns=[c for c in drivers if c in tracks.columns]), n_jobs=1)


@pytest.fixture(scope="module")
def one_artist_explicit():
    """A catalogue where only one artist's albums mix explicit and clean tracks (as kaggle-600k's `explicit`)."""
    tracks = simulate_catalog(n_artists=60, tracks_per_artist=20, seed=3).tracks.copy()
    mask = tracks["artist_id"] == tracks["artist_id"].iloc[0]
    tracks["explicit"] = False
    tracks.loc[mask, "explicit"] = np.arange(int(mask.sum())) % 2 == 0
    return tracks


@pytest.mark.slow
def test_an_effect_estimated_from_one_artist_is_warned_about(one_artist_explicit):
    report = estimate_drivers(one_artist_explicit, ["explicit", "loudness"], seed=0, **FAST)
    about_explicit = [w for w in report.warnings if w.startswith("explicit:")]
    assert len(about_explicit) == 1 and "estimated from 1 artist " in about_explicit[0], report.warnings
    assert not [w for w in report.warnings if w.startswith("loudness:") and "artist" in w]


@pytest.mark.slow
def test_the_cli_prints_the_one_artist_warning_and_drivers_json_keeps_it(one_artist_explicit, tmp_path):
    from popdrivers.cli import app

    data = tmp_path / "tracks.parquet"
    one_artist_explicit.to_parquet(data)
    out = tmp_path / "drivers"
    result = CliRunner().invoke(app, ["drivers", "--data", str(data), "--out", str(out), "--drivers",
                                      "explicit,loudness", "--no-refute", "--n-rep", "1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "warning: explicit: estimated from 1 artist" in " ".join(result.output.split())
    saved = json.loads((out / "drivers.json").read_text())
    assert any(w.startswith("explicit: estimated from 1 artist") for w in saved["warnings"])


def test_placebo_rates_far_below_the_nominal_5_percent_are_flagged_as_too_wide():
    from popdrivers.drivers._checks import estimate_warnings, placebo_too_rare

    assert placebo_too_rare(0.0, 200) and placebo_too_rare(0.01, 200)
    assert not placebo_too_rare(0.03, 200) and not placebo_too_rare(0.05, 200)
    assert not placebo_too_rare(0.0, 100)  # 0 of 100 happens 0.6% of the time when the CIs are honest
    support = {"explicit": (40, 30.0), "loudness": (40, 30.0), "tempo": (40, 30.0)}
    rows = [("explicit", 1.0, -1.0, 3.0, 0.005, 200), ("loudness", 1.0, 0.5, 1.5, 0.05, 200),
            ("tempo", 1.0, 0.9, 1.1, 0.2, 200)]
    warnings = estimate_warnings("within_album", rows, support)
    assert len(warnings) == 2
    assert warnings[0].startswith("explicit:") and "too wide" in warnings[0]
    assert warnings[1].startswith("tempo:") and "too narrow" in warnings[1]
    # Many artists, but a few hold most of the variation: also too few clusters.
    (concentrated,) = estimate_warnings("within_album", [("tempo", 1.0, 0.5, 1.5, 0.05, 200)],
                                        {"tempo": (34, 4.2)})
    assert concentrated.startswith("tempo: rests on few artists: 34 artists") and "4.2 equal artists" in concentrated


def test_p_values_have_the_digits_that_agree_with_the_decision():
    assert p_value(0.0497) == "0.0497" and p_value(0.04996) == "0.04996"
    assert p_value(0.0503) == "0.050" and p_value(0.0004) == "<0.001" and p_value(0.31) == "0.310"
    for p in np.linspace(0.001, 0.2, 2001):
        assert (float(p_value(p)) < 0.05) == (p < 0.05), p
    assert number(12345.6) == "12,346" and number(-3.14159) == "-3.14" and number(float("nan")) == "–"
    assert percent(0.045) == "4%" and percent(None) == "–"


@pytest.fixture(scope="module")
def borderline() -> DriverReport:
    """A real report whose first driver's Holm p is set to 0.0497: distinguishable from 0, just."""
    tracks = simulate_catalog(n_artists=40, tracks_per_artist=20, seed=1).tracks
    report = estimate_drivers(tracks, ["loudness", "tempo"], seed=0, refute=False, by_genre=False, compare=False,
                              **FAST)
    first = report.drivers[0]
    changed = dataclasses.replace(first, estimate=dataclasses.replace(first.estimate, p_adjusted=0.0497))
    return dataclasses.replace(report, drivers=(changed, *report.drivers[1:]))


def test_the_cli_and_the_html_report_agree_on_a_holm_p_of_0_0497(borderline, tmp_path, monkeypatch):
    import popdrivers.drivers
    from popdrivers.cli import app
    from popdrivers.drivers_report import drivers_report_html, estimates_table, plain_reading

    assert borderline.drivers[0].distinguishable
    assert estimates_table(borderline)["p (Holm)"].iloc[0] == "0.0497"
    assert any("Holm-adjusted p 0.0497" in line for line in plain_reading(borderline))
    assert "0.0497" in drivers_report_html(borderline)

    monkeypatch.setattr(popdrivers.drivers, "estimate_drivers", lambda *args, **kwargs: borderline)
    data = tmp_path / "tracks.parquet"
    simulate_catalog(n_artists=3, tracks_per_artist=3, seed=0).tracks.to_parquet(data)
    result = CliRunner().invoke(app, ["drivers", "--data", str(data), "--out", str(tmp_path / "out")],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if borderline.drivers[0].feature in line)
    assert "0.0497" in row and " 0.05 " not in row and " 0.050 " not in row
