"""The simulated catalogue: deterministic, valid, calibrated, and confounded the way real catalogues are
(albums, singles, positions, versions, clean copies), so that a design that ignores that structure fails on it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from popdrivers import simulate_catalog, validate
from popdrivers.features import add_release_structure, build_features
from popdrivers.sources.simulate import DRIVERS, STRUCTURAL_EFFECTS, CatalogStructure, CausalTruth

DRIVER_COLUMNS = ["danceability", "energy", "loudness", "speechiness", "acousticness", "instrumentalness", "liveness",
                  "valence", "tempo", "duration_min", "explicit_int", "mode"]


@pytest.fixture(scope="module")
def default():
    return simulate_catalog(300, 60, seed=11)


def test_same_seed_same_table_and_truth():
    a, truth_a = simulate_catalog(20, 10, seed=3)
    b, truth_b = simulate_catalog(20, 10, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert truth_a == truth_b
    c, _ = simulate_catalog(20, 10, seed=4)
    assert not a["popularity"].equals(c["popularity"])


def test_simulated_table_is_already_canonical():
    tracks, _ = simulate_catalog(30, 20, seed=1)
    clean = validate(tracks)
    assert len(clean) == 600 and clean["track_id"].is_unique
    assert dict(clean.dtypes) == dict(tracks.dtypes)
    assert {"album_id", "album_type", "track_number", "album_total_tracks", "isrc", "n_artists"} <= set(tracks.columns)


def test_truth_round_trips_and_is_attenuated_structural_effect():
    _, truth = simulate_catalog(100, 40, seed=2)
    assert CausalTruth.from_dict(truth.to_dict()) == truth
    assert truth.structure == CatalogStructure().to_dict()
    for driver in DRIVERS:
        structural = STRUCTURAL_EFFECTS[driver]
        if structural == 0:
            assert truth.effects[driver] == 0
        elif driver != "danceability":  # danceability has a genre bonus on top
            # Clipping and dead tracks shrink the observed effect by a few percent, never flip it.
            assert 0.85 * abs(structural) < abs(truth.effects[driver]) < abs(structural)


def test_a_catalogue_without_drivers_has_zero_truth():
    _, truth = simulate_catalog(40, 20, seed=2, effects={})
    assert set(truth.effects.values()) == {0.0}


def test_marginals_are_calibrated_to_catalog_2022():
    tracks, _ = simulate_catalog(300, 60, seed=0)
    # catalog-2022: popularity mean 38.2 sd 18.7, 2.8% zeros; danceability mean .61; loudness mean -7.9 dB
    assert tracks["popularity"].mean() == pytest.approx(38.2, abs=4)
    assert tracks["popularity"].std() == pytest.approx(18.7, abs=3)
    assert 0.01 < (tracks["popularity"] == 0).mean() < 0.07
    assert tracks["danceability"].mean() == pytest.approx(0.61, abs=0.05)
    assert tracks["loudness"].mean() == pytest.approx(-7.9, abs=1.0)
    assert tracks["tempo"].mean() == pytest.approx(121.6, abs=5)
    assert np.log10(tracks.groupby("artist_id")["artist_followers"].first()).mean() == pytest.approx(6.46, abs=0.2)


def test_release_structure_looks_like_real_catalogues(default):
    tracks, _ = default
    sizes = tracks.groupby("artist_id").size()
    assert (sizes < 10).mean() > 0.1 and (sizes > 150).sum() >= 3  # heavy-tailed artists
    structure = add_release_structure(tracks)
    shares = structure["version"].value_counts(normalize=True)
    assert 0.05 < shares["live"] < 0.15 and shares["original"] > 0.75
    assert {"remix", "acoustic", "instrumental", "interlude"} <= set(shares[shares > 0].index)
    # Titles say the version and the parser reads it back: live versions are very live.
    live = structure["version"] == "live"
    assert structure.loc[live, "liveness"].mean() > 2 * structure.loc[~live, "liveness"].mean()
    # Clean copies and deluxe editions repeat songs: song groups, same ISRC for deluxe copies.
    assert 0.05 < (structure["song_group_size"] > 1).mean() < 0.4
    assert tracks["album_name"].str.endswith("(Clean)").any() and tracks["album_name"].str.endswith("(Deluxe)").any()
    deluxe = tracks[tracks["album_name"].str.endswith("(Deluxe)")]
    assert deluxe["isrc"].isin(tracks.loc[~tracks["album_name"].str.endswith("(Deluxe)"), "isrc"]).mean() > 0.7
    assert not tracks.loc[tracks["album_name"].str.endswith("(Clean)"), "explicit"].any()
    assert set(tracks["album_type"]) == {"album", "single"}
    # Within artist, energy and loudness move together as in catalog-2022 (0.68).
    within = tracks[["energy", "loudness"]].astype(float) - tracks.groupby("artist_id")[["energy", "loudness"]] \
        .transform("mean")
    assert 0.5 < within.corr().loc["energy", "loudness"] < 0.85
    # Albums carry most of the within-artist variance of popularity (catalog-2022: 71%).
    within_artist = (tracks["popularity"] - tracks.groupby("artist_id")["popularity"].transform("mean")).var()
    within_album = (tracks["popularity"] - tracks.groupby("album_id")["popularity"].transform("mean")).var()
    assert 1 - within_album / within_artist > 0.5


def test_plain_structure_switches_everything_off():
    tracks, truth = simulate_catalog(50, 20, seed=5, structure=CatalogStructure.plain())
    assert (tracks.groupby("artist_id").size() == 20).all()
    assert (add_release_structure(tracks)["version"] == "original").all()
    assert (tracks["album_type"] == "album").all() and (tracks["n_artists"] == 1).all()
    assert not any(truth.structure.values())


def _ols(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    x = np.column_stack([np.ones(len(x)), x])
    return np.linalg.lstsq(x, y, rcond=None)[0][1:]


def _demean(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    frame = pd.DataFrame(values)
    return (frame - frame.groupby(groups).transform("mean")).to_numpy()


def _within_estimates(tracks: pd.DataFrame, group_column: str, track_controls: bool) -> dict[str, float]:
    """Plain fixed-effects least squares: popularity on the drivers (+ position and version dummies)."""
    f = add_release_structure(build_features(tracks))
    x = [f[DRIVER_COLUMNS].to_numpy(float), np.log1p(f[["track_age_days"]].to_numpy(float))]
    if track_controls:
        number = f["track_number"].to_numpy(float)
        x += [np.column_stack([number, np.log(number), number == 1, f["featured"].to_numpy(float),
                               f["album_type"].eq("single").to_numpy(float)]),
              pd.get_dummies(f["version"], drop_first=True).to_numpy(float)]
    groups = f[group_column].to_numpy()
    coef = _ols(_demean(f[["popularity"]].to_numpy(float), groups).ravel(), _demean(np.column_stack(x), groups))
    names = [c if c != "explicit_int" else "explicit" for c in DRIVER_COLUMNS]
    return dict(zip(names, coef[: len(names)], strict=True))


def test_album_campaigns_fool_the_within_artist_comparison_but_not_the_within_album_one(default):
    tracks, truth = default
    within_artist = _within_estimates(tracks, "artist_id", track_controls=False)
    within_album = _within_estimates(tracks, "album_id", track_controls=True)
    # Commercial-sounding albums get bigger campaigns: within artist their sound takes the credit.
    assert within_artist["danceability"] - truth.effects["danceability"] > 3.0
    assert within_artist["loudness"] - truth.effects["loudness"] > 0.3
    # Live versions are less played and very live: without version controls liveness looks worse than it is.
    assert within_artist["liveness"] - truth.effects["liveness"] < -1.0
    for name in ("danceability", "loudness", "liveness", "instrumentalness", "explicit"):
        assert abs(within_album[name] - truth.effects[name]) < 0.15 * abs(truth.effects[name]) + 0.1, name


def test_without_the_structure_the_within_artist_comparison_recovers_the_truth():
    tracks, truth = simulate_catalog(300, 60, seed=11, structure=CatalogStructure.plain())
    within_artist = _within_estimates(tracks, "artist_id", track_controls=False)
    for name in ("danceability", "loudness", "liveness", "energy", "valence"):
        assert abs(within_artist[name] - truth.effects[name]) < 0.12 * abs(truth.effects[name]) + 0.6, name


def test_a_hidden_confounder_fools_even_the_within_album_comparison(default):
    structure = dataclasses.replace(CatalogStructure(), hidden_confounder=True)
    tracks, truth = simulate_catalog(300, 60, seed=11, structure=structure)
    within_album = _within_estimates(tracks, "album_id", track_controls=True)
    assert within_album["loudness"] - truth.effects["loudness"] > 0.5


def test_cli_names_every_switch_of_the_structure():
    from popdrivers.cli.simulate import SWITCHES

    assert tuple(f.name for f in dataclasses.fields(CatalogStructure)) == SWITCHES
