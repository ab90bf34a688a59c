"""SHAP explanations: they add up to the prediction, rank what the model leans on, and say 'association'."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from popdrivers import explain
from popdrivers.model import ARTIST_RECORD, PopularityModel

FAST = {"n_estimators": 60, "num_leaves": 15, "learning_rate": 0.1, "calibration_folds": 2, "n_jobs": 1,
        "new_artist_n_estimators": 60}


@pytest.fixture(scope="module")
def model(catalog):
    return PopularityModel(**FAST).fit(catalog)


def test_contributions_plus_base_value_add_up_to_the_prediction(model, catalog):
    sample = catalog.sample(200, random_state=1)
    contrib = explain.contributions(model, sample)
    assert list(contrib.columns) == [*model.feature_names_, "base_value"]
    assert list(contrib.index) == list(sample["track_id"])
    assert np.allclose(np.clip(contrib.sum(axis=1), 0, 100), model.predict(sample))
    # One base value per booster: tracks of artists with a track record, and of artists without one (an artist
    # with a single track has no other track to learn it from).
    assert contrib["base_value"].nunique() <= 2


def test_contributions_are_the_shap_librarys_tree_shap_values(model, catalog):
    """popdrivers reads LightGBM's own TreeSHAP; the shap package's TreeExplainer is the independent oracle."""
    import shap

    sample = catalog.sample(100, random_state=2)
    contrib = explain.contributions(model, sample)
    matrix, _ = model.design_matrix(sample)
    known = ~np.isnan(matrix[:, model.feature_names_.index(ARTIST_RECORD)])
    assert known.sum() > 20
    explainer = shap.TreeExplainer(model.booster_)
    expected = explainer.shap_values(matrix[known])
    assert np.allclose(contrib.to_numpy()[known, :-1], expected, atol=1e-6)
    assert np.allclose(contrib["base_value"].to_numpy()[known], explainer.expected_value, atol=1e-6)


def test_global_importance_ranks_the_artists_standing_first(model, catalog):
    importance = explain.global_importance(model, catalog)
    assert list(importance.columns[:2]) == ["feature", "mean_abs_shap"]
    assert sorted(importance["feature"]) == sorted(model.feature_names_)
    assert importance["mean_abs_shap"].is_monotonic_decreasing
    assert (importance["mean_abs_shap"] >= 0).all()
    # In the simulation an artist's appeal moves popularity by 10 points per sd; the model must find it
    # through the artist's track record or followers.
    assert set(importance["feature"].head(2)) & {ARTIST_RECORD, "log_followers"}


def test_explain_track_matches_the_batch_contributions(model, catalog):
    row = catalog.iloc[[5]]
    prediction, base, contrib = explain.explain_track(model, row)
    batch = explain.contributions(model, row).iloc[0]
    assert prediction == pytest.approx(model.predict(row)[0])
    assert base == pytest.approx(batch["base_value"])
    pd.testing.assert_series_equal(contrib, batch.drop("base_value").rename("contribution").astype(float),
                                   check_names=False)
    with pytest.raises(ValueError, match="one track at a time"):
        explain.explain_track(model, catalog.head(2))


def test_a_new_artist_gets_no_track_record_credit(model, catalog):
    row = catalog.iloc[[0]].assign(artist_id="someone-new", track_id="new-track")
    detail = explain.track_explanation(model, row)
    assert np.isnan(detail.values[ARTIST_RECORD])
    assert explain.format_value(ARTIST_RECORD, detail.values[ARTIST_RECORD]) == "unknown (new artist)"


def test_plots_are_written_and_labelled_as_association(model, catalog, tmp_path):
    importance = explain.global_importance(model, catalog.head(300))
    detail = explain.track_explanation(model, catalog.iloc[[3]])
    paths = [
        explain.save_figure(explain.importance_figure_matplotlib(importance), tmp_path / "importance.png"),
        explain.save_figure(explain.waterfall_figure_matplotlib(detail), tmp_path / "waterfall.png"),
        explain.save_figure(explain.importance_figure(importance), tmp_path / "importance.html"),
        explain.save_figure(explain.waterfall_figure(detail), tmp_path / "waterfall.html"),
    ]
    for path in paths[:2]:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for path in paths[2:]:
        assert "association, not causal effect" in path.read_text()
    assert (tmp_path / "plotly.min.js").exists()
    waterfall = explain.waterfall_figure(detail)
    assert waterfall.data[0].x[0] == pytest.approx(detail.base_value)
    assert sum(waterfall.data[0].x[:-1]) == pytest.approx(detail.raw_prediction)
    with pytest.raises(ValueError, match=".png or .html"):
        explain.save_figure(explain.importance_figure(importance), tmp_path / "x.svg")


def test_a_feature_curve_is_the_models_prediction_for_the_edited_track(model, catalog):
    row = catalog.iloc[[7]].reset_index(drop=True)
    curve = explain.feature_curve(model, row, "danceability", catalog, points=9)
    current = explain.driver_values(row, ("danceability",))["danceability"]
    assert len(curve) == 9 and curve["value"].is_monotonic_increasing
    assert curve["value"].min() <= current <= curve["value"].max()
    probe = curve.iloc[4]
    edited = explain.with_driver_values(row, {"danceability": probe["value"]})
    assert edited["danceability"].iloc[0] == pytest.approx(probe["value"])
    assert probe["prediction"] == pytest.approx(model.predict(edited)[0])
    assert list(explain.feature_curve(model, row, "explicit")["value"]) == [0.0, 1.0]
    with pytest.raises(ValueError, match="unknown driver"):
        explain.feature_curve(model, row, "hype")


def test_an_explained_prediction_is_the_models_prediction_and_interval(model, catalog):
    row = catalog.iloc[[11]]
    result = explain.explained_prediction(model, row)
    interval = model.predict_interval(row).iloc[0]
    assert result.prediction == pytest.approx(interval["prediction"])
    assert (result.lower, result.upper) == pytest.approx((interval["lower"], interval["upper"]))
