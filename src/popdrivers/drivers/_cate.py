"""Per-track effects from a learner told nothing about genre families or splines, and a test of whether they
carry heterogeneity the effect model (``_basis``: a slope per family plus a spline) misses.

**R-learner** (Nie & Wager, "Quasi-oracle estimation of heterogeneous treatment effects", 2021). With the
cross-fitted residuals of the outcome (``y``) and of the driver (``d``), the conditional effect ``tau(x)`` minimises
``sum (y - tau(x) d)^2``: a regression of ``y / d`` on the track's features weighted by ``d^2``. Here shallow,
strongly regularised LightGBM trees on the nuisance features (the drivers at their own level, the controls, their
album means, the genre family), each fold's tracks predicted by trees fitted on the folds that do not hold their
artist (the primary design's first repetition's folds): every track's proxy is out of fold.

**Calibration and test**: the best linear predictor (BLP) of Chernozhukov, Demirer, Duflo and Fernandez-Val
("Generic machine learning inference on heterogeneous treatment effects"), for a continuous driver: least squares
of ``y`` on ``d`` and ``d (proxy - mean proxy)``, CR2-clustered by artist. A slope of 0 means the proxy carries no
heterogeneity, 1 that it is calibrated; the test is one-sided (a proxy that tracks real differences loads
positively), its p doubled (measured: see ``P_VALUE_FACTOR``). A track's effect is read as
``b1 + b2 (proxy_i - mean)``, the best linear predictor of its effect given the proxy, with an interval from the
2 x 2 covariance: an interval for that predictor, not for the track's true effect. With the effect model's own
per-track derivatives as a third column, the proxy's slope tests whether the learner finds heterogeneity that
model does not have.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from popdrivers.drivers._crossfit import run_tasks, target_chunks, training_rows
from popdrivers.drivers._inference import ClusterSums, fit_basis, t_interval

CATE_METHOD = ("R-learner (Nie & Wager) with LightGBM on the cross-fitted residuals, out of fold by artist; "
               "calibrated and tested by its best linear predictor (Chernozhukov, Demirer, Duflo & Fernandez-Val), "
               "CR2 by artist")
CATE_ROUNDS = 80
CATE_PARAMS = {"objective": "regression", "num_leaves": 7, "learning_rate": 0.05, "min_data_in_leaf": 200,
               "lambda_l2": 10.0, "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1,
               "num_threads": 1, "verbose": -1, "deterministic": True, "force_col_wise": True}


@dataclass(frozen=True)
class TrackEffects:
    """One driver's per-track effects on the design's rows, and the calibration they come from."""

    effect: np.ndarray           # b1 + b2 (proxy - mean proxy), per track
    ci_low: np.ndarray
    ci_high: np.ndarray
    proxy: np.ndarray            # the R-learner's out-of-fold effect
    slope: float                 # b2: 0 = the proxy carries no heterogeneity, 1 = calibrated
    slope_low: float
    slope_high: float
    p_value: float               # of b2 > 0 (one-sided, doubled)
    beyond_model_p_value: float  # the same, with the effect model's per-track effects beside the proxy


def _fit_fold(x_train: np.ndarray, labels: np.ndarray, weights: np.ndarray, x_test: np.ndarray,
              seed: int) -> np.ndarray:
    """Predictions on ``x_test`` of one weighted regression per column of ``labels`` (one binned dataset)."""
    import lightgbm as lgb

    dataset = lgb.Dataset(x_train, label=labels[:, 0], weight=weights[:, 0], free_raw_data=False,
                          params={"max_bin": 63, "verbose": -1}).construct()
    out = np.empty((len(x_test), labels.shape[1]))
    for j in range(labels.shape[1]):
        dataset.set_label(labels[:, j])
        dataset.set_weight(weights[:, j])
        booster = lgb.train({**CATE_PARAMS, "seed": seed}, dataset, num_boost_round=CATE_ROUNDS,
                            keep_training_booster=True)  # as in _crossfit: no round trip through text
        out[:, j] = booster.predict(x_test, num_threads=1)
    return out


def r_learner_proxies(y_res: np.ndarray, d_res: np.ndarray, x: np.ndarray, folds: np.ndarray, seed: int = 0,
                      max_fit_rows: int | None = 20_000, n_jobs: int = 1) -> np.ndarray:
    """Out-of-fold R-learner effects, one column per driver (``y_res``, ``d_res``: rows x drivers).

    Rows whose driver residual is nearly 0 carry no information about the effect (weight ``d^2``); their label
    ``y / d`` is set to 0 so it cannot overflow.
    """
    scale = np.std(d_res, axis=0, keepdims=True)
    informative = np.abs(d_res) > 1e-6 * np.where(scale > 0, scale, 1.0)
    labels = np.where(informative, y_res / np.where(informative, d_res, 1.0), 0.0)
    weights = np.where(informative, d_res**2, 0.0)
    n_folds = int(folds.max()) + 1
    chunks = target_chunks(labels.shape[1], n_folds, n_jobs)
    tasks, places = [], []
    for k in range(n_folds):
        test = np.flatnonzero(folds == k)
        train = training_rows(folds, k, max_fit_rows, seed)
        for chunk in chunks:
            tasks.append((x[train], labels[np.ix_(train, chunk)], weights[np.ix_(train, chunk)], x[test], seed + k))
            places.append((test, chunk))
    results = run_tasks(_fit_fold, tasks, n_jobs)
    proxies = np.zeros_like(labels)
    for (test, chunk), predicted in zip(places, results, strict=True):
        proxies[np.ix_(test, chunk)] = predicted
    return proxies


# The one-sided p is doubled: on 60 catalogues where nothing has an effect (BENCHMARKS.md) the plain one-sided p
# fell below 5% for 7.5% of drivers, the doubled one for 4.9% (the proxy is fitted on residuals whose nuisances saw
# the other folds, and the clustered SE of the slope runs a little narrow).
P_VALUE_FACTOR = 2.0


def _greater(effect: float, se: float, dof: float) -> float:
    """p-value of ``effect > 0``: the one-sided Student t p, doubled (``P_VALUE_FACTOR``) and capped at 1. A
    proxy that tracks real differences loads positively; a negative loading is no evidence of them."""
    if not (np.isfinite(effect) and np.isfinite(se) and se > 0):
        return math.nan
    one_sided = float(stats.t.sf(effect / se, max(float(dof), 1.0) if np.isfinite(dof) else 1.0))
    return min(1.0, P_VALUE_FACTOR * one_sided)


def calibrate(y_res: np.ndarray, d_res: np.ndarray, proxy: np.ndarray, clusters: ClusterSums,
              model_effect: np.ndarray | None = None, level: float = 0.95) -> TrackEffects:
    """The proxy's best linear predictor: per-track effects with intervals, the slope and its tests."""
    centred = proxy - proxy.mean()
    z = np.column_stack([d_res, d_res * centred])
    fit, _ = fit_basis(y_res, z, clusters)
    slope = fit.functional(np.array([0.0, 1.0]), z, clusters)
    average = fit.functional(np.array([1.0, 0.0]), z, clusters)
    slope_low, slope_high, _ = t_interval(slope.effect, slope.se, slope.dof, level)
    p = _greater(slope.effect, slope.se, slope.dof)
    cov = fit.covariance
    effect = fit.coef[0] + fit.coef[1] * centred
    se = np.sqrt(np.maximum(cov[0, 0] + 2 * centred * cov[0, 1] + centred**2 * cov[1, 1], 0.0))
    low, high, _ = t_interval(float(average.effect), 1.0, average.dof, level)
    q = (high - low) / 2 if np.isfinite(high) else math.nan
    beyond = math.nan
    if model_effect is not None and np.std(model_effect) > 1e-12:
        z3 = np.column_stack([d_res, d_res * (model_effect - model_effect.mean()), d_res * centred])
        fit3, _ = fit_basis(y_res, z3, clusters)
        third = fit3.functional(np.array([0.0, 0.0, 1.0]), z3, clusters)
        beyond = _greater(third.effect, third.se, third.dof)
    return TrackEffects(effect=effect, ci_low=effect - q * se, ci_high=effect + q * se, proxy=proxy,
                        slope=float(slope.effect), slope_low=float(slope_low), slope_high=float(slope_high),
                        p_value=float(p), beyond_model_p_value=float(beyond))


__all__ = ["CATE_METHOD", "TrackEffects", "calibrate", "r_learner_proxies"]
