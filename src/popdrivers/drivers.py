"""Causal drivers of popularity: double/debiased ML within artist, beside the naive across-artist design.

What is estimated
-----------------
For each driver (``features.DRIVERS``) the average effect on popularity points of +1 unit of it, holding the
other track features fixed: the coefficient ``theta`` of the partially linear model
``popularity = theta * driver + g(controls) + artist effect + noise``.

Designs
-------
``within_artist`` (primary)
    Tracks of one artist share voice, fan base and marketing, so they are compared with each other: outcome,
    driver and numeric controls are demeaned within artist (artist fixed effects; genre family and followers
    are constant within an artist and drop out), then double ML partials the controls (the other audio
    features, track age) out of both outcome and driver and regresses residual on residual.
``naive``
    Across artists, on the same rows: double ML with controls = other audio features, track age, log
    followers and genre family, no artist effects. Followers measure an artist's appeal only noisily, so
    styles that go with appeal look like drivers. Shown beside the primary design so the gap is visible.

Double ML details (chosen by the coverage study in ``benchmarks/bench_drivers.py``, see BENCHMARKS.md):

- cross-fitting with folds grouped by artist (no artist in two folds);
- nuisance learner ``"linear+lgbm"``: least squares on the controls, then a small LightGBM on its residuals
  (trees alone approximate the mostly linear within-artist relations coarsely and leave residual
  confounding; the linear start removes that, the trees pick up what is not linear);
- partialling-out score; standard errors clustered by artist, CIs from Student t with (artists - 1) df.

Checks on every estimate (run on a random subset of artists, at most ``refute_rows`` rows):

- subset: the estimate on a random subset of the artists (stable = close to the full estimate);
- random common cause: the same subset with an extra random control (stable = close to the subset estimate);
- placebo: the driver permuted within artist replaces the real one (effect must be near 0), with its p-value;
- sensitivity: Cinelli & Hazlett (2020) robustness value of the final-stage regression (residualised
  outcome on residualised driver): the partial R2 an unobserved confounder would need with both driver and
  outcome to explain the whole estimate away (``robustness_value``) or to make it insignificant at 5%
  (``robustness_value_ci``). Computed from the cluster-robust t statistic (conservative).
- heterogeneity: GATE-style effects by genre family and by release era, from the cross-fitted residuals of
  the main fit restricted to each group, with clustered CIs.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from popdrivers.artifacts import atomic_directory, read_json, verify_manifest, write_json_atomic, write_manifest
from popdrivers.errors import ArtifactError, InputError
from popdrivers.features import DERIVED_COLUMNS, DRIVER_COLUMNS, DRIVER_UNITS, DRIVERS, build_features
from popdrivers.progress import ProgressCallback

DESIGNS = ("within_artist", "naive")
LEARNERS = ("linear+lgbm", "lgbm", "linear")
# A within-artist comparison needs artists with at least two tracks, and enough of them to cluster on.
MIN_ARTISTS = 20
MIN_ROWS = 200
# Heterogeneity is reported only for groups with enough artists and tracks to say something.
MIN_GROUP_ARTISTS = 8
MIN_GROUP_ROWS = 100
ERAS: tuple[tuple[str, float, float], ...] = (
    ("before 2000", -math.inf, 2000), ("2000-2009", 2000, 2010), ("2010-2014", 2010, 2015),
    ("2015-2019", 2015, 2020), ("2020 and later", 2020, math.inf),
)
DRIVERS_JSON = "drivers.json"
REPORT_HTML = "report.html"


@dataclass(frozen=True)
class GenreEffect:
    """Effect of a driver within one genre family (GATE), with its 95% CI and number of tracks."""

    genre: str
    effect: float
    ci_low: float
    ci_high: float
    n: int


@dataclass(frozen=True)
class EraEffect:
    """Effect of a driver among tracks released in one era, with its 95% CI and number of tracks."""

    era: str
    effect: float
    ci_low: float
    ci_high: float
    n: int


@dataclass(frozen=True)
class DriverResult:
    """Everything estimated about one driver: effect, naive comparison, refutations, sensitivity, GATEs.

    ``effect`` is in popularity points per ``unit`` of the driver (primary design of the report). Refutation
    fields are NaN when refutations were not run.
    """

    feature: str
    unit: str
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    se: float
    naive_effect: float
    naive_ci_low: float
    naive_ci_high: float
    naive_se: float
    naive_p_value: float
    placebo_effect: float
    placebo_p: float
    robustness_value: float
    robustness_value_ci: float
    random_common_cause_effect: float
    subset_effect: float
    n: int
    by_genre: tuple[GenreEffect, ...] = ()
    by_era: tuple[EraEffect, ...] = ()

    @property
    def significant(self) -> bool:
        """True when the 95% CI excludes 0."""
        return bool(self.ci_low > 0 or self.ci_high < 0)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["by_genre"] = [asdict(g) for g in self.by_genre]
        out["by_era"] = [asdict(e) for e in self.by_era]
        return {k: _json_number(v) for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriverResult:
        values = {name: data.get(name) for name in cls.__dataclass_fields__ if name not in ("by_genre", "by_era")}
        for name, value in values.items():
            if name not in ("feature", "unit", "n"):
                values[name] = math.nan if value is None else float(value)
        values["n"] = int(values["n"] or 0)
        values["unit"] = values["unit"] or DRIVER_UNITS.get(values["feature"], "")
        return cls(**values,
                   by_genre=tuple(GenreEffect(g["genre"], _f(g["effect"]), _f(g["ci_low"]), _f(g["ci_high"]),
                                              int(g["n"])) for g in data.get("by_genre", [])),
                   by_era=tuple(EraEffect(e["era"], _f(e["effect"]), _f(e["ci_low"]), _f(e["ci_high"]), int(e["n"]))
                                for e in data.get("by_era", [])))


@dataclass(frozen=True)
class DriverReport:
    """The causal-drivers result: design used, sample, one :class:`DriverResult` per driver, warnings, settings."""

    design: str
    rows: int
    artists: int
    drivers: tuple[DriverResult, ...]
    warnings: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, feature: str) -> DriverResult:
        for result in self.drivers:
            if result.feature == feature:
                return result
        raise KeyError(f"no driver '{feature}' in this report (have: {', '.join(self.features)})")

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(r.feature for r in self.drivers)

    def to_frame(self) -> pd.DataFrame:
        """One row per driver with the scalar fields (no by-group effects)."""
        return pd.DataFrame([{k: v for k, v in asdict(r).items() if k not in ("by_genre", "by_era")}
                             for r in self.drivers])

    def to_dict(self) -> dict[str, Any]:
        """The ``drivers.json`` schema: design, rows, artists, drivers[...] plus warnings and info."""
        return {"design": self.design, "rows": int(self.rows), "artists": int(self.artists),
                "drivers": [r.to_dict() for r in self.drivers], "warnings": list(self.warnings),
                "info": _jsonable(self.info)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriverReport:
        return cls(design=str(data["design"]), rows=int(data["rows"]), artists=int(data["artists"]),
                   drivers=tuple(DriverResult.from_dict(d) for d in data["drivers"]),
                   warnings=tuple(data.get("warnings", ())), info=dict(data.get("info", {})))


def _f(value: Any) -> float:
    return math.nan if value is None else float(value)


def _json_number(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else float(value)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    return _json_number(value)


# ----------------------------------------------------------------------------------------------------------
# Cross-fitting machinery


def artist_grouped_folds(groups: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold number of each row such that all rows of one group (artist) share a fold.

    Groups are shuffled and dealt round-robin ordered by size, so folds have similar numbers of rows.
    """
    codes, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(codes))
    order = order[np.argsort(-sizes[order], kind="stable")]
    fold_of_group = np.empty(len(codes), dtype=np.int64)
    load = np.zeros(n_folds)
    for g in order:  # greedy: next largest group goes to the lightest fold
        k = int(np.argmin(load))
        fold_of_group[g] = k
        load[k] += sizes[g]
    return fold_of_group[inverse]


@dataclass(frozen=True)
class _Learner:
    kind: str
    n_estimators: int
    num_leaves: int
    learning_rate: float
    max_fit_rows: int | None
    seed: int

    def fit_predict(self, x_train: np.ndarray, targets: list[np.ndarray], x_test: np.ndarray) -> list[np.ndarray]:
        """Fit one nuisance model per target on ``x_train`` and predict each on ``x_test``.

        The targets share the binned LightGBM dataset (binning is a large part of a small fit's cost).
        """
        if self.max_fit_rows is not None and len(x_train) > self.max_fit_rows:
            keep = np.random.default_rng(self.seed).choice(len(x_train), self.max_fit_rows, replace=False)
            x_train, targets = x_train[keep], [t[keep] for t in targets]
        base_test = [np.zeros(len(x_test)) for _ in targets]
        residual_targets = list(targets)
        if self.kind in ("linear", "linear+lgbm"):
            design = np.column_stack([np.ones(len(x_train)), x_train])
            gram = design.T @ design
            # A tiny ridge keeps the solve stable when a control is constant within the training folds.
            gram[np.diag_indices_from(gram)] += 1e-8 * max(float(np.trace(gram)) / len(gram), 1.0)
            coef = np.linalg.solve(gram, design.T @ np.column_stack(targets))
            residual_targets = [targets[i] - design @ coef[:, i] for i in range(len(targets))]
            base_test = [coef[0, i] + x_test @ coef[1:, i] for i in range(len(targets))]
            if self.kind == "linear":
                return base_test
        import lightgbm as lgb

        # num_threads=1: parallelism comes from fitting folds side by side (OpenMP inside each fit spins
        # badly when the machine is shared).
        params = {"objective": "regression", "num_leaves": self.num_leaves, "learning_rate": self.learning_rate,
                  "min_data_in_leaf": 40, "bagging_fraction": 0.8, "bagging_freq": 1, "feature_fraction": 0.8,
                  "num_threads": 1, "seed": self.seed, "verbose": -1, "deterministic": True}
        dataset = lgb.Dataset(x_train, label=residual_targets[0], params={"max_bin": 63, "verbose": -1},
                              free_raw_data=False).construct()
        out = []
        for i, target in enumerate(residual_targets):
            if i:
                dataset.set_label(target)
            booster = lgb.train(params, dataset, num_boost_round=self.n_estimators)
            out.append(base_test[i] + booster.predict(x_test))
        return out


def _cross_fit(x: np.ndarray, targets: list[np.ndarray], folds: np.ndarray, learner: _Learner,
               n_jobs: int) -> list[np.ndarray]:
    """Out-of-fold residuals ``target - E[target | x]`` of each target (nuisances fit on the other folds)."""
    n_folds = int(folds.max()) + 1
    fold_rows = [np.flatnonzero(folds == k) for k in range(n_folds)]
    train_rows = [np.flatnonzero(folds != k) for k in range(n_folds)]

    def run(k: int) -> list[np.ndarray]:
        return learner.fit_predict(x[train_rows[k]], [t[train_rows[k]] for t in targets], x[fold_rows[k]])

    if n_jobs > 1:
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            predictions = list(pool.map(run, range(n_folds)))
    else:
        predictions = [run(k) for k in range(n_folds)]
    residuals = [np.asarray(t, dtype=float).copy() for t in targets]
    for k, preds in enumerate(predictions):
        for t, pred in enumerate(preds):
            residuals[t][fold_rows[k]] -= pred
    return residuals


@dataclass(frozen=True)
class _Fit:
    effect: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    t: float
    n: int
    clusters: int


def _final_stage(y_res: np.ndarray, d_res: np.ndarray, clusters: np.ndarray, level: float = 0.95) -> _Fit:
    """Partialling-out estimate ``sum(d y) / sum(d d)`` with a cluster-robust SE (small-sample corrected)."""
    n = len(y_res)
    denom = float(d_res @ d_res)
    if n < 3 or denom <= 1e-12:
        return _Fit(math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, n, 0)
    theta = float(d_res @ y_res) / denom
    psi = (y_res - theta * d_res) * d_res
    _, codes = np.unique(clusters, return_inverse=True)
    g = int(codes.max()) + 1
    per_cluster = np.bincount(codes, weights=psi, minlength=g)
    correction = g / (g - 1) if g > 1 else 1.0
    var = correction * float(per_cluster @ per_cluster) / denom**2
    se = math.sqrt(var) if var > 0 else math.nan
    df = max(g - 1, 1)
    t = theta / se if se and np.isfinite(se) else math.nan
    q = float(stats.t.ppf(0.5 + level / 2, df))
    p = float(2 * stats.t.sf(abs(t), df)) if np.isfinite(t) else math.nan
    return _Fit(theta, se, theta - q * se, theta + q * se, p, t, n, g)


def robustness_values(t: float, dof: int, alpha: float = 0.05) -> tuple[float, float]:
    """Cinelli-Hazlett robustness values ``(RV_q=1, RV_q=1,alpha)`` from a t statistic and residual dof.

    ``RV`` is the partial R2 with both driver and outcome that an unobserved confounder needs to bring the
    estimate to 0; ``RV_alpha`` to make its (1 - alpha) CI include 0.
    """
    if not np.isfinite(t) or dof < 2:
        return math.nan, math.nan
    f = abs(t) / math.sqrt(dof)
    rv = 0.5 * (math.sqrt(f**4 + 4 * f**2) - f**2)
    f_alpha = f - float(stats.t.ppf(1 - alpha / 2, dof - 1)) / math.sqrt(dof - 1)
    rv_alpha = 0.0 if f_alpha <= 0 else 0.5 * (math.sqrt(f_alpha**4 + 4 * f_alpha**2) - f_alpha**2)
    return rv, rv_alpha


# ----------------------------------------------------------------------------------------------------------
# Data preparation


@dataclass
class _Data:
    y: np.ndarray
    treatments: dict[str, np.ndarray]        # driver -> values (raw)
    controls: np.ndarray                     # numeric non-driver controls (raw)
    control_names: list[str]
    naive_extra: np.ndarray                  # followers / genre dummies, naive design only
    naive_extra_names: list[str]
    artists: np.ndarray                      # cluster (artist) code per row
    family: np.ndarray                       # genre family per row (str)
    era: np.ndarray                          # release era per row (str or "")


def _present_drivers(df: pd.DataFrame, requested: list[str] | None) -> tuple[list[str], list[str]]:
    """Drivers to estimate, and the reasons some defaults were skipped."""
    def usable(name: str) -> str | None:
        column = DRIVER_COLUMNS[name]
        if column not in df.columns:
            return f"no '{column}' column"
        values = pd.to_numeric(df[column], errors="coerce").astype("float64")
        if values.notna().sum() < MIN_ROWS:
            return f"'{column}' is known for only {int(values.notna().sum())} tracks"
        if values.nunique() < 2:
            return f"'{column}' does not vary"
        return None

    if requested is None:
        chosen, skipped = [], []
        for name in DRIVERS:
            reason = usable(name)
            (skipped.append(f"driver '{name}' skipped: {reason}") if reason else chosen.append(name))
        if not chosen:
            raise InputError("no driver can be estimated: the table has none of the audio feature columns "
                             f"({', '.join(DRIVERS)}) with variation")
        return chosen, skipped
    unknown = [d for d in requested if d not in DRIVERS]
    if unknown:
        raise InputError(f"unknown driver(s) {', '.join(unknown)}: choose from {', '.join(DRIVERS)}")
    problems = [f"{d} ({reason})" for d in requested if (reason := usable(d))]
    if problems:
        raise InputError(f"cannot estimate driver(s) {'; '.join(problems)} from this table: drop them from --drivers")
    return list(dict.fromkeys(requested)), []


def _era_labels(years: pd.Series) -> np.ndarray:
    out = np.full(len(years), "", dtype=object)
    values = years.to_numpy(dtype="float64", na_value=np.nan)
    for label, lo, hi in ERAS:
        out[(values >= lo) & (values < hi)] = label
    return out


def _prepare(df: pd.DataFrame, drivers: list[str], warnings: list[str]) -> _Data:
    y = df["popularity"].to_numpy(dtype="float64", na_value=np.nan)
    treatments = {d: df[DRIVER_COLUMNS[d]].to_numpy(dtype="float64", na_value=np.nan) for d in drivers}
    # Controls beyond the drivers themselves: track age (linear and log, since popularity decays fast at first).
    controls, names = [], []
    if "track_age_days" in df.columns and df["track_age_days"].notna().any():
        age_years = df["track_age_days"].to_numpy(dtype="float64", na_value=np.nan) / 365.25
        controls += [age_years, np.log1p(age_years)]
        names += ["age_years", "log1p_age_years"]
    else:
        warnings.append("no release dates: track age is not controlled for")
    extra, extra_names = [], []
    if "log_followers" in df.columns and df["log_followers"].notna().any():
        followers = df["log_followers"].to_numpy(dtype="float64", na_value=np.nan)
        missing = ~np.isfinite(followers)
        # Unknown followers (e.g. a featured artist missing from the crawl) get the median plus a flag,
        # rather than dropping the track from both designs.
        extra.append(np.where(missing, np.nanmedian(followers), followers))
        extra_names.append("log_followers")
        if missing.any():
            extra.append(missing.astype("float64"))
            extra_names.append("log_followers_missing")
    else:
        warnings.append("no artist followers: the naive design cannot control for artist reach")
    family = (df["genre_family"].astype(object).fillna("unknown").to_numpy(dtype=object)
              if "genre_family" in df.columns else np.full(len(df), "unknown", dtype=object))
    present_families = [f for f in pd.unique(family) if f != "unknown"]
    for fam in sorted(present_families)[1:]:  # one-hot, first family as reference
        extra.append((family == fam).astype("float64"))
        extra_names.append(f"genre={fam}")
    # Integer codes: clusters are grouped thousands of times, and sorting strings is slow.
    artists = (pd.factorize(df["artist_id"], use_na_sentinel=True)[0] if "artist_id" in df.columns
               else np.arange(len(df)))
    era = _era_labels(df["release_year"]) if "release_year" in df.columns else np.full(len(df), "", dtype=object)
    return _Data(y=y, treatments=treatments,
                 controls=np.column_stack(controls) if controls else np.empty((len(df), 0)), control_names=names,
                 naive_extra=np.column_stack(extra) if extra else np.empty((len(df), 0)), naive_extra_names=extra_names,
                 artists=artists, family=family, era=era)


def _demean(values: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Subtract each artist's mean (column-wise for 2-D input)."""
    if values.ndim == 1:
        return values - (np.bincount(codes, weights=values) / counts)[codes]
    return np.column_stack([_demean(values[:, j], codes, counts) for j in range(values.shape[1])]) \
        if values.shape[1] else values


# ----------------------------------------------------------------------------------------------------------
# Estimation


@dataclass(frozen=True)
class _Design:
    """Matrices of one design, ready for cross-fitting: outcome, treatments and controls."""

    name: str
    y: np.ndarray
    treatments: dict[str, np.ndarray]
    controls: np.ndarray        # non-driver controls
    clusters: np.ndarray
    folds: np.ndarray

    def x_for(self, driver: str, extra: np.ndarray | None = None) -> np.ndarray:
        others = [self.treatments[d] for d in self.treatments if d != driver]
        parts = [np.column_stack(others)] if others else []
        parts.append(self.controls)
        if extra is not None:
            parts.append(extra[:, None] if extra.ndim == 1 else extra)
        return np.column_stack(parts).astype("float64")


def _build_design(name: str, data: _Data, rows: np.ndarray, n_folds: int, seed: int) -> _Design:
    y = data.y[rows]
    treatments = {d: v[rows] for d, v in data.treatments.items()}
    clusters = data.artists[rows]
    controls = data.controls[rows]
    if name == "within_artist":
        _, codes, counts = np.unique(clusters, return_inverse=True, return_counts=True)
        counts = counts.astype("float64")
        y = _demean(y, codes, counts)
        treatments = {d: _demean(v, codes, counts) for d, v in treatments.items()}
        controls = _demean(controls, codes, counts)
    else:
        controls = np.column_stack([controls, data.naive_extra[rows]]) if data.naive_extra.shape[1] else controls
    folds = artist_grouped_folds(clusters, n_folds, seed)
    return _Design(name, y, treatments, controls, clusters, folds)


def _estimate(design: _Design, driver: str, learner: _Learner, n_jobs: int, *, extra: np.ndarray | None = None,
              treatment: np.ndarray | None = None) -> tuple[_Fit, np.ndarray, np.ndarray]:
    """Double ML for one driver in one design: returns the fit and the outcome/driver residuals."""
    x = design.x_for(driver, extra)
    d = design.treatments[driver] if treatment is None else treatment
    y_res, d_res = _cross_fit(x, [design.y, d], design.folds, learner, n_jobs)
    return _final_stage(y_res, d_res, design.clusters), y_res, d_res


def _group_effects(y_res: np.ndarray, d_res: np.ndarray, clusters: np.ndarray, labels: np.ndarray,
                   skip: tuple[str, ...] = ("", "unknown")) -> list[tuple[str, _Fit]]:
    out = []
    for label in sorted(pd.unique(labels)):
        if label in skip:
            continue
        mask = labels == label
        if mask.sum() < MIN_GROUP_ROWS or len(pd.unique(clusters[mask])) < MIN_GROUP_ARTISTS:
            continue
        fit = _final_stage(y_res[mask], d_res[mask], clusters[mask])
        if np.isfinite(fit.effect):
            out.append((str(label), fit))
    return out


def _permute_within(values: np.ndarray, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shuffle ``values`` among the rows of each group (the placebo treatment)."""
    order = np.lexsort((rng.random(len(values)), groups))          # rows grouped, random order inside
    sorted_rows = np.argsort(groups, kind="stable")                # rows grouped, original order inside
    out = np.empty_like(values)
    out[sorted_rows] = values[order]
    return out


def _single_threaded_blas(func: Callable[..., DriverReport]) -> Callable[..., DriverReport]:
    """Run ``func`` with BLAS on one thread: nuisance fits run side by side on threads, and a multi-threaded
    BLAS inside each of them oversubscribes the cores (measured: 100x slower on a shared 2-core machine)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> DriverReport:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return func(*args, **kwargs)

    return wrapper


@_single_threaded_blas
def estimate_drivers(
    tracks: pd.DataFrame,
    drivers: list[str] | tuple[str, ...] | None = None,
    *,
    design: str = "within_artist",
    n_folds: int = 5,
    seed: int = 0,
    max_rows: int | None = None,
    refute: bool = True,
    by_genre: bool = True,
    progress: ProgressCallback | None = None,
    learner: str = "linear+lgbm",
    n_estimators: int = 60,
    num_leaves: int = 15,
    learning_rate: float = 0.1,
    max_fit_rows: int | None = 30_000,
    refute_rows: int = 12_000,
    refute_folds: int = 3,
    n_jobs: int = 2,
) -> DriverReport:
    """Estimate the causal effect of each driver on popularity (within artist) beside the naive design.

    Parameters
    ----------
    tracks
        A canonical track table (``schema.validate`` output); derived columns are added if missing.
    drivers
        Names from ``features.DRIVERS``; default: every driver present with variation.
    design
        ``"within_artist"`` (primary; falls back to ``"naive"`` with a warning when the table has no
        ``artist_id`` or too few artists with two or more tracks) or ``"naive"``.
    n_folds
        Cross-fitting folds, grouped by artist.
    seed
        Seeds folds, subsamples, permutations and LightGBM.
    max_rows
        Use a random subset of whole artists with at most this many tracks (said in ``warnings``).
    refute
        Run the subset, random-common-cause and placebo checks (on at most ``refute_rows`` rows).
    by_genre
        Report effects by genre family and release era.
    progress
        Called as ``progress(done, total, driver)`` after each driver.
    learner
        Nuisance learner: ``"linear+lgbm"`` (default, see module docstring), ``"lgbm"`` or ``"linear"``.
    n_estimators, num_leaves, learning_rate
        LightGBM nuisance settings.
    max_fit_rows
        Each nuisance model is trained on at most this many rows of its training folds (predictions are
        still made for every row); said in ``warnings`` when it applies.
    refute_rows, refute_folds
        Size of the artist subset and folds the refutations run on.
    n_jobs
        Nuisance fits run side by side on this many threads.

    Returns
    -------
    DriverReport
    """
    start = time.perf_counter()
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {', '.join(DESIGNS)}, got '{design}'")
    if learner not in LEARNERS:
        raise ValueError(f"learner must be one of {', '.join(LEARNERS)}, got '{learner}'")
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    if "popularity" not in tracks.columns:
        raise InputError("the table has no 'popularity' column: causal drivers need the outcome")
    warnings: list[str] = []
    df = tracks if all(c in tracks.columns for c in ("duration_min", "genre_family")) and \
        any(c in tracks.columns for c in DERIVED_COLUMNS) else build_features(tracks)
    chosen, skipped = _present_drivers(df, list(drivers) if drivers is not None else None)
    warnings += skipped
    rng = np.random.default_rng(seed)

    has_artists = "artist_id" in df.columns and df["artist_id"].notna().any()
    if max_rows is not None and len(df) > max_rows:
        if has_artists:
            sizes = df.groupby("artist_id", observed=True, dropna=False).size()
            shuffled = sizes.sample(frac=1.0, random_state=seed)
            keep = shuffled.index[shuffled.cumsum().to_numpy() <= max_rows]
            if len(keep) == 0:
                keep = shuffled.index[:1]
            df = df[df["artist_id"].isin(keep)]
        else:
            df = df.sample(n=max_rows, random_state=seed)
        warnings.append(f"max_rows={max_rows:,}: estimated on a random subset of {len(df):,} of "
                        f"{len(tracks):,} tracks (whole artists)")

    data = _prepare(df, chosen, warnings)
    complete = np.isfinite(data.y) & np.all(np.isfinite(np.column_stack(list(data.treatments.values()))), axis=1)
    if data.controls.shape[1]:
        complete &= np.all(np.isfinite(data.controls), axis=1)
    if data.naive_extra.shape[1]:
        complete &= np.all(np.isfinite(data.naive_extra), axis=1)
    if has_artists:
        complete &= pd.notna(df["artist_id"]).to_numpy()
    if (~complete).sum():
        warnings.append(f"{int((~complete).sum()):,} of {len(complete):,} tracks dropped: missing popularity, "
                        "artist or a feature used")

    used_design = design
    rows = np.flatnonzero(complete)
    if design == "within_artist":
        if not has_artists:
            warnings.append("no artist_id in the table: cannot compare tracks of the same artist; fell back to the "
                            "naive across-artist design, which is biased wherever an artist's style goes with their "
                            "appeal (read its effects as associations)")
            used_design = "naive"
        else:
            counts = pd.Series(data.artists[rows]).map(pd.Series(data.artists[rows]).value_counts()).to_numpy()
            multi = rows[counts >= 2]
            n_multi = len(pd.unique(data.artists[multi])) if len(multi) else 0
            if n_multi < MIN_ARTISTS or len(multi) < MIN_ROWS:
                warnings.append(f"only {n_multi} artists have two or more tracks ({len(multi)} tracks): too few to "
                                "compare tracks within artist; fell back to the naive across-artist design "
                                "(read its effects as associations)")
                used_design = "naive"
            else:
                if len(multi) < len(rows):
                    warnings.append(f"{len(rows) - len(multi):,} tracks of artists with a single track dropped: "
                                    "they carry no within-artist comparison")
                rows = multi
    if not has_artists:
        data.artists = np.arange(len(data.y))  # each track its own cluster

    learner_obj = _Learner(learner, n_estimators, num_leaves, learning_rate, max_fit_rows, seed)
    n_fold_train = len(rows) * (n_folds - 1) / n_folds
    if max_fit_rows is not None and n_fold_train > max_fit_rows:
        warnings.append(f"nuisance models trained on a random {max_fit_rows:,} of ~{int(n_fold_train):,} rows per "
                        "fold (max_fit_rows) to bound the time; residuals are still computed for every track")
    primary = _build_design(used_design, data, rows, n_folds, seed)
    naive = primary if used_design == "naive" else _build_design("naive", data, rows, n_folds, seed)

    # Refutations run on one random subset of artists shared by all drivers.
    artists_all = pd.unique(data.artists[rows])
    # 70% of the artists, or fewer on large tables (then the subset check is about sampling, not robustness).
    refute_fraction = min(0.7, refute_rows / max(len(rows), 1))
    sub_artists = rng.choice(artists_all, size=max(int(round(refute_fraction * len(artists_all))), 2), replace=False)
    sub_rows = rows[np.isin(data.artists[rows], sub_artists)]
    sub_design = _build_design(used_design, data, sub_rows, refute_folds, seed + 1) if refute else None
    refute_learner = _Learner(learner, n_estimators, num_leaves, learning_rate, max_fit_rows, seed + 1)

    results = []
    total = len(chosen)
    if progress:
        progress(0, total, "starting")
    for i, driver in enumerate(chosen):
        fit, y_res, d_res = _estimate(primary, driver, learner_obj, n_jobs)
        naive_fit = fit if naive is primary else _estimate(naive, driver, learner_obj, n_jobs)[0]
        dof = (len(rows) - len(artists_all) - 1) if used_design == "within_artist" else len(rows) - 2
        rv, rv_ci = robustness_values(fit.t, dof)
        placebo = rcc = subset = _Fit(*([math.nan] * 6), 0, 0)
        if refute and sub_design is not None:
            permuted = _permute_within(data.treatments[driver][sub_rows], data.artists[sub_rows],
                                       np.random.default_rng(seed + 1000 + i))
            if used_design == "within_artist":
                _, codes, counts = np.unique(data.artists[sub_rows], return_inverse=True, return_counts=True)
                permuted = _demean(permuted, codes, counts.astype("float64"))
            # Subset estimate and placebo share the subset's outcome nuisance (it does not involve the driver).
            y_sub, d_sub, d_placebo = _cross_fit(sub_design.x_for(driver),
                                                 [sub_design.y, sub_design.treatments[driver], permuted],
                                                 sub_design.folds, refute_learner, n_jobs)
            subset = _final_stage(y_sub, d_sub, sub_design.clusters)
            placebo = _final_stage(y_sub, d_placebo, sub_design.clusters)
            noise = np.random.default_rng(seed + 2 + i).normal(size=len(sub_design.y))
            rcc = _estimate(sub_design, driver, refute_learner, n_jobs, extra=noise)[0]
        genre_effects: tuple[GenreEffect, ...] = ()
        era_effects: tuple[EraEffect, ...] = ()
        if by_genre:
            genre_effects = tuple(GenreEffect(g, f.effect, f.ci_low, f.ci_high, f.n) for g, f in
                                  _group_effects(y_res, d_res, primary.clusters, data.family[rows]))
            era_effects = tuple(EraEffect(e, f.effect, f.ci_low, f.ci_high, f.n) for e, f in
                                _group_effects(y_res, d_res, primary.clusters, data.era[rows]))
        results.append(DriverResult(
            feature=driver, unit=DRIVER_UNITS[driver], effect=fit.effect, ci_low=fit.ci_low, ci_high=fit.ci_high,
            p_value=fit.p_value, se=fit.se, naive_effect=naive_fit.effect, naive_ci_low=naive_fit.ci_low,
            naive_ci_high=naive_fit.ci_high, naive_se=naive_fit.se, naive_p_value=naive_fit.p_value,
            placebo_effect=placebo.effect, placebo_p=placebo.p_value, robustness_value=rv, robustness_value_ci=rv_ci,
            random_common_cause_effect=rcc.effect, subset_effect=subset.effect, n=fit.n,
            by_genre=genre_effects, by_era=era_effects))
        if progress:
            progress(i + 1, total, driver)

    info = {
        "learner": learner, "score": "partialling-out", "n_folds": n_folds, "seed": seed,
        "n_estimators": n_estimators, "num_leaves": num_leaves, "learning_rate": learning_rate,
        "max_fit_rows": max_fit_rows, "controls": ["other drivers", *data.control_names]
        + ([] if used_design == "within_artist" else data.naive_extra_names),
        "naive_controls": ["other drivers", *data.control_names, *data.naive_extra_names],
        "standard_errors": "clustered by artist" if has_artists else "heteroskedasticity-robust (no artist id)",
        "ci": "95%, Student t with (clusters - 1) df",
        "sensitivity": "Cinelli-Hazlett robustness value of the final-stage regression (cluster-robust t)",
        "refutation_rows": int(len(sub_rows)) if refute else 0, "refutation_folds": refute_folds if refute else 0,
        "refutation_subset_fraction": float(len(sub_rows) / max(len(rows), 1)) if refute else 0.0,
        "requested_design": design, "seconds": round(time.perf_counter() - start, 2),
    }
    return DriverReport(design=used_design, rows=int(len(rows)), artists=int(len(artists_all)),
                        drivers=tuple(results), warnings=tuple(warnings), info=info)


def implied_change(report: DriverReport, changes: dict[str, float], level: float = 0.95) -> tuple[float, float, float]:
    """Popularity change implied by changing several drivers at once: ``sum(effect * change)`` with a CI.

    The estimates of different drivers are treated as independent (their covariance is not estimated),
    so the variance is ``sum((se * change)^2)``; a normal quantile gives the interval.

    Raises
    ------
    KeyError
        When a changed driver is not in the report.
    """
    effect, var = 0.0, 0.0
    for name, change in changes.items():
        if change == 0:
            continue
        result = report[name]
        effect += result.effect * change
        var += (result.se * change) ** 2
    q = float(stats.norm.ppf(0.5 + level / 2))
    half = q * math.sqrt(var)
    return effect, effect - half, effect + half


# ----------------------------------------------------------------------------------------------------------
# Artifacts


def save_drivers(report: DriverReport, out_dir: str | Path, *, importance: pd.DataFrame | None = None,
                 data_source: str | None = None, truth: dict[str, float] | None = None) -> Path:
    """Write ``drivers.json``, ``report.html`` (and ``importance.csv`` if given) and a manifest, atomically."""
    from popdrivers.report import drivers_report_html

    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        write_json_atomic(tmp / DRIVERS_JSON, report.to_dict())
        (tmp / REPORT_HTML).write_text(drivers_report_html(report, importance=importance, truth=truth),
                                       encoding="utf-8")
        if importance is not None:
            importance.to_csv(tmp / "importance.csv", index=False)
        write_manifest(tmp, kind="drivers", design=report.design, rows=report.rows, artists=report.artists,
                       data_source=data_source, drivers=list(report.features))
    return out_dir


def load_drivers(path: str | Path) -> DriverReport:
    """Load a drivers folder written by :func:`save_drivers`, refusing it if any file fails its checksum."""
    path = Path(path)
    verify_manifest(path, kind="drivers")
    data = read_json(path / DRIVERS_JSON)
    try:
        return DriverReport.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{path / DRIVERS_JSON} does not follow the drivers schema ({exc}); rebuild it with "
                            "popdrivers drivers") from exc


def load_importance(path: str | Path) -> pd.DataFrame | None:
    """The SHAP importance table saved beside a drivers report, if any (call after :func:`load_drivers`)."""
    file = Path(path) / "importance.csv"
    return pd.read_csv(file) if file.is_file() else None
