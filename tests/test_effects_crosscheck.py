"""Group effects cross-checked against the field's references on a small problem: DoubleML's ``gate`` (the
best linear predictor of the PLR's orthogonal signal on group dummies) and statsmodels' clustered least squares
with driver x family terms. Both estimate what popdrivers' family slopes estimate; they must agree within a
fraction of a standard error, and their clustered standard errors within a fifth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from popdrivers.drivers import artist_grouped_folds, estimate_drivers
from popdrivers.drivers._checks import MIN_GROUP_ARTISTS, MIN_GROUP_ROWS
from popdrivers.sources.simulate import simulate_catalog

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def problem():
    tracks, truth = simulate_catalog(n_artists=90, tracks_per_artist=30, seed=21)
    tracks = tracks.drop(columns=["album_id"])  # within artist: DoubleML's cluster data handles one level
    drivers = ["speechiness", "loudness", "energy"]
    report = estimate_drivers(tracks, drivers, design="within_artist", compare=False, refute=False,
                              learner="linear", n_rep=1, n_folds=4, n_jobs=1, track_controls=False, n_knots=0)
    return tracks, truth, drivers, report


def _design(tracks: pd.DataFrame, drivers: list[str]):
    from popdrivers.drivers._designs import build_design, prepare_sample
    from popdrivers.features import add_release_structure, build_features

    sample, _ = prepare_sample(add_release_structure(build_features(tracks)), drivers, track_controls=False)
    return build_design("within_artist", sample, track_controls=False)


def _labels(design) -> np.ndarray:
    """Each track's group as the basis forms it: its genre family, or the floor's group when its comparison group
    (here: its artist) has a mean popularity below 3."""
    from popdrivers.drivers._basis import FLOOR_GROUP

    return np.where(design.floor, FLOOR_GROUP, np.asarray(design.family).astype(str)).astype(str)


def test_family_effects_agree_with_doubleml_gate(problem):
    doubleml = pytest.importorskip("doubleml")
    from sklearn.linear_model import LinearRegression

    tracks, _, drivers, report = problem
    design = _design(tracks, drivers)
    x, excluded = design.nuisance_features()
    # The features estimate_drivers gives the least squares: the design's and each driver x family.
    slopes, owned = design.family_slope_features(MIN_GROUP_ROWS, MIN_GROUP_ARTISTS)
    excluded = [[*cols, *(x.shape[1] + c for c in owned[j])] for j, cols in enumerate(excluded)]
    x = np.column_stack([x, slopes])
    folds = artist_grouped_folds(design.clusters, 4, 0)  # the folds estimate_drivers draws with seed 0
    splits = [[(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(4)]]
    cluster_splits = [[([np.unique(design.clusters[train])], [np.unique(design.clusters[test])])
                       for train, test in splits[0]]]
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    frame["y"], frame["artist"] = design.y, design.clusters
    j = drivers.index("speechiness")
    frame["d"] = design.treatments["speechiness"]
    keep = [f"x{i}" for i in range(x.shape[1]) if i not in excluded[j]]
    data = doubleml.DoubleMLData(frame, y_col="y", d_cols="d", x_cols=keep, cluster_cols="artist")
    plr = doubleml.DoubleMLPLR(data, LinearRegression(), LinearRegression(), n_folds=4)
    plr.set_sample_splitting(splits, cluster_splits)
    plr.fit()
    ours = {g.group: g for g in report["speechiness"].by_genre}
    assert len(ours) >= 3, ours
    groups = report["speechiness"].heterogeneity.groups
    labels = _labels(design)
    named = [g for g in groups if g != "other families"]
    dummies = pd.DataFrame({g: labels == g for g in named})
    if "other families" in groups:
        dummies["other families"] = ~np.isin(labels, named)
    gate = plr.gate(dummies, cov_type="cluster", cov_kwds={"groups": design.clusters})
    coef, se = np.asarray(gate.coef, dtype=float).ravel(), np.asarray(gate.se, dtype=float).ravel()
    model = report["speechiness"].effect_model
    our_se = np.sqrt(np.diag(np.asarray(model.covariance)))
    for i, g in enumerate(groups):
        mine = ours[g]
        # Our residuals are demeaned once more within artist; DoubleML's are not: a fraction of an SE apart.
        assert abs(mine.effect - coef[i]) < 0.5 * se[i], (g, mine.effect, coef[i], se[i])
        assert model.coef[i] == pytest.approx(mine.effect)  # no spline: a family's effect is its slope
        # CR2 (ours) vs statsmodels' CR1 on DoubleML's residuals.
        assert our_se[i] == pytest.approx(se[i], rel=0.25), g


def test_family_effects_agree_with_clustered_least_squares(problem):
    import statsmodels.api as sm

    tracks, truth, drivers, report = problem
    design = _design(tracks, drivers)
    labels = _labels(design)
    result = report["speechiness"]
    groups = result.heterogeneity.groups
    named = [g for g in groups if g != "other families"]
    membership = {g: labels == g for g in named}
    if "other families" in groups:
        membership["other families"] = ~np.isin(labels, named)
    d = design.treatments["speechiness"]
    others = [design.treatments[o] for o in drivers if o != "speechiness"]
    # The other drivers x family, as estimate_drivers' nuisances see them.
    slopes, owned = design.family_slope_features(MIN_GROUP_ROWS, MIN_GROUP_ARTISTS)
    own = owned[drivers.index("speechiness")]
    other_slopes = slopes[:, [c for c in range(slopes.shape[1]) if c not in own]]
    columns = [d * membership[g] for g in groups] + others + [other_slopes, design.controls]
    ols = sm.OLS(design.y, np.column_stack(columns)).fit(cov_type="cluster", cov_kwds={"groups": design.clusters})
    our_se = np.sqrt(np.diag(np.asarray(result.effect_model.covariance)))
    for i, g in enumerate(groups):
        mine = next(e for e in result.by_genre if e.group == g)
        assert abs(mine.effect - float(ols.params[i])) < 0.75 * our_se[i], (g, mine.effect, float(ols.params[i]))
        assert float(ols.bse[i]) == pytest.approx(our_se[i], rel=0.3), g
    # The simulation's speechiness pays in hip hop (+5) and hurts elsewhere (-14): each family's CI holds its truth
    # (all but one at most; "other families" pools several truths and is left out).
    truths = truth.effects_by_family
    checked = [e for e in result.by_genre if e.group in truths]
    covered = [e.group for e in checked if e.ci_low <= truths[e.group]["speechiness"] <= e.ci_high]
    assert len(checked) >= 3 and len(covered) >= len(checked) - 1, (covered, checked)
