"""From one repetition's cross-fitted residuals to a driver's average effect, curve, group effects and test.

For driver d with basis ``f(d; family) = gamma_family d + sum_k beta_k s_k(d)`` (``_basis``):

- the outcome residual is regressed on the residualised basis columns (least squares, CR2 by artist);
- **average effect** = the mean over the design's tracks of each track's derivative ``f'(d_i; family_i)``: a
  linear combination ``a' coef`` with ``a`` the mean of the derivative rows (the tracks are the design's, so
  ``a`` is fixed: the estimand is the average over *these* tracks, as the simulation's truth is);
- **curve** at v = the mean over tracks of ``f(v; family_i) - f(reference; family_i)``, ``reference`` the
  driver's median; pointwise CIs, and a band over the grid (max-t multiplier bootstrap over artists);
- **group effects** (GATEs) = the mean derivative over one family's (or era's) tracks; families from the same
  fit, eras from the fit restricted to the era's tracks;
- **heterogeneity** = the score test that all family slopes are equal and the spline terms are 0, whose
  restricted model is the partially linear one (one slope): ``_inference.score_sign_flip_test``;
- the **variance-weighted** partially linear slope ``sum(d y) / sum(d d)`` is kept beside the average effect.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from popdrivers import registry
from popdrivers.drivers._basis import FLOOR_GROUP, OTHER_FAMILIES, TreatmentBasis, family_groups, spline_knots
from popdrivers.drivers._designs import DesignMatrices
from popdrivers.drivers._inference import (
    ClusterSums,
    FinalStage,
    aggregate_repetitions,
    final_stage,
    fit_basis,
    score_sign_flip_test,
    simultaneous_critical_value,
    simultaneous_multiplier,
    t_interval,
)

CURVE_POINTS = 21
CURVE_RANGE = (0.025, 0.975)
HETEROGENEITY_METHOD = ("cluster-robust score test that every genre family has the same slope and the spline's "
                        "nonlinear terms are 0 (restricted model: one slope), sign-flip bootstrap over artists; "
                        "p = 2 x the median over cross-fitting repetitions")
# Chernozhukov, Demirer, Duflo & Fernandez-Val's rule for the uncertainty of the sample split: twice the median
# of the splits' p-values is a valid p-value however they depend on each other. Needed here: one split's test
# fired for 5.7% [4.2%, 7.6%] of drivers at 5% on 60 homogeneous 3,000-track catalogues (the bootstrap takes the
# cross-fitted residuals as known); doubled, 2.6% (BENCHMARKS.md).
SPLIT_P_FACTOR = 2.0


def split_p_value(p_values: list[float] | tuple[float, ...] | np.ndarray) -> float:
    """The heterogeneity test's p-value over cross-fitting repetitions: ``min(1, 2 x median)``."""
    values = np.asarray(p_values, dtype="float64")
    if not len(values) or not np.all(np.isfinite(values)):
        return math.nan
    return float(min(1.0, SPLIT_P_FACTOR * np.median(values)))


@dataclass(frozen=True)
class DriverBasis:
    """What one driver's final stage needs on one design's rows, fixed across repetitions."""

    basis: TreatmentBasis
    codes: np.ndarray            # group of each row
    level: np.ndarray            # the driver's own values
    average: np.ndarray          # a: mean derivative row (the average effect is a' coef)
    family_weights: np.ndarray   # groups x columns: mean derivative row of each group's tracks
    family_rows: np.ndarray      # tracks per group
    family_artists: np.ndarray   # artists per group
    curve_values: np.ndarray     # grid (with the reference)
    curve_weights: np.ndarray    # points x columns
    reference: float
    aside_eras: dict[str, int] = dataclasses.field(default_factory=dict)  # set-aside tracks at 0 per era

    @property
    def restriction(self) -> np.ndarray:
        """Rows of ``R coef = 0`` under "no heterogeneity": family slopes equal, spline terms 0. The slope of the
        groups at the floor is left free: that effects vanish at 0 is the floor's doing, not a difference between
        tracks the test should report."""
        g, k = self.basis.n_groups, self.basis.n_spline
        free = self.basis.floor_code
        slopes = [i for i in range(g) if i != free]
        rows = []
        for i in slopes[1:]:
            row = np.zeros(g + k)
            row[slopes[0]], row[i] = -1.0, 1.0
            rows.append(row)
        for j in range(k):
            row = np.zeros(g + k)
            row[g + j] = 1.0
            rows.append(row)
        return np.array(rows).reshape(len(rows), g + k)


def driver_basis(matrices: DesignMatrices, driver: str, n_knots: int, min_rows: int, min_artists: int) \
        -> DriverBasis:
    """The basis of ``driver`` on this design's rows: family groups, spline knots (none for binary drivers or
    ``n_knots < 3``), the derivative rows behind the average effect, and the curve grid."""
    binary = registry.spec(driver).binary if registry.is_registered(driver) else False
    level = matrices.level(driver)
    families = matrices.family if matrices.family is not None else np.full(len(level), "unknown", dtype=object)
    if matrices.floor is not None and matrices.floor.any():
        families = np.where(matrices.floor, FLOOR_GROUP, np.asarray(families, dtype=object))
    groups = family_groups(families, matrices.clusters, min_rows, min_artists)
    knots = () if binary else spline_knots(level, n_knots)
    basis = TreatmentBasis(driver, binary, groups, knots)
    codes = basis.group_codes(families)
    derivative = basis.derivative_rows(level, codes)
    counts = np.bincount(codes, minlength=basis.n_groups)
    # Tracks set aside at 0 (``_designs.set_aside_zeros``) count in every average with an effect of 0: each
    # mean's denominator is its group's tracks plus its set-aside ones.
    aside = matrices.aside
    totals = counts + _aside_counts(basis, aside.family if aside is not None else None)
    family_weights = np.vstack([derivative[codes == g].sum(axis=0) / totals[g] if counts[g]
                                else np.zeros(basis.n_columns) for g in range(basis.n_groups)])
    artists = np.array([len(np.unique(matrices.clusters[codes == g])) for g in range(basis.n_groups)])
    reference = float(np.median(level))
    if binary:
        values = np.empty(0)
        weights = np.empty((0, basis.n_columns))
    else:
        grid = np.linspace(*np.quantile(level, CURVE_RANGE), CURVE_POINTS)
        values = np.unique(np.append(grid, reference))
        shares = counts / totals.sum()
        spline = basis.spline(values) - basis.spline(np.array([reference]))
        with_spline = shares.sum() - (shares[basis.floor_code] if basis.floor_code >= 0 else 0.0)
        weights = np.column_stack([np.outer(values - reference, shares), spline * with_spline])
    return DriverBasis(basis, codes, level, derivative.sum(axis=0) / totals.sum(), family_weights, counts, artists,
                       values, weights, reference, _label_counts(aside.era) if aside is not None else {})


def _aside_counts(basis: TreatmentBasis, families: np.ndarray | None) -> np.ndarray:
    """Set-aside tracks per group of ``basis`` (a family the design's tracks do not have is not counted)."""
    if families is None or not len(families):
        return np.zeros(basis.n_groups, dtype=np.int64)
    labels = np.asarray(families).astype(str)
    usable = np.isin(labels, basis.groups) | (OTHER_FAMILIES in basis.groups)
    return np.bincount(basis.group_codes(labels[usable]), minlength=basis.n_groups)


def _label_counts(labels: np.ndarray) -> dict[str, int]:
    """How many of ``labels`` carry each label (the set-aside tracks per era: effect 0 in the era averages)."""
    values, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
    return {str(value): int(count) for value, count in zip(values, counts, strict=True)}


def spline_targets(matrices: DesignMatrices, prepared: DriverBasis) -> np.ndarray:
    """The spline columns as the design sees them (demeaned within its groups): targets of their own nuisances."""
    return matrices.demean(prepared.basis.spline(prepared.level))


@dataclass(frozen=True)
class DriverRepetition:
    """One driver's final stage in one cross-fitting repetition."""

    average: FinalStage
    weighted: FinalStage
    coef: np.ndarray
    covariance: np.ndarray
    curve: tuple[FinalStage, ...]
    families: tuple[FinalStage, ...]
    eras: dict[str, FinalStage]
    heterogeneity: tuple[float, float]        # (statistic, p-value)
    representer: np.ndarray | None            # w / w'w of the average effect (for the placebo), first repetition


def _group_stage(fit_stage: FinalStage, rows: int, artists: int) -> FinalStage | None:
    return fit_stage if rows and artists and np.isfinite(fit_stage.effect) else None


def driver_repetition(y_res: np.ndarray, d_res: np.ndarray, spline_res: np.ndarray, prepared: DriverBasis,
                      clusters: ClusterSums, era_masks: list[tuple[str, np.ndarray]], test_draws: int, seed: int,
                      keep_representer: bool, details: bool) -> DriverRepetition:
    """Fit the basis on one repetition's residuals and read every quantity off it (``details``: the curve,
    group effects and the heterogeneity test too, as the primary design needs)."""
    basis = prepared.basis
    z = np.column_stack([d_res * (prepared.codes == g) for g in range(basis.n_groups)]
                        + [spline_res * basis.spline_mask(prepared.codes)])
    weighted = final_stage(y_res, d_res, clusters)
    fit, _ = fit_basis(y_res, z, clusters)
    average = fit.functional(prepared.average, z, clusters)
    curve: tuple[FinalStage, ...] = ()
    families: tuple[FinalStage, ...] = ()
    eras: dict[str, FinalStage] = {}
    heterogeneity = (math.nan, math.nan)
    if details:
        curve = tuple(fit.functional(w, z, clusters) for w in prepared.curve_weights)
        families = tuple(fit.functional(w, z, clusters) for w in prepared.family_weights)
        restriction = prepared.restriction
        if len(restriction) and np.isfinite(weighted.effect):
            restricted = y_res - weighted.effect * d_res
            if basis.floor_code >= 0:
                # The restricted model: one slope for the tracks off the floor, their own for those at it.
                at_floor = (prepared.codes == basis.floor_code).astype("float64")
                two = np.column_stack([d_res * (1.0 - at_floor), d_res * at_floor])
                restricted = y_res - two @ np.linalg.lstsq(two, y_res, rcond=None)[0]
            heterogeneity = score_sign_flip_test(z, restricted, restriction, fit.bread, clusters, test_draws, seed)
        derivative = basis.derivative_rows(prepared.level, prepared.codes)
        for label, mask in era_masks:
            sub = ClusterSums(clusters.codes[mask])
            era_fit, _ = fit_basis(y_res[mask], z[mask], sub)
            total = mask.sum() + prepared.aside_eras.get(label, 0)
            eras[label] = era_fit.functional(derivative[mask].sum(axis=0) / total, z[mask], sub)
    representer = fit.riesz(prepared.average, z) if keep_representer else None
    return DriverRepetition(average, weighted, fit.coef, fit.covariance, curve, families, eras, heterogeneity,
                            representer)


def aggregate_stages(stages: list[FinalStage]) -> tuple[float, float, float, float, float, float]:
    """``(effect, se, ci_low, ci_high, p, dof)`` of one quantity over repetitions (median, DoubleML's SE)."""
    effect, se = aggregate_repetitions(np.array([s.effect for s in stages]), np.array([s.se for s in stages]))
    dof = float(np.median([s.dof for s in stages]))
    low, high, p = t_interval(float(effect), float(se), dof)
    return float(effect), float(se), low, high, p, dof


def aggregate_coefficients(reps: list[DriverRepetition]) -> tuple[np.ndarray, np.ndarray]:
    """Mean coefficients over repetitions and their covariance: the mean clustered covariance plus the spread of
    the repetitions around the mean (the split's own variability, as DoubleML's aggregation adds it)."""
    coefs = np.array([r.coef for r in reps])
    mean = coefs.mean(axis=0)
    spread = np.mean([np.outer(c - mean, c - mean) for c in coefs], axis=0)
    return mean, np.mean([r.covariance for r in reps], axis=0) + spread


def aggregate_curve(prepared: DriverBasis, reps: list[DriverRepetition], n_boot: int, seed: int) \
        -> list[tuple[float, float, float, float, float, float]]:
    """Per grid point ``(value, effect, ci_low, ci_high, band_low, band_high)``; the band's critical value is the
    max-|t| over the grid's points (multiplier bootstrap over artists, median over repetitions), moved to each
    point's t scale. At the reference the change is 0 by definition."""
    usable = [i for i, v in enumerate(prepared.curve_values) if v != prepared.reference]
    critical = simultaneous_critical_value([[r.curve[i] for i in usable] for r in reps], n_boot=n_boot, seed=seed)
    out = []
    for i, value in enumerate(prepared.curve_values):
        if i not in usable:
            out.append((float(value), 0.0, 0.0, 0.0, 0.0, 0.0))
            continue
        effect, se, low, high, _, dof = aggregate_stages([r.curve[i] for r in reps])
        half = simultaneous_multiplier(critical, dof) * se
        out.append((float(value), effect, low, high, effect - half, effect + half))
    return out


def family_labels(prepared: DriverBasis) -> list[tuple[int, str]]:
    """(index, label) of the groups that get a group effect (every group with tracks)."""
    return [(g, label) for g, label in enumerate(prepared.basis.groups) if prepared.family_rows[g] > 0]


__all__ = ["CURVE_POINTS", "HETEROGENEITY_METHOD", "OTHER_FAMILIES", "DriverBasis", "DriverRepetition",
           "aggregate_coefficients", "aggregate_curve", "aggregate_stages", "driver_basis", "driver_repetition",
           "family_labels", "spline_targets"]
