"""The simulated catalogue: deterministic, valid, calibrated, and confounded the way real data is."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from popdrivers import simulate_catalog, validate
from popdrivers.features import DRIVERS, build_features
from popdrivers.sources.simulate import STRUCTURAL_EFFECTS, CausalTruth


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


def test_truth_round_trips_and_is_attenuated_structural_effect():
    _, truth = simulate_catalog(100, 40, seed=2)
    assert CausalTruth.from_dict(truth.to_dict()) == truth
    for driver in DRIVERS:
        structural = STRUCTURAL_EFFECTS[driver]
        if structural == 0:
            assert truth.effects[driver] == 0
        elif driver != "danceability":  # danceability has a genre bonus on top
            # Clipping and dead tracks shrink the observed effect by a few percent, never flip it.
            assert 0.85 * abs(structural) < abs(truth.effects[driver]) < abs(structural)


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


def _ols(y: np.ndarray, X: np.ndarray) -> np.ndarray:
    X = np.column_stack([np.ones(len(X)), X])
    return np.linalg.lstsq(X, y, rcond=None)[0][1:]


def test_naive_regression_is_biased_while_within_artist_recovers_truth():
    tracks, truth = simulate_catalog(300, 60, seed=11)
    f = build_features(tracks)
    cols = ["danceability", "energy", "loudness", "speechiness", "acousticness", "instrumentalness", "liveness",
            "valence", "tempo", "duration_min", "explicit_int", "mode"]
    X = f[cols].to_numpy(float)
    age = np.log1p(f["track_age_days"].to_numpy(float))[:, None]
    genre = pd.get_dummies(f["genre_family"], drop_first=True).to_numpy(float)
    y = f["popularity"].to_numpy(float)
    naive = _ols(y, np.column_stack([X, age, f[["log_followers"]].to_numpy(float), genre]))[: len(cols)]
    group = f["artist_id"].to_numpy()

    def demean(a: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame(a)
        return (frame - frame.groupby(group).transform("mean")).to_numpy()

    within = _ols(demean(y[:, None]).ravel(), demean(np.column_stack([X, age])))[: len(cols)]
    names = [c if c != "explicit_int" else "explicit" for c in cols]
    naive_err = {n: naive[i] - truth.effects[n] for i, n in enumerate(names)}
    within_err = {n: within[i] - truth.effects[n] for i, n in enumerate(names)}
    # Across artists, appeal leaks into the style features: danceability and valence look too good.
    assert naive_err["danceability"] > 2.0
    assert naive_err["valence"] > 1.0
    # Within artists the same features are recovered.
    assert abs(within_err["danceability"]) < 1.5
    assert abs(within_err["valence"]) < 1.0
    assert abs(within_err["loudness"]) < 0.15
