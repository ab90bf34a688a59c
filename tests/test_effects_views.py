"""What users read about effects that vary: the curves and the heterogeneity are drawn and worded from the
report's own numbers, the simulation's true curve is compared at the right values and reference, and the What-if
page gives one track's own effect only where the test found that effects differ. Hand-written reports: the
estimation itself is tested in tests/test_drivers.py."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from popdrivers import drivers_report as figures
from popdrivers import explain
from popdrivers.drivers import DesignEstimate, DesignResult, DriverReport, DriverResult
from popdrivers.drivers._results import CurvePoint, EffectModel, Heterogeneity, TrackLearner


def _estimate(feature: str, effect: float, se: float, weighted: float) -> DesignEstimate:
    return DesignEstimate(design="within_album", feature=feature, unit="+1", effect=effect, se=se,
                          ci_low=effect - 2 * se, ci_high=effect + 2 * se, p_value=0.001, p_adjusted=0.002,
                          simultaneous_ci_low=effect - 3 * se, simultaneous_ci_high=effect + 3 * se, n=1000, dof=60.0,
                          variance_weighted_effect=weighted, variance_weighted_se=se,
                          variance_weighted_ci_low=weighted - 2 * se, variance_weighted_ci_high=weighted + 2 * se)


def _heterogeneity(p: float) -> Heterogeneity:
    return Heterogeneity(p_value=p, method="test", statistic=10.0, restrictions=2, groups=("pop", "other families"),
                         nonlinear_terms=1, draws=999)


@pytest.fixture(scope="module")
def hand_report() -> DriverReport:
    # Loudness: +0.5 points per dB on average, bending (its curve), varying between families; the
    # variance-weighted number is far below the average. Explicit: the same for every track.
    curve = tuple(CurvePoint(value=v, effect=0.5 * (v + 8.0), ci_low=0.5 * (v + 8.0) - 0.2 * abs(v + 8.0),
                             ci_high=0.5 * (v + 8.0) + 0.2 * abs(v + 8.0), band_low=0.5 * (v + 8.0) - 0.3 * abs(v + 8),
                             band_high=0.5 * (v + 8.0) + 0.3 * abs(v + 8))
                  for v in np.linspace(-14.0, -2.0, 13))
    loudness_model = EffectModel(driver="loudness", binary=False, groups=("pop", "other families"),
                                 knots=(-14.0, -8.0, -3.0), coef=(0.3, 0.9, -0.05),
                                 covariance=((0.01, 0.0, 0.0), (0.0, 0.02, 0.0), (0.0, 0.0, 0.001)),
                                 shares=(0.6, 0.4), dof=50.0)
    explicit_model = EffectModel(driver="explicit", binary=True, groups=("pop", "other families"), knots=(),
                                 coef=(2.0, 2.1), covariance=((0.04, 0.0), (0.0, 0.04)), shares=(0.6, 0.4), dof=50.0)
    loudness = DriverResult(estimate=_estimate("loudness", 0.5, 0.05, 0.2), heterogeneity=_heterogeneity(0.001),
                            curve=curve, curve_reference=-8.0, effect_model=loudness_model,
                            track_learner=TrackLearner("R-learner", 0.8, 0.5, 1.1, 0.0004, 0.03, 0.2, 1000))
    explicit = DriverResult(estimate=_estimate("explicit", 2.0, 0.3, 2.05), heterogeneity=_heterogeneity(0.6),
                            effect_model=explicit_model)
    design = DesignResult(name="within_album", rows=1000, artists=60, groups=200, controls=("track number",),
                          estimates=(loudness.estimate, explicit.estimate),
                          covariance=((0.05**2, 0.0), (0.0, 0.3**2)), critical_value=2.4, n_rep=1)
    return DriverReport(design="within_album", design_reason="a hand-written report", rows=1000, artists=60,
                        drivers=(loudness, explicit), designs=(design,))


def test_true_curve_is_read_at_the_curve_points_and_moved_to_its_reference(hand_report):
    loudness = hand_report["loudness"]
    # The truth on another grid and another reference: 0.5 points per dB relative to -9 dB, plus a bend below -12.
    grid = np.linspace(-20.0, 0.0, 81)
    true = 0.5 * (grid + 9.0) + np.where(grid < -12.0, 0.4 * (grid + 12.0), 0.0)
    at = figures.truth_on_curve(loudness, (grid, true))
    values = np.array([p.value for p in loudness.curve])
    expected = 0.5 * (values + 8.0) + np.where(values < -12.0, 0.4 * (values + 12.0), 0.0)
    assert at == pytest.approx(expected, abs=1e-9)
    # Points below -12 dB miss by 0.4 per dB under -12: at -14 the CI half-width is 1.2, the miss 0.8 (covered);
    # the hand-made CIs cover every point but none where the miss exceeds them.
    covered, points = figures.curve_covered(loudness, (grid, true))
    assert points == 12  # 13 points, the reference (-8) itself not counted
    assert covered == 12
    steep = 0.5 * (grid + 9.0) + np.where(grid < -12.0, 1.5 * (grid + 12.0), 0.0)
    assert figures.curve_covered(loudness, (grid, steep)) == (10, 12)  # -14 and -13 dB are missed
    assert figures.curve_covered(loudness, (grid, steep), low=-12.5, high=-3.0) == (9, 9)


def test_curves_are_drawn_with_their_bands_and_the_truth(hand_report):
    loudness = hand_report["loudness"]
    grid = np.linspace(-20.0, 0.0, 81)
    fig = figures.curve_figure(loudness, (grid, 0.5 * (grid + 8.0)))
    names = [t.name for t in fig.data]
    assert {"estimated change", "pointwise 95% CI", "simultaneous 95% band (whole curve)",
            "true change (simulation)", "reference (median)"} <= set(names)
    estimate = next(t for t in fig.data if t.name == "estimated change")
    assert list(estimate.y) == pytest.approx([p.effect for p in loudness.curve])
    assert "instead of -8" in fig.layout.title.text
    # The line one slope would draw, from the average effect through the reference (computed here by hand).
    slope = next(t for t in fig.data if t.name == "one slope (average effect)")
    assert list(slope.y) == pytest.approx([loudness.effect * (p.value + 8.0) for p in loudness.curve])
    # Binary drivers have no curve; the small multiples hold the continuous ones only.
    assert "No dose-response curve" in figures.curve_figure(hand_report["explicit"]).layout.title.text
    assert [a.text for a in figures.curves_figure(hand_report).layout.annotations] == ["loudness (median -8)"]


def test_tables_and_reading_say_which_effects_vary_and_where_the_weighted_number_parts(hand_report):
    table = figures.heterogeneity_table(hand_report).set_index("driver")
    assert table.loc["loudness", "effect varies?"] == "varies (p 0.001)"
    assert table.loc["explicit", "effect varies?"] == "no evidence (p 0.600)"
    assert table.loc["loudness", "variance-weighted (partially linear)"] == "0.2"
    estimates = figures.estimates_table(hand_report).set_index("driver")
    assert estimates.loc["loudness", "variance-weighted"] == "0.2"
    curves = figures.curve_table(hand_report).set_index("driver")
    assert list(curves.index) == ["loudness"]
    assert curves.loc["loudness", "change at low end"] == "-3 [-4.2, -1.8]"
    reading = " ".join(figures.plain_reading(hand_report))
    assert "The effect differs between tracks for loudness (p 0.001" in reading
    assert "one average applies to every track" in reading and "for explicit" in reading
    # The R-learner: found for loudness (beyond the family x value model too, p 0.03); not run for explicit.
    assert table.loc["loudness", "R-learner finds differences?"] == "yes (slope 0.8, p <0.001)"
    assert table.loc["loudness", "beyond the family x value model (p)"] == "0.030"
    assert table.loc["explicit", "R-learner finds differences?"] == "–"
    assert ("R-learner told nothing about genre families finds per-track differences for loudness (calibration "
            "slope 0.8); beyond the family x value model for loudness.") in reading
    # 0.5 vs 0.2 with SEs of 0.05: the gap is named; explicit's 2.0 vs 2.05 is not.
    assert "differ for loudness (0.5 vs 0.2)" in reading and "explicit (2" not in reading
    page = figures.drivers_report_html(hand_report)
    assert "Dose-response curves" in page and "Does the effect vary between tracks?" in page
    assert "variance-weighted" in page


def test_what_if_gives_one_tracks_effect_only_where_effects_vary(hand_report):
    row = pd.DataFrame([{"track_id": "t1", "artist_id": "a1", "genre": "dance pop", "loudness": -10.0,
                         "explicit": False}])
    per_track, average = explain.track_effects(hand_report, row, {"loudness": 3.0, "explicit": 1.0})
    assert average == ("explicit",)  # no evidence it varies: the average applies
    (effect,) = per_track
    assert (effect.driver, effect.family, effect.start, effect.end) == ("loudness", "pop", -10.0, -7.0)
    model = hand_report["loudness"].effect_model
    assert (effect.effect, effect.low, effect.high) == pytest.approx(model.track_change(-10.0, -7.0, "pop"))
    # A rock track takes the pooled families' slope: 0.9 per dB instead of pop's 0.3, plus the same bend.
    rock = row.assign(genre="rock")
    (other,), _ = explain.track_effects(hand_report, rock, {"loudness": 3.0})
    assert other.family == "rock"
    assert other.effect - effect.effect == pytest.approx((0.9 - 0.3) * 3.0)
    assert not math.isclose(effect.effect, 0.5 * 3.0)  # not the average slope times the change
