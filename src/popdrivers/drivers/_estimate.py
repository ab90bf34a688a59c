"""estimate_drivers: the steps from a track table to a :class:`DriverReport`, in order.

1. derive features and release structure (version, position, ...), keep complete cases;
2. choose the primary design (the strictest the table supports) and its tracks; every design runs on them;
3. per design and repetition: folds grouped by artist, cross-fitted residuals, final stage per driver;
4. aggregate repetitions; joint covariance; Holm-adjusted p-values; simultaneous band;
5. on the primary design: permutation placebo, sensitivity with benchmarks, effects by genre and era.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from popdrivers import registry
from popdrivers.drivers._cate import CATE_METHOD, TrackEffects, calibrate, r_learner_proxies
from popdrivers.drivers._checks import (
    BENCHMARK_MULTIPLES,
    BENCHMARKS,
    MIN_DRIVER_VALUES,
    MIN_GROUP_ARTISTS,
    MIN_GROUP_ROWS,
    LinearAnalogue,
    adjusted_estimate,
    adjusted_se,
    confounder_bound,
    driver_support_counts,
    estimate_warnings,
    group_masks,
    no_design_message,
    no_driver_message,
    partial_r2,
    permutation_placebo,
    robustness_value,
)
from popdrivers.drivers._crossfit import (
    LEARNERS,
    NuisanceGroups,
    NuisanceLearner,
    artist_grouped_folds,
    cross_fit_targets,
)
from popdrivers.drivers._designs import (
    DESIGNS,
    MIN_ALBUMS,
    MIN_ARTISTS,
    MIN_ROWS,
    DesignMatrices,
    build_design,
    choose_design,
    design_support,
    driver_support,
    prepare_sample,
    set_aside_zeros,
)
from popdrivers.drivers._effects import (
    HETEROGENEITY_METHOD,
    DriverRepetition,
    aggregate_coefficients,
    aggregate_curve,
    aggregate_stages,
    driver_basis,
    driver_repetition,
    family_labels,
    spline_targets,
    split_p_value,
)
from popdrivers.drivers._inference import (
    LEVEL,
    ClusterSums,
    FinalStage,
    adjust_p_values,
    aggregate_repetitions,
    joint_covariance,
    simultaneous_critical_value,
    simultaneous_multiplier,
    t_interval,
)
from popdrivers.drivers._results import (
    CurvePoint,
    DesignEstimate,
    DesignResult,
    DriverReport,
    DriverResult,
    EffectModel,
    GroupEffect,
    Heterogeneity,
    SensitivityBound,
    TrackLearner,
)
from popdrivers.errors import InputError
from popdrivers.features import (
    add_release_structure,
    build_features,
    feature_source_counts,
    other_source_rows,
    sourced_feature_columns,
    table_features_source,
)
from popdrivers.progress import ProgressCallback
from popdrivers.schema import popularity_source

# Repetitions of the primary design's fold draw when ``n_rep`` is not given: fewer on large tables, where each one
# costs most (docstring of estimate_drivers).
DEFAULT_REPETITIONS = 3
LARGE_TABLE_ROWS = 50_000
LARGE_TABLE_REPETITIONS = 2


def _single_threaded_blas(func: Callable[..., DriverReport]) -> Callable[..., DriverReport]:
    """Run ``func`` with BLAS on one thread: nuisance fits run side by side on threads, and a multi-threaded
    BLAS inside each of them oversubscribes the cores (measured: 100x slower on a shared 2-core machine)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> DriverReport:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return func(*args, **kwargs)

    return wrapper


def _whole_artist_subset(df: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    if "artist_id" not in df.columns or df["artist_id"].isna().all():
        return df.sample(n=max_rows, random_state=seed)
    sizes = df.groupby("artist_id", observed=True, dropna=False).size()
    shuffled = sizes.sample(frac=1.0, random_state=seed)
    keep = shuffled.index[shuffled.cumsum().to_numpy() <= max_rows]
    if len(keep) == 0:
        keep = shuffled.index[:1]
    return df[df["artist_id"].isin(keep)]


def _fold_done(tick: Callable[[str], None], label: str, n_folds: int, k: int) -> None:
    tick(f"{label}: fold {k + 1}/{n_folds}")


def _design_order(primary: str, compare: bool) -> list[str]:
    """The primary design first, then the looser ones beside it."""
    if not compare:
        return [primary]
    return [primary, *DESIGNS[DESIGNS.index(primary) + 1:]]


def _append_owned(x: np.ndarray, excluded: list[list[int]], block: np.ndarray, owned: list[list[int]]) \
        -> tuple[np.ndarray, list[list[int]]]:
    """``x`` with ``block``'s columns appended, and each driver j's excluded columns extended by its own block
    columns ``owned[j]`` (indices within the block)."""
    offset = x.shape[1]
    return (np.column_stack([x, block]),
            [[*cols, *(offset + c for c in owned[j])] for j, cols in enumerate(excluded)])


class _DesignRun:
    """Cross-fitted final stages of one design over its repetitions (plus what the primary's checks need).

    Per repetition every driver gets three kinds of nuisance targets, fitted on the same folds: the outcome and
    the driver (each without the driver's own columns), and, for continuous drivers of the primary design, the
    spline columns of the driver (``_basis``); the family columns need none. With ``group_nuisances`` the
    driver's and spline columns' least squares are fitted within each group of the basis (:meth:`nuisance_groups`).
    """

    def __init__(self, matrices: DesignMatrices, drivers: list[str], n_rep: int, n_knots: int, details: bool,
                 share_spline: bool = False, family_slopes: bool = True, spline_nuisances: bool = False,
                 group_nuisances: bool = False, group_prior_rows: float = 0.0):
        self.matrices = matrices
        self.group_nuisances = group_nuisances
        self.group_prior_rows = group_prior_rows
        self.family_slopes = family_slopes
        self.spline_nuisances = spline_nuisances
        self._linear_only = 0
        self.drivers = drivers
        self.n_rep = n_rep
        self.details = details
        self.clusters = ClusterSums(matrices.clusters)
        self.prepared = {d: driver_basis(matrices, d, n_knots, MIN_GROUP_ROWS, MIN_GROUP_ARTISTS) for d in drivers}
        self.reps: list[list[DriverRepetition]] = []                 # [rep][driver]
        self.residuals: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # first repetition, for the placebo
        self.track_effects: dict[str, TrackEffects] = {}               # first repetition, primary design
        self.share_spline = share_spline
        self._pending: list[Future[list[DriverRepetition]]] = []
        self._proxies: np.ndarray | None = None
        self._first_residuals: np.ndarray | None = None

    @property
    def stages(self) -> list[list[FinalStage]]:
        """The average effects' final stages, [rep][driver]."""
        return [[r.average for r in rep] for rep in self.reps]

    def _targets(self) -> tuple[np.ndarray, list[list[int]], list[slice]]:
        m = self.matrices
        x, excluded = m.nuisance_features()
        n_drivers = len(self.drivers)
        splines = [spline_targets(m, self.prepared[driver]) for driver in self.drivers]
        tree_width = x.shape[1]
        if self.family_slopes:
            slopes, owned = m.family_slope_features(MIN_GROUP_ROWS, MIN_GROUP_ARTISTS)
            x, excluded = _append_owned(x, excluded, slopes, owned)
        if self.spline_nuisances and any(spline.shape[1] for spline in splines):
            # The other continuous drivers' spline columns in the least squares too (the trees do not see them):
            # with least-squares nuisances a curved effect (loudness saturating) was otherwise left in the
            # outcome's residual of a correlated driver and in that driver's spline residual (BENCHMARKS.md).
            bounds = np.cumsum([0, *(spline.shape[1] for spline in splines)])
            owned = [list(range(bounds[j], bounds[j + 1])) for j in range(n_drivers)]
            x, excluded = _append_owned(x, excluded, np.column_stack(splines), owned)
        self._linear_only = x.shape[1] - tree_width
        columns = [np.repeat(m.y[:, None], n_drivers, axis=1),
                   np.column_stack([m.treatments[name] for name in self.drivers])]
        exclusions = [*excluded, *excluded]
        spline_slices = []
        start = 2 * n_drivers
        for j, spline in enumerate(splines):
            columns.append(spline)
            exclusions += [excluded[j]] * spline.shape[1]
            spline_slices.append(slice(start, start + spline.shape[1]))
            start += spline.shape[1]
        self._x = x
        return np.column_stack(columns), exclusions, spline_slices

    def nuisance_groups(self, n_targets: int) -> NuisanceGroups | None:
        """Least squares fitted within each group of the basis, shrunk by ``group_prior_rows``, for the drivers'
        and the spline columns' targets, not the outcome's.

        The final stage's columns are ``1_group x residual(d)``, the residual of ``1_group x d`` only if the
        nuisance of ``d`` fits each group as well as the whole: where a driver's relation to a control differs
        between families, a pooled least squares leaves each family's share of it in that family's column, and the
        family's slope takes it. Fitted within each group, the construction is exact for the least-squares part;
        the trees stay pooled (they see the family). None without groups, or when the drivers' groups differ (they
        are the design's families and floor, the same for every driver).
        """
        if not self.group_nuisances or not self.drivers:
            return None
        codes = [self.prepared[d].codes for d in self.drivers]
        if self.prepared[self.drivers[0]].basis.n_groups < 2 or any(not np.array_equal(c, codes[0])
                                                                     for c in codes[1:]):
            return None
        grouped = np.arange(n_targets) >= len(self.drivers)
        return NuisanceGroups(codes[0], codes[0], grouped, prior_rows=self.group_prior_rows)

    def run(self, learner: NuisanceLearner, n_folds: int, seed: int, n_jobs: int, keep_residuals: bool,
            era_masks: list[tuple[str, np.ndarray]], test_draws: int, tick: Callable[[str], None],
            final_stages: Executor, track_effects: bool = False) -> None:
        """Cross-fit every repetition here and hand its final stages to ``final_stages`` (a one-thread executor):
        the workers fit the next repetition's nuisances while this process computes the last one's estimates.
        :meth:`finish` waits for them."""
        m = self.matrices
        targets, exclusions, spline_slices = self._targets()
        n_drivers = len(self.drivers)
        self._pending = []
        self._proxies = None
        for rep in range(self.n_rep):
            folds = artist_grouped_folds(m.clusters, n_folds, seed + 101 * rep)
            rep_learner = dataclasses.replace(learner, seed=seed + rep, linear_only=self._linear_only)
            label = m.name.replace("_", " ") + (f", repetition {rep + 1}/{self.n_rep}" if self.n_rep > 1 else "")
            # share_spline: the spline columns' nuisances fitted on the first repetition's folds only and reused
            # (each track's prediction still comes from models that never saw its artist). A third faster on 100k
            # tracks, but the average effect of a skewed driver then leans on one split: on playlist-songs-2020
            # instrumentalness gave -4.7, -8.9, -7.3 over three seeds (refitting: -8.8, -8.9, -6.2), so it is off
            # by default.
            fitted = targets.shape[1] if rep == 0 or not self.share_spline else 2 * n_drivers
            on_fold = functools.partial(_fold_done, tick, label, n_folds)
            groups = self.nuisance_groups(fitted)
            residuals = cross_fit_targets(self._x, targets[:, :fitted], exclusions[:fitted], folds, rep_learner,
                                          n_jobs, on_fold=on_fold, groups=groups)
            residuals = m.within(residuals)
            if rep == 0:
                spline_residuals = residuals[:, 2 * n_drivers:]
            elif self.share_spline:
                residuals = np.column_stack([residuals, spline_residuals])
            self._pending.append(final_stages.submit(
                self._final_stages, rep, residuals, spline_slices, keep_residuals and rep == 0, era_masks,
                test_draws, seed))
            if track_effects and rep == 0:
                self._first_residuals = residuals
                self._proxies = r_learner_proxies(residuals[:, :n_drivers], residuals[:, n_drivers:2 * n_drivers],
                                                  self._x[:, :self._x.shape[1] - self._linear_only], folds,
                                                  seed, learner.max_fit_rows, n_jobs)

    def _final_stages(self, rep: int, residuals: np.ndarray, spline_slices: list[slice], keep: bool,
                      era_masks: list[tuple[str, np.ndarray]], test_draws: int, seed: int) -> list[DriverRepetition]:
        n_drivers = len(self.drivers)
        reps = []
        for j, driver in enumerate(self.drivers):
            result = driver_repetition(residuals[:, j], residuals[:, n_drivers + j], residuals[:, spline_slices[j]],
                                       self.prepared[driver], self.clusters, era_masks, test_draws,
                                       seed + 13 * rep + j, keep, self.details)
            if keep and result.representer is not None:
                self.residuals[driver] = (residuals[:, j].copy(), result.representer)
            reps.append(result)
        return reps

    def finish(self) -> None:
        """Wait for the repetitions' final stages; calibrate the R-learner's effects on the first one."""
        if not self._pending:
            return
        self.reps = [future.result() for future in self._pending]
        self._pending = []
        if self._proxies is not None:
            self._track_effects(self._first_residuals, self._proxies, self.reps[0])
            self._proxies = self._first_residuals = None

    def _track_effects(self, residuals: np.ndarray, proxies: np.ndarray, reps: list[DriverRepetition]) -> None:
        """Per-track effects of every driver: the R-learner's proxies (``_cate``) calibrated on this repetition."""
        n = len(self.drivers)
        for j, driver in enumerate(self.drivers):
            prepared = self.prepared[driver]
            model = prepared.basis.derivative_rows(prepared.level, prepared.codes) @ reps[j].coef
            self.track_effects[driver] = calibrate(residuals[:, j], residuals[:, n + j], proxies[:, j],
                                                   self.clusters, model_effect=model)

    def aggregate(self, seed: int, n_bootstrap: int, has_artists: bool) -> DesignResult:
        self.finish()
        m = self.matrices
        drivers = self.drivers
        stages = self.stages
        effects = np.array([[s.effect for s in rep] for rep in stages]).T     # drivers x reps
        ses = np.array([[s.se for s in rep] for rep in stages]).T
        effect, se = aggregate_repetitions(effects, ses)
        dof = np.array([np.median([rep[j].dof for rep in stages]) for j in range(len(drivers))])
        intervals = [t_interval(e, s, k) for e, s, k in zip(effect, se, dof, strict=True)]
        p = np.array([iv[2] for iv in intervals])
        p_adjusted = adjust_p_values(p, "holm")
        covariance = joint_covariance(stages, se)
        critical = simultaneous_critical_value(stages, LEVEL, n_bootstrap, seed)
        band = np.array([simultaneous_multiplier(critical, k) for k in dof]) * se
        estimates = []
        for i, d in enumerate(drivers):
            weighted = aggregate_stages([rep[i].weighted for rep in self.reps])
            estimates.append(DesignEstimate(
                design=m.name, feature=d, unit=registry.spec(d).effect_unit, effect=float(effect[i]),
                se=float(se[i]), ci_low=intervals[i][0], ci_high=intervals[i][1], p_value=float(p[i]),
                p_adjusted=float(p_adjusted[i]), simultaneous_ci_low=float(effect[i] - band[i]),
                simultaneous_ci_high=float(effect[i] + band[i]), n=len(m.y), dof=float(dof[i]),
                rep_effects=tuple(float(v) for v in effects[i]), variance_weighted_effect=weighted[0],
                variance_weighted_se=weighted[1], variance_weighted_ci_low=weighted[2],
                variance_weighted_ci_high=weighted[3]))
        return DesignResult(
            name=m.name, rows=len(m.y), artists=self.clusters.n_clusters if has_artists else 0, groups=m.n_groups,
            controls=m.control_names, estimates=tuple(estimates),
            covariance=tuple(tuple(float(v) for v in row) for row in covariance), critical_value=critical,
            n_rep=self.n_rep)

    def driver_details(self, j: int, seed: int, n_bootstrap: int, test_draws: int) \
            -> tuple[Heterogeneity | None, tuple[CurvePoint, ...], EffectModel]:
        """The primary design's heterogeneity test, curve and effect model of driver ``j``."""
        prepared = self.prepared[self.drivers[j]]
        reps = [rep[j] for rep in self.reps]
        basis = prepared.basis
        heterogeneity = None
        if len(prepared.restriction):
            p_values = [r.heterogeneity[1] for r in reps]
            heterogeneity = Heterogeneity(
                p_value=split_p_value(p_values), method=HETEROGENEITY_METHOD,
                statistic=float(np.median([r.heterogeneity[0] for r in reps])),
                restrictions=len(prepared.restriction), groups=basis.groups, nonlinear_terms=basis.n_spline,
                draws=test_draws, p_values=tuple(float(v) for v in p_values))
        curve = tuple(CurvePoint(*point) for point in aggregate_curve(prepared, reps, n_bootstrap, seed + j))
        coef, covariance = aggregate_coefficients(reps)
        model = EffectModel(
            driver=basis.driver, binary=basis.binary, groups=basis.groups, knots=basis.knots,
            coef=tuple(float(v) for v in coef), covariance=tuple(tuple(float(v) for v in row) for row in covariance),
            shares=tuple(float(v) for v in prepared.family_rows / prepared.family_rows.sum()),
            dof=float(np.median([r.average.dof for r in reps])))
        return heterogeneity, curve, model

    def group_effects(self, j: int) -> dict[str, list[tuple[str, float, float, float, float, int, int]]]:
        """Per kind (genre, era): (label, effect, low, high, p, tracks, artists) of driver ``j``."""
        prepared = self.prepared[self.drivers[j]]
        reps = [rep[j] for rep in self.reps]
        genre = []
        for g, label in family_labels(prepared):
            effect, _, low, high, p, _ = aggregate_stages([r.families[g] for r in reps])
            if np.isfinite(effect):
                genre.append((label, effect, low, high, p, int(prepared.family_rows[g]),
                              int(prepared.family_artists[g])))
        era = []
        for label in reps[0].eras if reps else ():
            stages = [r.eras[label] for r in reps]
            effect, _, low, high, p, _ = aggregate_stages(stages)
            if np.isfinite(effect):
                era.append((label, effect, low, high, p, stages[0].n, stages[0].clusters))
        return {"genre": genre, "era": era}


def _sensitivity(run: _DesignRun, drivers: list[str], effects: np.ndarray, ses: np.ndarray, dofs: np.ndarray) \
        -> dict[str, tuple[float, float, float, tuple[SensitivityBound, ...]]]:
    """Per driver: partial R2, RV, RV at 5%, and bounds against the design's benchmarks."""
    m = run.matrices
    analogue = LinearAnalogue(m.y, [m.treatments[d] for d in drivers], m.controls, intercept=m.name == "naive")
    n_regressors = len(drivers) - 1 + m.controls.shape[1]
    dof = len(m.y) - m.fixed_effects - n_regressors - 1
    out = {}
    for j, driver in enumerate(drivers):
        # The classical t of each repetition's final stage, aggregated like the estimates.
        ts = np.array([rep[j].classical_t(dof) for rep in run.stages])
        t = float(np.median(ts))
        classical_se = abs(effects[j] / t) if np.isfinite(t) and t != 0 else math.nan
        bounds = []
        for benchmark in BENCHMARKS[m.name]:
            block = m.block_columns.get(benchmark)
            if not block:
                continue
            r2dxj, r2yxj = analogue.benchmark_r2(j, block)
            for k in BENCHMARK_MULTIPLES:
                r2dz, r2yz = confounder_bound(r2dxj, r2yxj, k)
                if not np.isfinite(r2dz) or not np.isfinite(classical_se):
                    bounds.append(SensitivityBound(benchmark, k, r2dz, r2yz, math.nan, math.nan, math.nan))
                    continue
                adjusted = adjusted_estimate(effects[j], classical_se, dof, r2dz, r2yz)
                # The CI keeps the clustered SE, scaled as the confounder would scale it.
                scaled_se = adjusted_se(ses[j], dof, r2dz, r2yz)
                low, high, _ = t_interval(adjusted, scaled_se, dofs[j])
                bounds.append(SensitivityBound(benchmark, k, float(r2dz), float(r2yz), adjusted, float(low),
                                               float(high)))
        out[driver] = (partial_r2(t, dof), robustness_value(t, dof), robustness_value(t, dof, alpha=0.05),
                       tuple(bounds))
    return out


def _primary_checks(run: _DesignRun, drivers: list[str], seed: int, n_bootstrap: int, has_artists: bool,
                    refute: bool, n_permutations: int, by_genre: bool) -> tuple[DesignResult, dict, dict, dict, list]:
    """The primary design's estimates and everything read from its residuals: placebo, sensitivity, genre and
    era effects, and per driver its heterogeneity test, curve and effect model."""
    result = run.aggregate(seed, n_bootstrap, has_artists)
    effects = np.array([e.effect for e in result.estimates])
    placebo = {}
    sensitivity = {}
    if refute:
        if n_permutations > 0:
            # Shuffle within the comparison groups; the naive design compares across them, so across all tracks.
            # The average effect is linear in the outcome residual (w'y); shuffling w within an album is shuffling
            # the driver there (the family, constant within the album, stays).
            m = run.matrices
            shuffle_groups = m.groups if m.name != "naive" else np.zeros(len(m.y), dtype=np.int64)
            placebo = permutation_placebo(run.residuals, dict(zip(drivers, effects, strict=True)),
                                          shuffle_groups, run.clusters, n_permutations, seed + 7)
        sensitivity = _sensitivity(run, drivers, effects, np.array([e.se for e in result.estimates]),
                                   np.array([e.dof for e in result.estimates]))
    group_rows = ({d: run.group_effects(j) for j, d in enumerate(drivers)} if by_genre
                  else {d: {"genre": [], "era": []} for d in drivers})
    details = [run.driver_details(j, seed, n_bootstrap, n_bootstrap) for j in range(len(drivers))]
    return result, placebo, sensitivity, group_rows, details


def _track_learner(effects: TrackEffects | None) -> TrackLearner | None:
    if effects is None:
        return None
    return TrackLearner(method=CATE_METHOD, slope=effects.slope, slope_low=effects.slope_low,
                        slope_high=effects.slope_high, p_value=effects.p_value,
                        beyond_model_p_value=effects.beyond_model_p_value, spread=float(np.std(effects.effect)),
                        tracks=len(effects.effect))


def _track_effects_frame(run: _DesignRun, track_ids: np.ndarray | None) -> pd.DataFrame | None:
    """Per track and driver the calibrated R-learner effect (long format), None without track ids."""
    if track_ids is None or not run.track_effects:
        return None
    frames = [pd.DataFrame({"track_id": track_ids, "driver": driver, "effect": e.effect, "ci_low": e.ci_low,
                            "ci_high": e.ci_high, "proxy": e.proxy})
              for driver, e in run.track_effects.items()]
    return pd.concat(frames, ignore_index=True)


def _check_parameters(design: str, learner: str, n_folds: int, n_rep: int | None, n_permutations: int) -> None:
    if design not in ("auto", *DESIGNS):
        raise InputError(f"design must be auto or one of {', '.join(DESIGNS)}, got '{design}'")
    if learner not in LEARNERS:
        raise InputError(f"learner must be one of {', '.join(LEARNERS)}, got '{learner}'")
    if n_folds < 2:
        raise InputError(f"n_folds must be at least 2, got {n_folds}")
    if n_rep is not None and n_rep < 1:
        raise InputError(f"n_rep must be at least 1, got {n_rep}")
    if n_permutations < 0:
        raise InputError(f"n_permutations must be 0 (no placebo) or more, got {n_permutations}")


@_single_threaded_blas
def estimate_drivers(
    tracks: pd.DataFrame,
    drivers: list[str] | tuple[str, ...] | None = None,
    *,
    design: str = "auto",
    compare: bool = True,
    n_folds: int = 5,
    n_rep: int | None = None,
    seed: int = 0,
    max_rows: int | None = None,
    refute: bool = True,
    by_genre: bool = True,
    progress: ProgressCallback | None = None,
    learner: str = "linear+lgbm",
    n_estimators: int = 60,
    num_leaves: int = 15,
    learning_rate: float = 0.1,
    max_fit_rows: int | None = 20_000,
    n_permutations: int = 200,
    n_bootstrap: int = 2000,
    track_controls: bool = True,
    n_jobs: int = 2,
    n_knots: int = 4,
    track_effects: bool = True,
    share_spline_nuisances: bool = False,
    family_slope_nuisances: bool = True,
    spline_nuisances: bool = False,
    group_nuisances: bool = False,
    group_nuisance_prior_rows: float = 0.0,
    set_aside_zero_tracks: bool = True,
) -> DriverReport:
    """Estimate the causal effect of each driver on popularity, in the strictest design the table supports.

    Parameters
    ----------
    tracks
        A canonical track table (``schema.validate`` output); derived columns are added.
    drivers
        Names from ``popdrivers.registry.eligible_driver_names()``; default: every driver of the table's features
        source present with variation (``registry.drivers_for_source``: Spotify's features and the metadata drivers,
        or, when most tracks' features were measured from their sound by popdrivers.audio, tempo, mode, loudness,
        duration, explicit and popdrivers' descriptors). Tracks whose features come from another source are left
        out of the sourced drivers (said in ``warnings``); ``info["driver_sources"]`` says where each driver's
        values come from.
    design
        ``"auto"`` (within album if the table has enough albums with two or more tracks, else within artist,
        else naive; the reason is in ``design_reason``) or a design name (falls back the same way, with a
        warning).
    compare
        Also estimate the looser designs on the same tracks (within artist and naive beside within album).
    n_folds, n_rep
        Cross-fitting folds (grouped by artist) and repetitions of the fold draw for the primary design
        (aggregated by the median, as DoubleML does); other designs use one draw. ``n_rep=None``: 3, or 2 when
        the primary design compares more than ``LARGE_TABLE_ROWS`` tracks (there a third draw costs about a
        quarter of the run; the estimates of two draws differ by 0.27-0.29 SE on average at both 18,000 and
        100,000 tracks, so a draw's share of the error does not grow with size: BENCHMARKS.md).
    seed
        Seeds folds, subsamples, permutations, the bootstrap and LightGBM.
    max_rows
        Use a random subset of whole artists with at most this many tracks (said in ``warnings``).
    refute
        Run the permutation placebo and the sensitivity analysis on the primary design.
    by_genre
        Effects by genre family and release era (with Benjamini-Hochberg q-values).
    progress
        Called as ``progress(done, total, message)`` after each cross-fitting fold of each design and repetition.
    learner, n_estimators, num_leaves, learning_rate, max_fit_rows
        Nuisance learner (:class:`NuisanceLearner`): ``"linear+lgbm"`` (default), ``"lgbm"`` or ``"linear"``, its
        LightGBM settings, and the rows each nuisance model is trained on at most (said in ``warnings``).
    n_permutations
        Shuffles of the placebo (0: none).
    n_bootstrap
        Multiplier-bootstrap draws of the simultaneous band.
    track_controls
        Control for track position, version, featured artist and single status (False reproduces the bare
        comparison, for studies of what those controls do).
    n_jobs
        Nuisance fits run side by side on this many threads.
    n_knots
        Knots of the restricted cubic spline of each continuous driver in the primary design (its effect may
        change along its values; ``n_knots - 2`` columns, each with its own nuisance models); below 3: none, the
        effect is a slope per genre family.
    share_spline_nuisances
        Fit the spline columns' nuisances on the first repetition's folds only and reuse them in the others (about
        a third faster on large tables); off by default: the average effect of a skewed driver then rests on one
        split of the spline nuisances (measured on playlist-songs-2020, BENCHMARKS.md).
    family_slope_nuisances
        Give the nuisances' least-squares start each driver's level times each genre family (the trees do not see
        these columns): where one driver's effect differs by family, the nuisances of a driver correlated with it
        otherwise keep part of that difference and bias it (BENCHMARKS.md). Off: one slope per driver.
    spline_nuisances
        Give the nuisances' least-squares start, in the primary design, the other continuous drivers' spline
        columns (the trees do not see them). With ``learner="linear"`` it removes the bias a curved effect leaves
        in a correlated driver (energy beside a saturating loudness: -0.89 SE on average over 40 default
        catalogues, -0.14 with these columns); with the default learner it changed nothing measurable (18
        catalogues: 15 of 18 pass the default check, 16 without; BENCHMARKS.md), so it is off by default.
    group_nuisances
        Fit the least-squares start of the drivers' and spline columns' nuisances within each group of the basis
        (genre family with a slope of its own, the albums at the floor, the pooled rest; a group with fewer than 2
        training tracks per feature keeps the pooled fit), so that ``1_group x residual(driver)`` is the residual of
        the final stage's own column (``_DesignRun.nuisance_groups``). Where a driver's relation to a control
        differs between families it is needed with ``learner="linear"`` (a counterexample: every family 10-13 SE
        off without it) and helps the default learner (family CIs covering 74% -> 89%). Off by default: on 18 default
        catalogues the per-group fits' noise pulled most average effects toward 0 (loudness -0.64 SE on average
        against -0.11, duration +0.69 against +0.36; 207 of 216 CIs cover against 211; BENCHMARKS.md).
    group_nuisance_prior_rows
        With ``group_nuisances``: shrink each group's least squares toward the pooled one with the weight of this
        many tracks (0: each group on its own).
    set_aside_zero_tracks
        Leave out of the comparisons the tracks at popularity 0 whose album's other tracks average 20 points or
        more (most often a copy whose plays Spotify credits to another); the averages count them with an effect of
        0 (``_designs.set_aside_zeros``). Off: they are compared like any track (outliers of minus their album's
        mean, BENCHMARKS.md).
    track_effects
        Per-track effects from an R-learner on the primary design's first repetition, calibrated and tested by
        their best linear predictor (``DriverResult.track_learner``, ``DriverReport.track_effects``).

    Returns
    -------
    DriverReport

    Raises
    ------
    InputError
        Bad parameters, no popularity column, unknown or constant drivers, or too few tracks for any design.
    """
    start = time.perf_counter()
    _check_parameters(design, learner, n_folds, n_rep, n_permutations)
    if "popularity" not in tracks.columns:
        raise InputError("the table has no popularity column: causal drivers need the outcome (add popularity, "
                         "or merge it from a dataset that has it)")
    eligible = registry.eligible_driver_names()
    if drivers is not None:
        unknown = [d for d in drivers if d not in eligible]
        if unknown:
            raise InputError(f"unknown driver(s) {', '.join(unknown)}: choose from {', '.join(eligible)}")
    warnings: list[str] = []
    df = add_release_structure(build_features(tracks))
    # One features source per table: the drivers (and so each driver's controls, the other drivers) follow the
    # source of most tracks; tracks whose features come from another source leave those columns.
    features_source = table_features_source(df)
    known = registry.drivers_for_source(features_source)
    df, left_out = _keep_one_source(df, features_source)
    if left_out:
        warnings.append(left_out)
    if max_rows is not None and len(df) > max_rows:
        df = _whole_artist_subset(df, max_rows, seed)
        warnings.append(f"max_rows={max_rows:,}: estimated on a random subset of {len(df):,} of {len(tracks):,} "
                        "tracks (whole artists)")
    requested = list(dict.fromkeys(drivers)) if drivers is not None else None
    present = [d for d in (requested or known) if _driver_column_ok(df, d)]
    missing = [d for d in (requested or []) if d not in present]
    if missing:
        counts = _driver_value_counts(df, missing)
        if len(counts) == len(missing) and max(counts.values()) < MIN_DRIVER_VALUES:
            raise InputError(no_driver_message(counts, len(df), MIN_ROWS, MIN_ARTISTS, MIN_ALBUMS))
        raise InputError(f"cannot estimate driver(s) {', '.join(missing)}: their columns are missing or nearly "
                         "empty in this table; drop them from the driver list")
    if not present:
        raise InputError(no_driver_message(_driver_value_counts(df, known), len(df), MIN_ROWS, MIN_ARTISTS,
                                           MIN_ALBUMS))
    warnings += [f"driver '{d}' skipped: its column is missing or nearly empty" for d in known
                 if requested is None and d not in present]
    # What popdrivers measured comes with the key of the same sound: a control there (a label, not a driver).
    sample, dropped = prepare_sample(df, present, track_controls, key_control=features_source == "audio")
    if set_aside_zero_tracks:
        sample = set_aside_zeros(sample)
    if dropped:
        warnings.append(f"{dropped:,} of {len(df):,} tracks dropped: missing popularity, artist or a driver")
    try:
        primary, rows, reason, fallbacks = choose_design(sample, design)
    except ValueError:
        reasons = [f"{name.replace('_', ' ')}: {design_support(sample, name)[1]}" for name in DESIGNS]
        raise InputError(no_design_message(len(sample) + sample.n_set_aside, reasons, MIN_ROWS, MIN_ARTISTS,
                                           MIN_ALBUMS)) from None
    if design != "auto":
        warnings += fallbacks
    sample = sample.subset(rows)
    chosen, skipped = driver_support(sample, present)
    warnings += skipped
    if not chosen:
        raise InputError("no driver varies among the tracks the design can compare")
    warnings += sample.notes
    set_aside = sample.n_set_aside
    if len(sample) < len(df) - dropped - set_aside:
        warnings.append(f"{len(df) - dropped - set_aside - len(sample):,} tracks outside any "
                        f"{primary.replace('_', ' ')} comparison left out (groups of one track)")
    if n_rep is None:
        n_rep = DEFAULT_REPETITIONS if len(sample) <= LARGE_TABLE_ROWS else LARGE_TABLE_REPETITIONS
    learner_obj = NuisanceLearner(learner, n_estimators, num_leaves, learning_rate, max_fit_rows, seed)
    n_fold_train = len(sample) * (n_folds - 1) / n_folds
    if max_fit_rows is not None and n_fold_train > max_fit_rows:
        warnings.append(f"nuisance models trained on a random {max_fit_rows:,} of ~{int(n_fold_train):,} rows per "
                        "fold (max_fit_rows) to bound the time; residuals are still computed for every track")

    names = _design_order(primary, compare)
    total = sum(n_folds * (n_rep if name == primary else 1) for name in names)
    done = 0

    def tick(message: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total, message)

    if progress:
        progress(0, total, "starting")
    era_masks = group_masks(sample.era, sample.artists) if by_genre else []
    primary_run: _DesignRun | None = None
    # This process's own work (final stages, tests, curves, the placebo) runs on one thread beside the worker
    # processes' nuisance fits, so the workers do not wait for it between repetitions and designs.
    final_stages = ThreadPoolExecutor(max_workers=1, thread_name_prefix="popdrivers-final-stages")
    try:
        pending: list[Future[Any]] = []
        for name in names:
            matrices = build_design(name, sample, track_controls)
            is_primary = name == primary
            # The spline (its own nuisances) and the detailed quantities are the primary design's; the designs
            # beside it average family slopes, which cost no extra nuisance model.
            run = _DesignRun(matrices, chosen, n_rep if is_primary else 1, n_knots if is_primary else 0,
                             details=is_primary, share_spline=share_spline_nuisances,
                             family_slopes=family_slope_nuisances, spline_nuisances=spline_nuisances,
                             group_nuisances=group_nuisances, group_prior_rows=group_nuisance_prior_rows)
            run.run(learner_obj, n_folds, seed, n_jobs, keep_residuals=is_primary and refute and n_permutations > 0,
                    era_masks=era_masks if is_primary else [], test_draws=n_bootstrap, tick=tick,
                    final_stages=final_stages, track_effects=is_primary and track_effects)
            if is_primary:
                primary_run = run
                pending.append(final_stages.submit(_primary_checks, run, chosen, seed, n_bootstrap,
                                                   sample.has_artists, refute, n_permutations, by_genre))
            else:
                pending.append(final_stages.submit(run.aggregate, seed, n_bootstrap, sample.has_artists))
        primary_result, placebo, sensitivity, group_rows, details = pending[0].result()
        results = [primary_result, *(future.result() for future in pending[1:])]
    except BaseException:
        final_stages.shutdown(wait=True, cancel_futures=True)
        raise
    final_stages.shutdown()
    assert primary_run is not None

    flat = [(d, kind, i) for d, per in group_rows.items() for kind, rows_ in per.items() for i in range(len(rows_))]
    q_values = adjust_p_values(np.array([group_rows[d][k][i][4] for d, k, i in flat]), "fdr_bh")
    q_of = {key: q_values[n] for n, key in enumerate(flat)}

    def group_effects(kind: str, driver: str) -> tuple[GroupEffect, ...]:
        return tuple(GroupEffect(label, eff, lo, hi, p, float(q_of[(driver, kind, i)]), n, a)
                     for i, (label, eff, lo, hi, p, n, a) in enumerate(group_rows[driver][kind]))

    m = primary_run.matrices
    support = {d: driver_support_counts(m.treatments[d], primary_run.clusters, center=m.name == "naive")
               for d in chosen} if sample.has_artists else {}
    warnings += estimate_warnings(primary, [
        (e.feature, e.effect, e.ci_low, e.ci_high, placebo[e.feature].rejection_rate if e.feature in placebo
         else math.nan, placebo[e.feature].permutations if e.feature in placebo else 0)
        for e in primary_result.estimates], support)
    driver_results = []
    for j, estimate in enumerate(primary_result.estimates):
        d = estimate.feature
        check = placebo.get(d)
        r2, rv, rv_ci, bounds = sensitivity.get(d, (math.nan, math.nan, math.nan, ()))
        heterogeneity, curve, model = details[j]
        driver_results.append(DriverResult(
            estimate=estimate,
            placebo_effect=check.effect if check else math.nan, placebo_sd=check.sd if check else math.nan,
            placebo_rejection_rate=check.rejection_rate if check else math.nan,
            placebo_p=check.p_value if check else math.nan, placebo_permutations=check.permutations if check else 0,
            partial_r2=r2, robustness_value=rv, robustness_value_ci=rv_ci, sensitivity=bounds,
            by_genre=group_effects("genre", d), by_era=group_effects("era", d), heterogeneity=heterogeneity,
            curve=curve, curve_reference=primary_run.prepared[d].reference if curve else math.nan,
            effect_model=model, track_learner=_track_learner(primary_run.track_effects.get(d))))

    info = {
        "learner": learner, "score": "partialling-out", "n_folds": n_folds, "n_rep": n_rep, "seed": seed,
        "n_estimators": n_estimators, "num_leaves": num_leaves, "learning_rate": learning_rate,
        "max_fit_rows": max_fit_rows, "track_controls": track_controls, "requested_design": design,
        "n_knots": n_knots, "popularity_source": popularity_source(tracks),
        "features_source": features_source, "features_source_label": registry.source_label(features_source),
        "driver_sources": {d: registry.value_source(d, features_source) for d in chosen},
        "controls": {r.name: list(r.controls) for r in results},
        "nuisance_features": "demeaned controls and their group means (Mundlak), log group size, genre family"
                             + (", driver x genre family (least squares only)" if family_slope_nuisances else "")
                             + (", the other drivers' spline columns in the primary design (least squares only)"
                                if spline_nuisances and n_knots >= 3 else "")
                             + ("; the drivers' and spline columns' least squares fitted within each basis group"
                                + (f", shrunk toward the pooled fit with the weight of {group_nuisance_prior_rows:g} "
                                   "tracks" if group_nuisance_prior_rows > 0 else "")
                                if group_nuisances else ""),
        "estimand": "average over the design's tracks of the effect of +1 unit (each track's derivative of "
                    "f(driver; family) = family slope x driver + restricted cubic spline of the driver); "
                    "variance_weighted_effect: the partially linear slope beside it",
        "effect_basis": (f"a slope per genre family (at least {MIN_GROUP_ROWS} tracks and {MIN_GROUP_ARTISTS} "
                         f"artists; the rest pooled) and, in the primary design, a restricted cubic spline with "
                         f"{n_knots} knots at quantiles of the driver; the designs beside it: family slopes only"),
        "heterogeneity": HETEROGENEITY_METHOD + f", {n_bootstrap} draws per repetition",
        "standard_errors": ("clustered by artist (CR2 leverage correction)" if sample.has_artists
                            else "heteroskedasticity-robust, CR2 (no artist id)"),
        "ci": "95%, Student t with the effective number of artists - 1 df (Bell-McCaffrey); simultaneous band: "
              "max-t multiplier bootstrap over artists",
        "multiplicity": "Holm over the drivers of a design; Benjamini-Hochberg over genre and era effects",
        "placebo": f"{n_permutations} within-group shuffles of the driver residual" if refute else "not run",
        "sensitivity": "Cinelli-Hazlett partial R2 and robustness values of the final stage (classical t); bounds "
                       "from benchmarks in the linear fixed-effects analogue" if refute else "not run",
        "set_aside_zero_tracks": set_aside,
        "seconds": round(time.perf_counter() - start, 2),
    }
    return DriverReport(design=primary, design_reason=reason, rows=len(sample),
                        artists=int(len(np.unique(sample.artists))) if sample.has_artists else 0,
                        drivers=tuple(driver_results),
                        designs=tuple(results), warnings=tuple(warnings), info=info,
                        track_effects=_track_effects_frame(primary_run, sample.track_ids))


def _keep_one_source(df: pd.DataFrame, source: str) -> tuple[pd.DataFrame, str | None]:
    """``df`` with the sourced feature values of tracks from another features source emptied (never mixed into
    ``source``'s columns), and the warning that says so (None when every track with features has ``source``)."""
    other = other_source_rows(df, source)
    if not other.any():
        return df, None
    others = feature_source_counts(df[other])
    df = df.copy()
    sourced = set(sourced_feature_columns())
    columns = {c for c in sourced if c in df.columns}
    columns |= {registry.spec(d).column for d in registry.eligible_driver_names()
                if registry.spec(d).canonical in sourced and registry.spec(d).column in df.columns}
    mask = other.to_numpy()
    for column in sorted(columns):
        df[column] = df[column].where(~mask)
    found = ", ".join(f"{n:,} from {registry.source_label(k)}" for k, n in others.items())
    return df, (f"features of {int(mask.sum()):,} tracks left out of the drivers ({found}): one column never mixes "
                f"two sources, and most tracks' features come from {registry.source_label(source)}")


def _driver_column_ok(df: pd.DataFrame, driver: str) -> bool:
    column = registry.spec(driver).column
    if column not in df.columns:
        return False
    values = pd.to_numeric(df[column], errors="coerce")
    return bool(values.notna().sum() >= MIN_DRIVER_VALUES and values.nunique() >= 2)


def _driver_value_counts(df: pd.DataFrame, drivers: list[str]) -> dict[str, int]:
    """Tracks with a value, per driver whose column is in the table."""
    return {d: int(pd.to_numeric(df[registry.spec(d).column], errors="coerce").notna().sum()) for d in drivers
            if registry.spec(d).column in df.columns}


def implied_change(report: DriverReport, changes: dict[str, float], level: float = LEVEL,
                   design: str | None = None, *, at: dict[str, float] | None = None) -> tuple[float, float, float]:
    """Popularity change implied by changing several drivers at once, with a CI: ``(effect, low, high)``.

    Without ``at``: ``sum(effect * change)``, the average effects times the changes; the variance is ``c' V c``
    with the joint covariance of the estimates (they are correlated: energy and loudness move together).

    With ``at`` (the track's current values), a continuous driver of the primary design contributes its
    dose-response curve between ``at[d]`` and ``at[d] + change`` (the average over the design's tracks of
    ``f(new) - f(old)``: a large change of loudness is not one slope times the change); binary drivers and the
    other designs still use their average effect. Each curve difference's standard error comes from its driver's
    coefficient covariance; two drivers' errors are combined with the correlation of their average effects (an
    approximation: the report keeps no cross-driver covariance of the coefficients; exact for one driver).
    A normal quantile gives the interval.

    Raises
    ------
    KeyError
        When a changed driver is not in the report.
    """
    from scipy import stats

    result = report.design_result(design)
    features = list(result.features)
    for name in changes:
        if name not in features:
            raise KeyError(f"no driver '{name}' in this report (have: {', '.join(features)})")
    used = [f for f in features if changes.get(f, 0.0) != 0]
    if not used:
        return 0.0, 0.0, 0.0
    covariance = np.asarray(result.covariance, dtype="float64")
    index = [features.index(f) for f in used]
    sd = np.sqrt(np.clip(np.diag(covariance)[index], 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = covariance[np.ix_(index, index)] / np.outer(sd, sd)
    correlation = np.where(np.isfinite(correlation), correlation, np.eye(len(used)))
    primary = result.name == report.design
    effects, signed_se = [], []
    for f, i in zip(used, index, strict=True):
        change = float(changes[f])
        model = report[f].effect_model if primary and f in report.features else None
        if at is not None and f in at and model is not None and not model.binary and np.isfinite(at[f]):
            start = float(at[f])
            effect, _, _, se = model.interval(model.gradient_average(start, start + change), level)
            effects.append(effect)
            signed_se.append(math.copysign(se, change))
        else:
            effects.append(result.estimates[i].effect * change)
            signed_se.append(math.sqrt(max(covariance[i, i], 0.0)) * change)
    signed = np.array(signed_se)
    var = float(signed @ correlation @ signed)
    effect = float(np.sum(effects))
    half = float(stats.norm.ppf(0.5 + level / 2)) * math.sqrt(max(var, 0.0))
    return effect, effect - half, effect + half
