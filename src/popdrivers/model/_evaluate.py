"""Honest evaluation: held-out error on three splits against baselines, and the interval's empirical coverage.

The splits share their fits. ``random`` (tracks held out at random) and ``by_artist`` (whole artists held out)
come from the same K mixed folds (:func:`popdrivers.model._splits.mixed_folds`): fold k holds out every track
of one K-th of the artists (the unseen-artist test) and a random sample of the other artists' tracks (the
random-track test), so one fit per fold measures both. Each fold's 80% interval is calibrated, cross-conformal,
on the residuals of the *other* folds (never its own tracks), so coverage is measured on tracks the interval
never saw. ``by_time`` trains on the older 80% of releases and tests on the newest 20%, with an interval
calibrated inside the older part. The pooled residuals of the K folds are exactly the out-of-fold residuals
the final model's own ``"cross"`` calibration would refit for, so :func:`popdrivers.model.train` reuses them.

Big tables are evaluated on a fixed sample of whole artists (``max_rows``), said in the metrics.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from popdrivers import features, schema
from popdrivers.features import ARTIST_RECORD, CATEGORICAL_FEATURES
from popdrivers.model._card import split_label
from popdrivers.model._conformal import Interval, Residuals
from popdrivers.model._estimator import PopularityModel
from popdrivers.model._parallel import run_parallel
from popdrivers.model._splits import (
    DEFAULT_FOLDS,
    MIN_FIT_ROWS,
    SplitUnavailable,
    artist_groups,
    artist_sample,
    mixed_folds,
    time_split,
)
from popdrivers.progress import ProgressCallback, null_progress

TARGET = schema.TARGET
# Tables above this many tracks are evaluated on a sample of whole artists of about this size: the error and
# coverage estimates are then already precise to a fraction of a point (50,000 tracks held out by artist, 10,000
# at random), and the fits stay seconds long.
EVALUATION_ROWS = 50_000
SPLITS = ("random", "by_artist", "by_time")


# --------------------------------------------------------------------------------------------------------
# Metrics and baselines


def scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² of ``pred`` against ``y`` (scikit-learn's metrics)."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {"rmse": float(np.sqrt(mean_squared_error(y, pred))), "mae": float(mean_absolute_error(y, pred)),
            "r2": float(r2_score(y, pred))}


def baseline_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """Design frame for the scikit-learn baselines: categories as strings with 'missing' for unknown."""
    out = frame.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.CategoricalDtype):
            out[name] = out[name].astype(object).where(out[name].notna(), "missing").astype(str)
    return out


def _preprocessor(frame: pd.DataFrame):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    categorical = [c for c in frame.columns if c in CATEGORICAL_FEATURES]
    numeric = [c for c in frame.columns if c not in CATEGORICAL_FEATURES]
    return ColumnTransformer([
        ("categories", OneHotEncoder(handle_unknown="ignore"), categorical),
        ("numbers", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()),
         numeric),
    ])


def linear_baseline(frame: pd.DataFrame):
    """Ordinary least squares on the model's features (imputed, scaled, categories one-hot)."""
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline

    return Pipeline([("prep", _preprocessor(frame)), ("ols", LinearRegression())])


def linear_predictions(train_frame: pd.DataFrame, y: np.ndarray, test_frame: pd.DataFrame) -> np.ndarray:
    """The linear baseline, routed like the model: with the track record for known artists, without it for new.

    (One regression with an imputed record would put every new artist at the median record: a poor baseline.)
    """
    without = train_frame.drop(columns=[ARTIST_RECORD], errors="ignore")
    pred = linear_baseline(without).fit(without, y).predict(test_frame[list(without.columns)])
    if ARTIST_RECORD in train_frame.columns:
        known_train = train_frame[ARTIST_RECORD].notna().to_numpy()
        known_test = test_frame[ARTIST_RECORD].notna().to_numpy()
        if known_train.sum() > 10 and known_test.any():
            with_record = linear_baseline(train_frame).fit(train_frame[known_train], y[known_train])
            pred[known_test] = with_record.predict(test_frame[known_test])
    return np.clip(pred, 0.0, 100.0)


def reference_rf(frame: pd.DataFrame, *, n_estimators: int = 700, n_jobs: int = 2, random_state: int = 0):
    """The original project's configuration: key one-hot + standard scaling + RandomForest.

    700 trees, max_depth 30, min_samples_leaf 3, min_samples_split 5 (``n_estimators`` is overridable for
    tests only). It gets the model's features except the artist track record, which the original lacked.
    """
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.pipeline import Pipeline

    forest = RandomForestRegressor(n_estimators=n_estimators, max_depth=30, min_samples_leaf=3,
                                   min_samples_split=5, n_jobs=n_jobs, random_state=random_state)
    return Pipeline([("prep", _preprocessor(frame)), ("forest", forest)])


def reference_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The reference RF's inputs: the design frame without the artist track record."""
    return frame.drop(columns=[ARTIST_RECORD], errors="ignore")


# --------------------------------------------------------------------------------------------------------
# How much to evaluate when the time is short

# The smallest evaluation a budget can shrink to: 2 mixed folds on a sample of about this many tracks.
MIN_PLAN_ROWS = 2_000
# The time split's refit (its interval calibrated inside the older tracks by one refit) costs this share of a
# fit on every track on top of its own fit on the older 80%.
TIME_REFIT_SHARE = 0.71


@dataclass(frozen=True)
class EvaluationPlan:
    """How much :func:`run_evaluation` does: mixed folds, rows (a sample of whole artists above), and how the
    newest-releases interval is calibrated ("holdout_refit": one refit; "split": none, cheaper). ``note`` says
    what a small budget cut (None: the full evaluation)."""

    n_splits: int = DEFAULT_FOLDS
    max_rows: int = EVALUATION_ROWS
    time_calibration: str = "holdout_refit"
    note: str | None = None

    def jobs(self) -> list[float]:
        """Each held-out fit's training rows, as a share of the table (mixed folds, then the time split)."""
        k = self.n_splits
        jobs = [1.0 - (1.0 + 1.0 / max(k, 5)) / k] * k
        jobs.append(0.8 + (TIME_REFIT_SHARE if self.time_calibration == "holdout_refit" else 0.0))
        return jobs

    def seconds(self, rows: int, fit_seconds: float, round_seconds: float, workers: int) -> float:
        """Expected seconds: ``fit_seconds`` per held-out fit on all ``rows`` (scaled by its rows), fits side by
        side on ``workers``, plus ``round_seconds`` per round of side-by-side fits (what does not scale with rows:
        LightGBM's per-tree work, feature building, the baselines)."""
        share = min(rows, self.max_rows) / max(rows, 1)
        jobs = self.jobs()
        workers = max(workers, 1)
        units = max(sum(jobs) / workers, max(jobs)) if len(jobs) > workers else max(jobs)
        return share * units * fit_seconds + math.ceil(len(jobs) / workers) * round_seconds


def plan_evaluation(rows: int, seconds: float, fit_seconds: float, *, round_seconds: float = 0.0,
                    workers: int = 2, n_splits: int = DEFAULT_FOLDS, max_rows: int = EVALUATION_ROWS) -> EvaluationPlan:
    """The fullest evaluation expected to take at most ``seconds`` (see :meth:`EvaluationPlan.seconds`):
    ``n_splits`` folds; then 3 and 2 folds; the newest-releases interval without its refit; then a sample of
    whole artists (at least :data:`MIN_PLAN_ROWS` tracks). The plan's ``note`` says what was cut."""
    full = EvaluationPlan(n_splits, max_rows)

    def cost(plan: EvaluationPlan) -> float:
        return plan.seconds(rows, fit_seconds, round_seconds, workers)

    if fit_seconds <= 0 or cost(full) <= seconds:
        return full
    candidates = [EvaluationPlan(k, max_rows, calibration) for k, calibration in
                  ((3, "holdout_refit"), (3, "split"), (2, "split")) if k < n_splits]
    for plan in candidates:
        if cost(plan) <= seconds:
            return _with_note(plan, full, rows)
    smallest = EvaluationPlan(2, max_rows, "split")
    fixed = cost(dataclasses.replace(smallest, max_rows=0))
    share = (seconds - fixed) / max(cost(smallest) - fixed, 1e-9)
    sampled = int(min(rows, max_rows) * max(share, 0.0))
    if sampled < min(rows, max_rows):
        smallest = EvaluationPlan(2, max(MIN_PLAN_ROWS, sampled), "split")
    return _with_note(smallest, full, rows)


def _with_note(plan: EvaluationPlan, full: EvaluationPlan, rows: int) -> EvaluationPlan:
    cuts = []
    if plan.n_splits < full.n_splits:
        cuts.append(f"{plan.n_splits} mixed folds instead of {full.n_splits}")
    if plan.time_calibration != full.time_calibration:
        cuts.append("the newest-releases interval from one held-out part of the older tracks (no refit)")
    if plan.max_rows < min(rows, full.max_rows):
        cuts.append(f"a sample of whole artists of about {plan.max_rows:,} of the {rows:,} tracks")
    note = "the budget is small, so the evaluation is smaller: " + "; ".join(cuts) if cuts else None
    return EvaluationPlan(plan.n_splits, plan.max_rows, plan.time_calibration, note)


# --------------------------------------------------------------------------------------------------------
# One held-out fit


@dataclass(frozen=True)
class HeldOut:
    """Predictions of one fit (and its baselines) on its test rows."""

    test: np.ndarray
    predictions: Mapping[str, np.ndarray]
    seen: np.ndarray
    residuals: Residuals
    interval: Interval | None = None
    # The audio model's (feature_set "sound") signed residuals on the same test rows, when it was fitted.
    sound_residuals: np.ndarray | None = None


# The key of the audio model (what popdrivers measures from a recording plus typed context) in the predictions
# of a held-out fit and in metrics.json's splits: it is evaluated on exactly the full model's folds.
AUDIO_MODEL = "audio_model"


def _held_out_fit(tracks: pd.DataFrame, train_idx: np.ndarray, test_idx: np.ndarray, template: PopularityModel,
                  *, reference: Mapping[str, Any] | None, audio: bool, sound: bool = False) -> HeldOut:
    """Fit the model (and the baselines, and the audio model when ``sound``) on ``train_idx``; predict
    ``test_idx``."""
    y = tracks[TARGET].to_numpy(dtype="float64")
    train, test = tracks.iloc[train_idx], tracks.iloc[test_idx]
    model = clone(template).fit(train)
    frame = model.design_frame(test)
    prediction = np.clip(model.predict_raw(model.to_matrix(frame)), 0.0, 100.0)
    seen = model.artist_seen(test)
    resid = y[test_idx] - prediction
    predictions: dict[str, np.ndarray] = {"model": prediction, "mean": np.full(len(test_idx), y[train_idx].mean())}
    train_frame = baseline_inputs(model.training_design(train))
    test_frame = baseline_inputs(frame).reset_index(drop=True)
    predictions["linear"] = linear_predictions(train_frame, y[train_idx], test_frame)
    if audio:
        audio_model = clone(template).set_params(feature_set="audio", artist_record=False, calibration_folds=0)
        predictions["audio_only"] = audio_model.fit(train).predict(test)
    sound_residuals = None
    if sound:
        sound_model = clone(template).set_params(feature_set="sound", artist_record=False, calibration_folds=0,
                                                 calibration="auto")
        predictions[AUDIO_MODEL] = sound_model.fit(train).predict(test)
        sound_residuals = y[test_idx] - predictions[AUDIO_MODEL]
    if reference is not None:
        ref_train, ref_test = reference_features(train_frame), reference_features(test_frame)
        forest = reference_rf(ref_train, **reference).fit(ref_train, y[train_idx])
        predictions["reference_rf"] = forest.predict(ref_test)
    interval = model.interval_ if model.interval_.available else None
    return HeldOut(test_idx, predictions, seen, Residuals(resid[seen], resid[~seen]), interval, sound_residuals)


# --------------------------------------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True)
class Evaluation:
    """The metrics (``metrics.json`` schema) and the out-of-fold residuals of the mixed folds' models.

    ``residuals`` is None when the evaluation ran on a sample (they would not cover the table).
    """

    metrics: dict[str, Any]
    residuals: Residuals | None
    n_folds: int
    seconds: float
    # The audio model's out-of-fold residuals on the mixed folds (all "new artist": it has no track record).
    sound_residuals: Residuals | None = None


def _unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason}


def _split_result(y: np.ndarray, parts: list[tuple[np.ndarray, Mapping[str, np.ndarray]]], n_folds: int,
                  scheme: str) -> dict[str, Any]:
    tested = np.concatenate([idx for idx, _ in parts])
    methods = list(parts[0][1])
    pred = {m: np.concatenate([p[m] for _, p in parts]) for m in methods}
    result = {"available": True, "folds": n_folds, "test_rows": int(len(tested)), "scheme": scheme,
              "model": scores(y[tested], pred["model"]),
              "baselines": {m: scores(y[tested], pred[m]) for m in methods if m not in ("model", AUDIO_MODEL)}}
    if AUDIO_MODEL in pred:
        result[AUDIO_MODEL] = scores(y[tested], pred[AUDIO_MODEL])
    return result


def _coverage(y: np.ndarray, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, float] | None:
    """Coverage and mean width from (test rows, lower, upper) parts."""
    if not parts:
        return None
    idx = np.concatenate([p[0] for p in parts])
    lower = np.concatenate([p[1] for p in parts])
    upper = np.concatenate([p[2] for p in parts])
    if not len(idx):
        return None
    covered = (y[idx] >= lower) & (y[idx] <= upper)
    return {"coverage": float(covered.mean()), "mean_width": float((upper - lower).mean())}


def run_evaluation(
    tracks: pd.DataFrame, *, reference: bool = False, n_splits: int = DEFAULT_FOLDS, seed: int = 0,
    progress: ProgressCallback | None = None, params: Mapping[str, Any] | None = None,
    reference_params: Mapping[str, Any] | None = None, max_rows: int = EVALUATION_ROWS, n_jobs: int | None = None,
    sound: bool = False, plan: EvaluationPlan | None = None,
) -> Evaluation:
    """:func:`evaluate`, also returning the out-of-fold residuals that calibrate the final model's interval.

    ``sound``: also evaluate the audio model (feature set "sound") on the same folds, in ``splits[...]
    ["audio_model"]`` and ``metrics["audio_model"]`` (its interval coverage), with its residuals.
    ``plan`` (:func:`plan_evaluation`, for a small time budget) replaces ``n_splits`` and ``max_rows`` and may
    calibrate the newest-releases interval without its refit; its note goes to ``metrics["budget_note"]``.
    """
    time_calibration = "holdout_refit"
    if plan is not None:
        n_splits, max_rows, time_calibration = plan.n_splits, plan.max_rows, plan.time_calibration
    progress = progress or null_progress
    start = time.perf_counter()
    tracks = schema.checked_tracks(tracks, require_popularity=True)
    params = dict(params or {})
    workers = int(n_jobs if n_jobs is not None else params.get("n_jobs", 2))
    ref = features.reference_date(tracks)
    sample, sample_note = artist_sample(tracks, max_rows, seed + 3)
    if sample_note is not None:
        sample_note["note"] = "evaluated on " + sample_note["note"]
    y = sample[TARGET].to_numpy(dtype="float64")
    # Ages are measured at the collection date of the whole dataset, also for the older training part of the
    # time split (otherwise newer test tracks would get negative ages). Fits run side by side on one thread each.
    template = PopularityModel(**params).set_params(
        random_state=seed, reference_date=None if ref is None else ref.strftime("%Y-%m-%d"), n_jobs=1)
    point = clone(template).set_params(calibration_folds=0)
    features_used = _layout_names(template, sample, ref)
    audio = _has_audio(sample, ref)
    forest = None
    if reference:
        forest = {"n_jobs": 1 if workers > 1 else workers, "random_state": seed, **dict(reference_params or {})}

    folds = [f for f in mixed_folds(sample, n_splits, seed=seed + 1) if len(f.train) >= MIN_FIT_ROWS]
    splits: dict[str, Any] = {}
    if not folds:
        reason = f"{len(sample)} tracks are too few to hold some out and still fit a model"
        splits.update(random=_unavailable(reason), by_artist=_unavailable(reason))
    try:
        artist_groups(sample)
        by_artist_reason = None if len(folds) and all(len(f.new_artists) for f in folds) else \
            "fewer than two artists: no artist can be held out whole"
    except SplitUnavailable as exc:
        by_artist_reason = str(exc)
    try:
        time_fold = time_split(sample)
    except SplitUnavailable as exc:
        time_fold = None
        splits["by_time"] = _unavailable(str(exc))

    jobs: list[Callable[[], HeldOut]] = [
        (lambda f=f: _held_out_fit(sample, f.train, f.test, point, reference=forest, audio=audio, sound=sound))
        for f in folds]
    if time_fold is not None:
        # The interval of the time split is calibrated inside the older tracks (one refit without a held-out part).
        timed = clone(template).set_params(calibration=time_calibration, calibration_folds=max(n_splits, 2))
        jobs.append(lambda: _held_out_fit(sample, time_fold[0], time_fold[1], timed, reference=forest, audio=audio,
                                          sound=sound))
    done = [0]

    def tick(_: int) -> None:
        done[0] += 1
        progress(done[0], len(jobs), f"evaluation: {done[0]} of {len(jobs)} held-out fits done")

    progress(0, len(jobs), f"evaluation: {len(folds)} mixed folds (random tracks, unseen artists)"
             + (" + newest releases" if time_fold else ""))
    results = run_parallel(jobs, workers, on_done=tick)
    fold_results, time_result = results[:len(folds)], (results[len(folds)] if time_fold is not None else None)

    intervals: dict[str, dict[str, float]] = {}
    residuals = None
    sound_residuals = None
    sound_interval: dict[str, Any] | None = None
    if fold_results:
        scheme = (f"{len(folds)} mixed folds: each holds out 1/{len(folds)} of the artists whole (unseen "
                  "artists) and a random sample of the other artists' tracks (random tracks)")
        known_parts, new_parts, known_cover, new_cover = [], [], [], []
        all_residuals = [r.residuals for r in fold_results]
        level = template.interval_level
        for k, (fold, result) in enumerate(zip(folds, fold_results, strict=True)):
            position = {row: i for i, row in enumerate(result.test)}
            others = Residuals.pooled([r for j, r in enumerate(all_residuals) if j != k])
            bounds = None
            if others.size and template.calibration_folds:
                interval = Interval.from_residuals(others, level, "cross")
                bounds = interval.bounds(result.predictions["model"], result.seen)
            for rows, parts, cover in ((fold.known_artists, known_parts, known_cover),
                                       (fold.new_artists, new_parts, new_cover)):
                if not len(rows):
                    continue
                at = np.array([position[r] for r in rows])
                parts.append((rows, {m: p[at] for m, p in result.predictions.items()}))
                if bounds is not None:
                    cover.append((rows, bounds[0][at], bounds[1][at]))
        if known_parts:
            splits["random"] = _split_result(y, known_parts, len(folds), scheme)
            if (c := _coverage(y, known_cover)) is not None:
                intervals["random"] = c
        elif "random" not in splits:
            splits["random"] = _unavailable("no fold held out tracks of artists kept in training")
        if by_artist_reason is None and new_parts:
            splits["by_artist"] = _split_result(y, new_parts, len(folds), scheme)
            if (c := _coverage(y, new_cover)) is not None:
                intervals["by_artist"] = c
        elif "by_artist" not in splits:
            splits["by_artist"] = _unavailable(by_artist_reason or "no fold held out whole artists")
        if sample_note is None:
            residuals = Residuals.pooled(all_residuals)
        if sound:
            sound_parts = [r.sound_residuals for r in fold_results]
            sound_cover = []
            for k, result in enumerate(fold_results):
                others = np.concatenate([r for j, r in enumerate(sound_parts) if j != k] or [np.empty(0)])
                if len(others) and template.calibration_folds:
                    bounds = Interval.from_residuals(Residuals(np.empty(0), others), level, "cross").bounds(
                        result.predictions[AUDIO_MODEL], np.zeros(len(result.test), dtype=bool))
                    sound_cover.append((result.test, bounds[0], bounds[1]))
            if sample_note is None:
                sound_residuals = Residuals(np.empty(0), np.concatenate(sound_parts))
            if (c := _coverage(y, sound_cover)) is not None:
                sound_interval = {"level": level, **c, "measured_on": "random and by_artist"}
    if time_result is not None:
        train_idx, test_idx = time_fold
        result = _split_result(y, [(time_result.test, time_result.predictions)], 1,
                               "trained on the older 80% of dated tracks, tested on the newest 20%")
        dates = pd.to_datetime(sample["release_date"])
        result["train_until"] = dates.iloc[train_idx].max().strftime("%Y-%m-%d")
        result["test_from"] = dates.iloc[test_idx].min().strftime("%Y-%m-%d")
        splits["by_time"] = result
        if time_result.interval is not None:
            lower, upper = time_result.interval.bounds(time_result.predictions["model"], time_result.seen)
            intervals["by_time"] = _coverage(y, [(time_result.test, lower, upper)])
    progress(len(jobs), len(jobs), "evaluation done")

    measured_on = "by_artist" if "by_artist" in intervals else ("random" if "random" in intervals else None)
    interval: dict[str, Any] = {"level": template.interval_level, "coverage": None, "measured_on": measured_on}
    if measured_on:
        interval.update(coverage=intervals[measured_on]["coverage"],
                        mean_width=intervals[measured_on]["mean_width"], by_split=intervals)
        interval["calibration"] = ("random tracks and unseen artists: each fold's interval from the other folds' "
                                   "residuals (cross-conformal); newest releases: calibrated inside the older tracks"
                                   + (" (one held-out part, no refit)" if time_calibration == "split" else ""))
    # The keys stay (files written before read them); what a person reads says the README's words.
    if measured_on:
        interval["measured_on_label"] = split_label(measured_on)
    if sound_interval is not None:
        sound_interval["measured_on_label"] = split_label(sound_interval["measured_on"])
    metrics: dict[str, Any] = {"splits": {name: splits[name] for name in SPLITS if name in splits},
                               "split_labels": {name: split_label(name) for name in SPLITS if name in splits},
                               "interval": interval, "rows": len(tracks), "features": features_used,
                               "target": TARGET}
    if not audio:
        metrics["baselines_unavailable"] = {"audio_only": "the data has no Spotify audio feature"}
    if sound:
        metrics[AUDIO_MODEL] = {"interval": sound_interval,
                                "features": _layout_names(clone(point).set_params(feature_set="sound"), sample, ref)}
    if sample_note is not None:
        metrics["sample"] = sample_note
    if plan is not None and plan.note:
        metrics["budget_note"] = plan.note
        metrics["evaluation_plan"] = {"n_splits": n_splits, "max_rows": max_rows, "time_calibration": time_calibration}
    seconds = time.perf_counter() - start
    metrics["seconds"] = round(seconds, 2)
    return Evaluation(metrics=metrics, residuals=residuals, n_folds=len(folds), seconds=seconds,
                      sound_residuals=sound_residuals)


def _layout_names(template: PopularityModel, tracks: pd.DataFrame, ref: pd.Timestamp | None) -> list[str]:
    from popdrivers.model._design import FeatureLayout

    feats = features.build_features(tracks, at=ref)
    return list(FeatureLayout.choose(feats, feature_set=template.feature_set,
                                     artist_record=template.artist_record).names)


def _has_audio(tracks: pd.DataFrame, ref: pd.Timestamp | None) -> bool:
    from popdrivers.model._design import FeatureLayout

    try:
        FeatureLayout.choose(features.build_features(tracks, at=ref), feature_set="audio", artist_record=False)
    except schema.SchemaError:
        return False
    return True


def evaluate(
    tracks: pd.DataFrame, *, reference: bool = False, n_splits: int = DEFAULT_FOLDS, seed: int = 0,
    progress: ProgressCallback | None = None, params: Mapping[str, Any] | None = None,
    reference_params: Mapping[str, Any] | None = None, max_rows: int = EVALUATION_ROWS, n_jobs: int | None = None,
) -> dict[str, Any]:
    """Honest evaluation on three splits, with baselines and the interval's empirical coverage.

    Parameters
    ----------
    tracks
        Canonical track table with popularity (validated here; repeated track ids merged first, so one
        track never sits on both sides of a split).
    reference
        Also fit the original project's random forest (slow: 700 deep trees per fold).
    n_splits
        Mixed folds behind the ``random`` and ``by_artist`` splits (fewer when there are fewer artists).
    seed
        Seed of the folds and the models.
    progress
        Called with (done, total, message) after each held-out fit.
    params
        :class:`PopularityModel` parameters (e.g. tuned ones, or small trees in tests).
    reference_params
        Overrides for :func:`reference_rf` (``n_estimators``, ``n_jobs``); for tests and benchmarks.
    max_rows
        Above this many tracks, evaluate on a fixed sample of whole artists of about this size.
    n_jobs
        Held-out fits run side by side (default ``params['n_jobs']``, else 2).

    Returns
    -------
    dict
        ``{"splits": {"random"|"by_artist"|"by_time": {"model": {"rmse", "mae", "r2"}, "baselines":
        {"mean", "linear", "audio_only"[, "reference_rf"]}: {...}, ...} or {"available": False, "reason"}},
        "interval": {"level", "coverage", "measured_on", ...}, "rows", "features"[, "sample"]}``.
    """
    return run_evaluation(tracks, reference=reference, n_splits=n_splits, seed=seed, progress=progress,
                          params=params, reference_params=reference_params, max_rows=max_rows,
                          n_jobs=n_jobs).metrics
