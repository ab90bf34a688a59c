"""The popularity model: fit, tune, evaluate honestly, predict with intervals, save and load without pickle.

What the model is
-----------------
A LightGBM regressor on the derived columns of :func:`popdrivers.features.build_features`, using whatever
of them the data has (a table without ``tempo``, ``explicit`` or followers still trains; the model records
which features it used). Optionally one more feature, the artist's *track record*: the mean popularity of
the artist's **other** tracks, shrunk toward the overall mean. During training it is computed strictly out
of fold (a track never sees its own popularity); at prediction time it comes from the stored training
table and is NaN for an artist the model has never seen. Tracks of such new artists are predicted by a
second, heavily regularised booster trained on every track without the record (monotone in followers), so
the ``by_artist`` evaluation split measures the new-artist case honestly.

Prediction intervals are split conformal (Mondrian by "artist seen in training" vs "new artist"): signed
residuals of models fitted out of fold, with whole artists held out and single tracks of other artists
held out, give the interval offsets of each group. Above 200,000 tracks the refits would double the cost, so
the boosters are fitted once without one such held-out part (10% of the artists whole, 1% of the other
tracks), whose residuals calibrate the interval; those tracks still join the artists' track record. At 1M
tracks this costs <0.1% RMSE. Their empirical coverage on held-out artists is reported by :func:`evaluate`.

Artifacts are LightGBM's native text model plus JSON (preprocessing, intervals) and a CSV of the training
tracks' popularity (for the track record): no pickle, every file checksummed in ``manifest.json``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# LightGBM's OpenMP threads spin while waiting by default; on a busy 2-core machine that makes a
# 2-thread fit 10-40x slower than a 1-thread fit. Passive waiting costs nothing measurable when idle.
# setdefault: a user's own OMP_WAIT_POLICY wins. Must happen before lightgbm's libgomp is loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.base import BaseEstimator, RegressorMixin, clone  # noqa: E402

from popdrivers import artifacts, features, schema  # noqa: E402
from popdrivers.errors import ArtifactError, PopdriversError  # noqa: E402
from popdrivers.progress import ProgressCallback, null_progress  # noqa: E402

TARGET = schema.TARGET
KIND = "popularity-model"
MODEL_FILE = "model.txt"
NEW_ARTIST_MODEL_FILE = "model_new_artists.txt"
PREPROCESSING_FILE = "preprocessing.json"
ARTIST_TRACKS_FILE = "artist_tracks.csv.gz"
METRICS_FILE = "metrics.json"
ARTIST_RECORD = "artist_track_record"

# Spotify audio features as model columns (duration in minutes, key as a category).
AUDIO_MODEL_FEATURES: tuple[str, ...] = (
    "danceability", "energy", "loudness", "speechiness", "acousticness", "instrumentalness", "liveness",
    "valence", "tempo", "mode", "time_signature", "key_cat", "duration_min",
)
# Everything else the canonical table can tell about a track before it is released or measured.
CONTEXT_FEATURES: tuple[str, ...] = ("explicit_int", "log_followers", "track_age_days", "genre_family")
# The new-artist booster's predictions may only rise with these (see the ``monotone`` parameter).
MONOTONE_INCREASING = frozenset({"log_followers", "artist_track_record"})
CATEGORICAL_FEATURES: dict[str, list[Any]] = {
    "key_cat": list(range(-1, 12)),
    "genre_family": list(features.GENRE_FAMILIES),
}
# Canonical column(s) each model feature is built from (any one of the alternatives is enough).
FEATURE_SOURCES: dict[str, tuple[str, ...]] = {
    **{name: (name,) for name in AUDIO_MODEL_FEATURES},
    "key_cat": ("key",),
    "duration_min": ("duration_ms",),
    "explicit_int": ("explicit",),
    "log_followers": ("artist_followers",),
    "track_age_days": ("release_date",),
    "genre_family": ("artist_genres", "genre"),
    ARTIST_RECORD: ("artist_id",),
}
FEATURE_LABELS: dict[str, str] = {
    "key_cat": "key", "duration_min": "duration (min)", "explicit_int": "explicit",
    "log_followers": "artist followers", "track_age_days": "days since release",
    "genre_family": "genre family", ARTIST_RECORD: "artist's other tracks (mean popularity)",
    "time_signature": "time signature", "tempo": "tempo (BPM)", "loudness": "loudness (dB)",
}
# Rows above which the interval calibration and the tuning use one fold / a subsample, to bound the cost
# at millions of tracks (the estimates then rest on one held-out fold of >= 40k tracks).
LARGE_DATA_ROWS = 200_000
# Above LARGE_DATA_ROWS the interval is plain split conformal on one mixed hold-out fold of this many: 10% of
# the artists whole plus 1% of the other tracks (>= 20,000 residuals); the boosters are fitted once, on the rest.
LARGE_DATA_CALIBRATION_FOLDS = 10
# Below it, out-of-fold refits stop once this many residuals are pooled (one fold at 100k tracks, all five at
# 20k): the interval's quantiles are then estimated to well under a point, and each refit is a full fit.
CALIBRATION_RESIDUALS = 20_000


class SplitUnavailable(PopdriversError):
    """An evaluation split cannot be made from this data (no artist ids, no release dates, too few groups)."""


def feature_label(name: str) -> str:
    """Human-readable name of a model feature, for tables and plots."""
    return FEATURE_LABELS.get(name, name)


# --------------------------------------------------------------------------------------------------------
# Input checking


def _numbers_are_canonical(spec: schema.ColumnSpec, s: pd.Series) -> bool:
    if isinstance(s.dtype, pd.api.extensions.ExtensionDtype) or not (
            pd.api.types.is_float_dtype(s.dtype) or pd.api.types.is_integer_dtype(s.dtype)):
        return False
    values = s.to_numpy(dtype="float64")
    known = values[~np.isnan(values)]
    return not (
        np.isinf(known).any()
        or (spec.low is not None and (known < spec.low).any())
        or (spec.high is not None and (known > spec.high).any())
        or (spec.unknown_marker is not None and (known == spec.unknown_marker).any())
        or (spec.kind == "int" and (known % 1 != 0).any())
    )


def _column_is_canonical(spec: schema.ColumnSpec, s: pd.Series) -> bool:
    if spec.kind in {"int", "float"}:
        return _numbers_are_canonical(spec, s)
    if spec.kind == "bool":
        return pd.api.types.is_bool_dtype(s.dtype)
    if spec.kind == "date":
        if not pd.api.types.is_datetime64_any_dtype(s.dtype) or getattr(s.dt, "tz", None) is not None:
            return False
        dates = s.dropna()
        latest = pd.Timestamp.now() + pd.Timedelta(days=366)
        return not len(dates) or (dates.min() >= pd.Timestamp("1900-01-01") and dates.max() <= latest)
    if spec.kind in {"id", "text"}:
        return isinstance(s.dtype, pd.StringDtype)
    return s.dtype == object and all(isinstance(v, list | tuple | np.ndarray) for v in s.tolist())


def _is_canonical(df: pd.DataFrame) -> bool:
    """True when ``df`` already satisfies the schema, so :func:`schema.validate` would change nothing.

    A cheap, conservative check (dtypes, ranges, markers) that lets a row of a validated table, or a row
    the app built with canonical dtypes, skip re-coercion (which costs ~30 ms per call even for one row).
    Anything it is unsure of returns False and goes through ``schema.validate``.
    """
    if "track_id" not in df.columns or len(df) == 0:
        return False
    if not all(_column_is_canonical(spec, df[spec.name]) for spec in schema.COLUMNS if spec.name in df.columns):
        return False
    ids = df["track_id"]
    return not ids.isna().any() and not ids.str.strip().eq("").any()


def checked_tracks(tracks: pd.DataFrame, *, require_popularity: bool, keep_rows: bool = False) -> pd.DataFrame:
    """Validate ``tracks`` with :func:`schema.validate` (same :class:`SchemaError` as everywhere).

    Parameters
    ----------
    tracks
        A track table with canonical column names.
    require_popularity
        True when fitting, False when predicting.
    keep_rows
        Prediction keeps one output row per input row even when a track id repeats (the app predicts one
        track under several what-if edits); validation otherwise merges repeated ids into one track.
    """
    if not isinstance(tracks, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame of tracks, got {type(tracks).__name__}")
    if tracks.columns.duplicated().any():
        # A repeated column name (seen: release_date_precision in a re-read canonical file without dates)
        # would make every column lookup ambiguous; the first copy is the canonical one.
        tracks = tracks.loc[:, ~tracks.columns.duplicated()]
    canonical = _is_canonical(tracks)
    duplicated = "track_id" in tracks.columns and tracks["track_id"].duplicated().any()
    if canonical and not (duplicated and not keep_rows):
        return tracks.reset_index(drop=True)
    if not keep_rows or not duplicated:
        return schema.validate(tracks, require_popularity=require_popularity)
    # Validate once as given (so errors read exactly as everywhere), then once more with positional
    # stand-in ids so repeated ids are kept as separate rows.
    schema.validate(tracks, require_popularity=require_popularity)
    ids = tracks["track_id"].astype("string").str.strip().reset_index(drop=True)
    stand_in = tracks.reset_index(drop=True).assign(track_id=[f"row-{i}" for i in range(len(tracks))])
    out = schema.validate(stand_in, require_popularity=require_popularity)
    out["track_id"] = ids
    return out


# --------------------------------------------------------------------------------------------------------
# The artist track record


def _shrunk_mean(sums: np.ndarray, counts: np.ndarray, prior_mean: float, prior_weight: float) -> np.ndarray:
    """Mean popularity shrunk toward ``prior_mean`` (few tracks say little); NaN when there are no tracks."""
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (sums + prior_weight * prior_mean) / (counts + prior_weight)
    return np.where(counts > 0, value, np.nan)


def out_of_fold_artist_record(
    artist_ids: pd.Series, popularity: np.ndarray, *, n_folds: int = 5, new_artist_share: float = 0.25,
    prior_weight: float = 3.0, seed: int = 0,
) -> np.ndarray:
    """Training-time track record: each track sees only the popularity of its artist's tracks in other folds.

    Tracks are assigned to ``n_folds`` random folds; a track in fold k gets the shrunk mean popularity of its
    artist's tracks outside fold k (never its own). A random ``new_artist_share`` of artists get NaN for
    all their tracks, so the model learns what to do for an artist it has never seen.
    """
    rng = np.random.default_rng(seed)
    y = np.asarray(popularity, dtype="float64")
    codes, uniques = pd.factorize(artist_ids.astype("string"), use_na_sentinel=True)
    n_artists = len(uniques)
    known = codes >= 0
    folds = rng.integers(0, max(n_folds, 2), len(y))
    prior_mean = float(y.mean()) if len(y) else 0.0
    record = np.full(len(y), np.nan)
    for k in range(max(n_folds, 2)):
        outside = known & (folds != k)
        sums = np.bincount(codes[outside], weights=y[outside], minlength=n_artists)
        counts = np.bincount(codes[outside], minlength=n_artists).astype("float64")
        inside = known & (folds == k)
        record[inside] = _shrunk_mean(sums[codes[inside]], counts[codes[inside]], prior_mean, prior_weight)
    hidden = rng.random(n_artists) < new_artist_share
    record[known & hidden[np.where(known, codes, 0)]] = np.nan
    return record


# --------------------------------------------------------------------------------------------------------
# Conformal intervals


def _conformal_offsets(residuals: np.ndarray, level: float) -> tuple[float, float]:
    """Lower/upper offsets from signed residuals with the finite-sample split-conformal ranks."""
    r = np.sort(np.asarray(residuals, dtype="float64"))
    n = len(r)
    alpha = 1.0 - level
    lo_rank = math.floor((n + 1) * alpha / 2)
    hi_rank = math.ceil((n + 1) * (1 - alpha / 2))
    lower = r[max(lo_rank, 1) - 1] if lo_rank >= 1 else r[0]
    upper = r[min(hi_rank, n) - 1]
    return float(lower), float(upper)


MIN_POOL = 30  # residuals needed before a group gets its own interval width


# --------------------------------------------------------------------------------------------------------
# The estimator


class PopularityModel(RegressorMixin, BaseEstimator):
    """LightGBM popularity model on the canonical track table, with conformal 80% intervals.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples, subsample, colsample_bytree, reg_lambda
        LightGBM hyperparameters (see :func:`train` for tuning them).
    artist_record
        Use the artist's track record (mean popularity of their other tracks) as a feature when the data
        has ``artist_id``.
    new_artist_model
        With the track record in use: predict tracks of artists the model has never seen with a second,
        more regularised booster trained on every track without the record (new_artist_* parameters).
        False: one booster for both cases, taught the new-artist case by hiding ``new_artist_share`` of
        the artists' records during training.
    new_artist_num_leaves, new_artist_min_child_samples, new_artist_n_estimators
        Hyperparameters of the new-artist booster. Large leaves (default ``min(300, rows / 50)``) force
        its splits to span several artists, so it learns what carries over to an unseen artist.
    new_artist_share
        Share of artists whose track record is hidden during training (single-booster mode only).
    record_prior_weight
        Shrinkage of the track record toward the overall mean, in pseudo-tracks.
    monotone
        Constrain the new-artist booster to be non-decreasing in artist followers: a prior that keeps it
        from fitting artist-specific noise in followers, which does not carry over to unseen artists.
        (Not applied to the main booster: for known artists the track record already carries their level.)
    feature_set
        ``"all"`` (every feature the data has) or ``"audio"`` (Spotify audio features only, a baseline).
    interval_level
        Coverage of :meth:`predict_interval` (0.8 = 80%).
    calibration_folds
        Folds of the out-of-fold refits that calibrate the intervals; 0 skips calibration (no intervals).
        Refits stop once 20,000 residuals are pooled. Above 200,000 rows there is no refit: the boosters are
        fitted once without a held-out part (10% of artists, 1% of other tracks) that calibrates them.
    reference_date
        Date track ages are measured at; default the training data's collection date or newest release.
    n_jobs
        LightGBM threads.
    random_state
        Seed for folds, masking and LightGBM's bagging.
    """

    def __init__(
        self, n_estimators: int = 400, learning_rate: float = 0.07, num_leaves: int = 63,
        min_child_samples: int = 20, subsample: float = 0.8, colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0, artist_record: bool = True, new_artist_model: bool = True,
        new_artist_num_leaves: int = 7, new_artist_min_child_samples: int | None = None,
        new_artist_n_estimators: int = 600, new_artist_share: float = 0.25, record_prior_weight: float = 3.0,
        monotone: bool = True, feature_set: str = "all", interval_level: float = 0.8, calibration_folds: int = 5,
        reference_date: str | None = None, n_jobs: int = 2, random_state: int = 0,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.artist_record = artist_record
        self.new_artist_model = new_artist_model
        self.new_artist_num_leaves = new_artist_num_leaves
        self.new_artist_min_child_samples = new_artist_min_child_samples
        self.new_artist_n_estimators = new_artist_n_estimators
        self.new_artist_share = new_artist_share
        self.record_prior_weight = record_prior_weight
        self.monotone = monotone
        self.feature_set = feature_set
        self.interval_level = interval_level
        self.calibration_folds = calibration_folds
        self.reference_date = reference_date
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ---- fitting ---------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        if self.feature_set not in {"all", "audio"}:
            raise ValueError(f"feature_set={self.feature_set!r}: use 'all' or 'audio'")
        if not 0 < self.interval_level < 1:
            raise ValueError(f"interval_level={self.interval_level!r}: use a share between 0 and 1, e.g. 0.8")
        if not 0 <= self.new_artist_share < 1:
            raise ValueError(f"new_artist_share={self.new_artist_share!r}: use a share in [0, 1)")
        if self.calibration_folds < 0 or self.calibration_folds == 1:
            raise ValueError(f"calibration_folds={self.calibration_folds!r}: use 0 (no intervals) or >= 2")

    def _available_features(self, feats: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
        candidates = list(AUDIO_MODEL_FEATURES)
        if self.feature_set == "all":
            candidates += list(CONTEXT_FEATURES)
            if self.artist_record:
                candidates.append(ARTIST_RECORD)
        used: list[str] = []
        missing: dict[str, str] = {}
        for name in candidates:
            sources = FEATURE_SOURCES[name]
            if not any(s in feats.columns for s in sources):
                missing[name] = f"no {' or '.join(repr(s) for s in sources)} column in the training data"
            elif name == ARTIST_RECORD:
                counts = feats["artist_id"].value_counts(dropna=True)
                if not (counts >= 2).any():
                    missing[name] = "no artist has two or more tracks"
                else:
                    used.append(name)
            elif name not in feats.columns or feats[name].isna().all():
                missing[name] = f"'{sources[0]}' has no values in the training data"
            elif name == "genre_family" and feats[name].isin(["unknown"]).all():
                missing[name] = "no genre is known for any track"
            else:
                used.append(name)
        if not used:
            raise schema.SchemaError([schema.Problem(
                "*", "has no feature the model can use", fix="provide audio features (danceability, energy, "
                "...), artist_followers, release_date or genres")])
        return used, missing

    def fit(self, tracks: pd.DataFrame, y: Sequence[float] | None = None) -> PopularityModel:
        """Fit on a canonical track table (validated here); ``y`` defaults to ``tracks['popularity']``.

        Returns
        -------
        self
        """

        self._check_params()
        if y is not None:
            tracks = tracks.assign(**{TARGET: np.asarray(y)})
        tracks = checked_tracks(tracks, require_popularity=True)
        if len(tracks) < 10:
            raise schema.SchemaError([schema.Problem("*", f"has {len(tracks)} tracks, too few to fit a model",
                                                     fix="provide at least 10 tracks (hundreds to be useful)")])
        ref = pd.Timestamp(self.reference_date) if self.reference_date is not None else \
            features.reference_date(tracks)
        self.reference_date_ = None if ref is None else ref.strftime("%Y-%m-%d")
        self.interval_offsets_: dict[str, list[float]] = {}
        self.calibration_size_: dict[str, int] = {}
        self.calibration_method_ = "none"
        if self.calibration_folds and len(tracks) > LARGE_DATA_ROWS:
            # Plain split conformal: fit once without a held-out part, calibrate on it, then let the held-out
            # tracks join the track-record table. A refit on every track would double the cost of a
            # million-track fit for a gain that 11% more rows cannot buy at this size.
            fit_idx, held_idx = next(mixed_holdout_folds(tracks, LARGE_DATA_CALIBRATION_FOLDS,
                                                         seed=self.random_state + 1))
            self._fit_point(tracks.iloc[fit_idx], ref)
            self._store_offsets(*self._held_out_residuals(self, tracks.iloc[held_idx]))
            self.calibration_method_ = "split"
            if self.artist_tracks_ is not None:
                self.artist_tracks_ = _artist_track_table(tracks)
                self._index_artist_tracks()
        else:
            self._fit_point(tracks, ref)
            if self.calibration_folds:
                self._calibrate(tracks)
                self.calibration_method_ = "cross"
        self.training_summary_ = _training_summary(tracks)
        return self

    def _fit_point(self, tracks: pd.DataFrame, ref: pd.Timestamp | None) -> None:
        """Fit the boosters (and the track-record table) on ``tracks``; no intervals."""
        feats = features.build_features(tracks, at=ref)
        self.feature_names_, self.features_unavailable_ = self._available_features(feats)
        self.categorical_features_ = {n: CATEGORICAL_FEATURES[n] for n in self.feature_names_
                                      if n in CATEGORICAL_FEATURES}
        self.n_features_in_ = len(self.feature_names_)
        y_values = tracks[TARGET].to_numpy(dtype="float64")
        self.target_mean_ = float(y_values.mean())
        self.n_train_rows_ = len(tracks)
        uses_record = ARTIST_RECORD in self.feature_names_
        if uses_record:
            self.artist_tracks_ = _artist_track_table(tracks)
            self._index_artist_tracks()
            record = out_of_fold_artist_record(
                tracks["artist_id"], y_values, n_folds=5, new_artist_share=self._training_hidden_share(),
                prior_weight=self.record_prior_weight, seed=self.random_state)
        else:
            self.artist_tracks_ = None
            record = None
        matrix = self._to_matrix(self._design_from_features(feats, record))
        self.booster_ = self._fit_booster(matrix, y_values, list(self.feature_names_), new_artist=False)
        self.new_artist_booster_ = None
        if uses_record and self.new_artist_model:
            keep = [i for i, n in enumerate(self.feature_names_) if n != ARTIST_RECORD]
            self.new_artist_booster_ = self._fit_booster(
                matrix[:, keep], y_values, [self.feature_names_[i] for i in keep], new_artist=True)

    def _training_hidden_share(self) -> float:
        """Share of artists whose record is hidden in training: none when a new-artist booster exists."""
        return 0.0 if self.new_artist_model else float(self.new_artist_share)

    def _lgb_params(self, feature_names: Sequence[str] | None = None, *, new_artist: bool = False,
                    n_rows: int | None = None) -> dict[str, Any]:
        """LightGBM parameters of the main booster, or of the new-artist booster (``new_artist=True``)."""
        names = list(feature_names if feature_names is not None else getattr(self, "feature_names_", []))
        params = dict(
            n_estimators=int(self.n_estimators), learning_rate=float(self.learning_rate),
            num_leaves=int(self.num_leaves), min_child_samples=int(self.min_child_samples),
            subsample=float(self.subsample), subsample_freq=1 if self.subsample < 1 else 0,
            colsample_bytree=float(self.colsample_bytree), reg_lambda=float(self.reg_lambda),
            n_jobs=int(self.n_jobs), random_state=int(self.random_state), verbose=-1,
        )
        if new_artist:
            leaf = self.new_artist_min_child_samples
            if leaf is None:
                leaf = max(int(self.min_child_samples), min(300, (n_rows or 0) // 50))
            params.update(n_estimators=int(self.new_artist_n_estimators), num_leaves=int(self.new_artist_num_leaves),
                          min_child_samples=int(leaf))
        if new_artist and self.monotone and names:
            params["monotone_constraints"] = [1 if n in MONOTONE_INCREASING else 0 for n in names]
        return params

    def _fit_booster(self, matrix: np.ndarray, y: np.ndarray, names: list[str], *, new_artist: bool):
        import lightgbm as lgb

        regressor = lgb.LGBMRegressor(**self._lgb_params(names, new_artist=new_artist, n_rows=len(y)))
        categorical = [i for i, n in enumerate(names) if n in self.categorical_features_]
        regressor.fit(matrix, y, feature_name=names, categorical_feature=categorical or "auto")
        return regressor.booster_

    def _calibrate(self, tracks: pd.DataFrame) -> None:
        """Signed out-of-fold residuals, pooled by whether the track's artist was seen in the fold's training."""
        seen_parts: list[np.ndarray] = []
        new_parts: list[np.ndarray] = []
        for train_idx, test_idx in mixed_holdout_folds(tracks, self.calibration_folds, seed=self.random_state + 1):
            sub = clone(self).set_params(calibration_folds=0, reference_date=self.reference_date_)
            seen, new = self._held_out_residuals(sub.fit(tracks.iloc[train_idx]), tracks.iloc[test_idx])
            seen_parts.append(seen)
            new_parts.append(new)
            if sum(map(len, seen_parts + new_parts)) >= CALIBRATION_RESIDUALS:
                break  # enough residuals for two quantiles per group; more folds would only cost refits
        self._store_offsets(np.concatenate(seen_parts), np.concatenate(new_parts))

    @staticmethod
    def _held_out_residuals(fitted: PopularityModel, held_out: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Signed residuals of ``fitted`` on ``held_out``: (artist seen in its training, new artist)."""
        resid = held_out[TARGET].to_numpy(dtype="float64") - fitted.predict(held_out)
        seen = fitted.artist_seen(held_out)
        return resid[seen], resid[~seen]

    def _store_offsets(self, seen: np.ndarray, new: np.ndarray) -> None:
        everything = np.concatenate([seen, new])
        for group, values in {"seen": seen, "new": new}.items():
            source = values if len(values) >= MIN_POOL else everything
            self.interval_offsets_[group] = list(_conformal_offsets(source, self.interval_level))
            self.calibration_size_[group] = int(len(source))

    def calibration_description(self) -> str:
        """One sentence on how the interval was calibrated and how many tracks the boosters were fitted on."""
        self._check_fitted()
        sizes = ", ".join(f"{n:,} {g}-artist" for g, n in self.calibration_size_.items())
        method = self.calibration_method_
        if method == "split":
            return (f"{self.interval_level:.0%} interval by split conformal on one held-out part ({sizes} residuals: "
                    f"10% of artists whole, 1% of other tracks); the boosters were fitted once on the other "
                    f"{self.n_train_rows_:,} tracks (above {LARGE_DATA_ROWS:,} tracks no refit on all), and the "
                    "held-out tracks still count in their artists' track record")
        if method == "holdout_refit":
            return (f"{self.interval_level:.0%} interval by split conformal on one held-out part ({sizes} "
                    f"residuals) of a separate fit without it; the boosters were fitted on all {self.n_train_rows_:,} "
                    "tracks")
        if method == "cross":
            return (f"{self.interval_level:.0%} interval from out-of-fold refits ({sizes} residuals); the boosters "
                    f"were fitted on all {self.n_train_rows_:,} tracks")
        return f"no interval (calibration_folds=0); the boosters were fitted on {self.n_train_rows_:,} tracks"

    # ---- features at prediction time ------------------------------------------------------------------

    def _index_artist_tracks(self) -> None:
        table = self.artist_tracks_
        grouped = table.groupby("artist_id", sort=False)[TARGET]
        self._artist_sums = grouped.sum().astype("float64")
        self._artist_counts = grouped.size().astype("float64")
        self._track_index = pd.Index(table["track_id"])
        self._track_popularity = table[TARGET].to_numpy(dtype="float64")
        self._track_artist_pos = self._artist_sums.index.get_indexer(table["artist_id"])

    def _artist_record_for(self, tracks: pd.DataFrame) -> np.ndarray:
        """Shrunk mean popularity of each track's artist's other training tracks; NaN for unseen artists."""
        if "artist_id" not in tracks.columns:
            return np.full(len(tracks), np.nan)
        # Positional lookups (get_indexer) are fast for one row and for millions alike.
        pos = self._artist_sums.index.get_indexer(tracks["artist_id"].astype("string"))
        found = pos >= 0
        sums = np.where(found, self._artist_sums.to_numpy()[pos], 0.0)
        counts = np.where(found, self._artist_counts.to_numpy()[pos], 0.0)
        track_pos = self._track_index.get_indexer(tracks["track_id"].astype("string"))
        # A training track is left out of its own record (the mean is over the artist's OTHER tracks).
        is_own = (track_pos >= 0) & found & (self._track_artist_pos[track_pos] == pos)
        sums = np.where(is_own, sums - self._track_popularity[track_pos], sums)
        counts = np.where(is_own, counts - 1, counts)
        return _shrunk_mean(sums, counts, self.target_mean_, self.record_prior_weight)

    def artist_seen(self, tracks: pd.DataFrame) -> np.ndarray:
        """Boolean per track: does the model know this track's artist from other training tracks?"""
        self._check_fitted()
        if self.artist_tracks_ is None:
            return np.zeros(len(tracks), dtype=bool)
        return ~np.isnan(self._artist_record_for(tracks))

    def _design_from_features(self, feats: pd.DataFrame, record: np.ndarray | None) -> pd.DataFrame:
        columns: dict[str, Any] = {}
        for name in self.feature_names_:
            if name == ARTIST_RECORD:
                columns[name] = record if record is not None else np.full(len(feats), np.nan)
            elif name in self.categorical_features_:
                columns[name] = pd.Categorical(feats[name].astype(object) if name in feats.columns else
                                               [None] * len(feats), categories=self.categorical_features_[name])
            else:
                columns[name] = feats[name].to_numpy(dtype="float64", na_value=np.nan)
        return pd.DataFrame(columns, index=feats.index)

    def _to_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """Float matrix for LightGBM: categories as their codes in the stored category list (NaN unknown)."""
        matrix = np.empty((len(frame), len(self.feature_names_)), dtype="float64")
        for j, name in enumerate(self.feature_names_):
            column = frame[name]
            if name in self.categorical_features_:
                codes = column.cat.codes.to_numpy().astype("float64")
                codes[codes < 0] = np.nan
                matrix[:, j] = codes
            else:
                matrix[:, j] = column.to_numpy(dtype="float64", na_value=np.nan)
        return matrix

    def _require_sources(self, tracks: pd.DataFrame) -> None:
        problems = []
        for name in self.feature_names_:
            sources = FEATURE_SOURCES[name]
            if name == ARTIST_RECORD or any(s in tracks.columns for s in sources):
                continue
            # Named by every column it can come from and by its readable name (never an internal name).
            either = " or ".join(f"'{s}'" for s in sources)
            problems.append(schema.Problem(
                sources[0] if len(sources) == 1 else "*",
                f"is missing; the model was trained with it ({feature_label(name)})" if len(sources) == 1 else
                f"has no {either} column; the model was trained with {feature_label(name)} from it",
                fix=f"add {either} (empty cells mean unknown) or use a model trained without it"))
        if problems:
            raise schema.SchemaError(problems)

    def design_frame(self, tracks: pd.DataFrame, *, keep_rows: bool = True) -> pd.DataFrame:
        """The model's input for ``tracks``: one column per feature (categories as labels), validated input.

        The index is the track id. This is what :mod:`popdrivers.explain` attributes predictions to.
        """
        self._check_fitted()
        tracks = checked_tracks(tracks, require_popularity=False, keep_rows=keep_rows)
        self._require_sources(tracks)
        # Only the columns the features come from: derived columns are built per column, so fewer is faster.
        needed = {"track_id", "artist_id"} | {s for n in self.feature_names_ for s in FEATURE_SOURCES[n]}
        feats = features.build_features(tracks[[c for c in tracks.columns if c in needed]], at=self.reference_date_)
        record = self._artist_record_for(tracks) if ARTIST_RECORD in self.feature_names_ else None
        frame = self._design_from_features(feats, record)
        frame.index = pd.Index(tracks["track_id"].astype("string"), name="track_id")
        return frame

    def design_matrix(self, tracks: pd.DataFrame) -> tuple[np.ndarray, pd.Index]:
        """(float matrix as LightGBM sees it, track ids) for ``tracks``."""
        frame = self.design_frame(tracks)
        return self._to_matrix(frame), frame.index

    # ---- prediction ----------------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "booster_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this PopularityModel is not fitted yet: call fit() or load_model(DIR) first")

    def _threads(self, rows: int) -> int:
        # Threads only pay off on big batches; one row is fastest on one thread.
        return 1 if rows < 20_000 else int(self.n_jobs)

    def _routes(self, matrix: np.ndarray) -> np.ndarray | None:
        """Rows for the new-artist booster (no track record), or None when there is one booster."""
        if getattr(self, "new_artist_booster_", None) is None:
            return None
        return np.isnan(matrix[:, self.feature_names_.index(ARTIST_RECORD)])

    def predict_raw(self, matrix: np.ndarray) -> np.ndarray:
        """Unclipped model output for a design matrix (what SHAP contributions add up to)."""
        self._check_fitted()
        new = self._routes(matrix)
        threads = self._threads(len(matrix))
        if new is None:
            return self.booster_.predict(matrix, num_threads=threads)
        out = np.empty(len(matrix))
        if (~new).any():
            out[~new] = self.booster_.predict(matrix[~new], num_threads=threads)
        if new.any():
            keep = [i for i, n in enumerate(self.feature_names_) if n != ARTIST_RECORD]
            out[new] = self.new_artist_booster_.predict(matrix[new][:, keep], num_threads=threads)
        return out

    def shap_values(self, matrix: np.ndarray) -> np.ndarray:
        """TreeSHAP contributions, shape (rows, features + 1); the last column is the base value.

        Rows of new artists are explained by the new-artist booster; their track-record contribution is 0.
        """
        self._check_fitted()
        threads = self._threads(len(matrix))
        new = self._routes(matrix)
        if new is None:
            return np.asarray(self.booster_.predict(matrix, pred_contrib=True, num_threads=threads))
        out = np.zeros((len(matrix), len(self.feature_names_) + 1))
        if (~new).any():
            out[~new] = self.booster_.predict(matrix[~new], pred_contrib=True, num_threads=threads)
        if new.any():
            keep = [i for i, n in enumerate(self.feature_names_) if n != ARTIST_RECORD]
            contrib = self.new_artist_booster_.predict(matrix[new][:, keep], pred_contrib=True, num_threads=threads)
            out[np.ix_(np.flatnonzero(new), [*keep, len(self.feature_names_)])] = contrib
        return out

    def predict(self, tracks: pd.DataFrame) -> np.ndarray:
        """Predicted popularity (0..100), one value per input row.

        Raises
        ------
        SchemaError
            When ``tracks`` breaks the canonical schema or lacks a column the model was trained with.
        """
        matrix, _ = self.design_matrix(tracks)
        return np.clip(self.predict_raw(matrix), 0.0, 100.0)

    def predict_interval(self, tracks: pd.DataFrame) -> pd.DataFrame:
        """Prediction with its conformal interval (``interval_level``, 80% by default) per input row.

        Returns
        -------
        DataFrame indexed by track id with columns ``prediction``, ``lower``, ``upper`` (all within 0..100).
        Tracks of artists the model knows get the "seen artist" width, others the wider "new artist" width.
        """
        self._check_fitted()
        if not self.interval_offsets_:
            raise PopdriversError("this model was fitted with calibration_folds=0, so it has no prediction "
                                  "intervals; refit with calibration_folds >= 2")
        frame = self.design_frame(tracks)
        raw = self.predict_raw(self._to_matrix(frame))
        pred = np.clip(raw, 0.0, 100.0)
        if ARTIST_RECORD in self.feature_names_:
            seen = ~np.isnan(frame[ARTIST_RECORD].to_numpy(dtype="float64"))
        else:
            seen = np.zeros(len(frame), dtype=bool)
        lo_seen, hi_seen = self.interval_offsets_["seen"]
        lo_new, hi_new = self.interval_offsets_["new"]
        lower = pred + np.where(seen, lo_seen, lo_new)
        upper = pred + np.where(seen, hi_seen, hi_new)
        return pd.DataFrame({"prediction": pred, "lower": np.clip(lower, 0.0, 100.0),
                             "upper": np.clip(upper, 0.0, 100.0)}, index=frame.index)

    @property
    def features_used(self) -> list[str]:
        """Feature names the fitted model uses, in order."""
        self._check_fitted()
        return list(self.feature_names_)


def _training_summary(tracks: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per numeric canonical column: median, 1st/99th percentile, min, max (defaults and ranges for the app)."""
    summary: dict[str, dict[str, float]] = {}
    for spec in schema.COLUMNS:
        if spec.kind in {"int", "float"} and spec.name in tracks.columns:
            values = tracks[spec.name].to_numpy(dtype="float64", na_value=np.nan)
            values = values[~np.isnan(values)]
            if len(values):
                q = np.quantile(values, [0.01, 0.5, 0.99])
                summary[spec.name] = {"median": float(q[1]), "p01": float(q[0]), "p99": float(q[2]),
                                      "min": float(values.min()), "max": float(values.max())}
    if "release_date" in tracks.columns and tracks["release_date"].notna().any():
        dates = pd.to_datetime(tracks["release_date"]).dropna()
        summary["release_date"] = {"median": dates.median().strftime("%Y-%m-%d"),
                                   "min": dates.min().strftime("%Y-%m-%d"), "max": dates.max().strftime("%Y-%m-%d")}
    return summary


# --------------------------------------------------------------------------------------------------------
# Splits


def _artist_track_table(tracks: pd.DataFrame) -> pd.DataFrame:
    """The stored (track, artist, popularity) table the artist's track record is computed from."""
    return pd.DataFrame({
        "track_id": tracks["track_id"].astype("string"),
        "artist_id": tracks["artist_id"].astype("string"),
        TARGET: tracks[TARGET].astype("int16"),
    }).dropna(subset=["artist_id"]).reset_index(drop=True)


def _artist_groups(tracks: pd.DataFrame) -> np.ndarray:
    """Integer group per track: its artist; a track without artist id is its own group."""
    if "artist_id" not in tracks.columns or tracks["artist_id"].isna().all():
        raise SplitUnavailable("the data has no artist_id column, so tracks cannot be grouped by artist")
    codes, _ = pd.factorize(tracks["artist_id"].astype("string"), use_na_sentinel=True)
    codes = codes.astype("int64")
    lonely = codes < 0
    codes[lonely] = codes.max() + 1 + np.arange(int(lonely.sum()))
    return codes


def random_folds(n_rows: int, n_splits: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """K-fold over tracks, shuffled (the original project's split; leaks the artist)."""
    from sklearn.model_selection import KFold

    return list(KFold(n_splits, shuffle=True, random_state=seed).split(np.zeros(n_rows)))


def artist_grouped_folds(tracks: pd.DataFrame, n_splits: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """GroupKFold on ``artist_id``: every artist's tracks fall in one test fold; no artist is on both sides.

    Raises
    ------
    SplitUnavailable
        Without artist ids, or with fewer artists than folds.
    """
    from sklearn.model_selection import GroupKFold

    groups = _artist_groups(tracks)
    if len(np.unique(groups)) < n_splits:
        raise SplitUnavailable(f"only {len(np.unique(groups))} artists, fewer than the {n_splits} folds")
    splitter = GroupKFold(n_splits, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(tracks)), groups=groups))


def time_split(tracks: pd.DataFrame, test_share: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Train on older releases, test on the newest ``test_share`` of dated tracks (undated tracks left out).

    Every training release date is on or before the cutoff; every test date is after it.

    Raises
    ------
    SplitUnavailable
        Without release dates, or when the dates do not separate (e.g. all the same day).
    """
    if "release_date" not in tracks.columns or tracks["release_date"].isna().all():
        raise SplitUnavailable("the data has no release_date, so tracks cannot be ordered in time")
    dates = pd.to_datetime(tracks["release_date"])
    dated = np.flatnonzero(dates.notna().to_numpy())
    values = dates.iloc[dated].to_numpy()
    cutoff = np.sort(values)[int(math.floor(len(values) * (1 - test_share))) - 1]
    train = dated[values <= cutoff]
    test = dated[values > cutoff]
    if len(test) < max(10, int(0.05 * len(dated))) or len(train) < 10:
        raise SplitUnavailable("release dates do not separate into older and newer tracks "
                               f"({len(train)} on or before {pd.Timestamp(cutoff).date()}, {len(test)} after)")
    return train, test


def mixed_holdout_folds(tracks: pd.DataFrame, n_folds: int, seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Folds whose test part holds out whole artists AND single tracks of artists kept in training.

    Used for interval calibration and tuning: a model serves both artists it knows (through the track
    record) and new ones, so both kinds of held-out tracks are needed. Fold k tests every track of the
    artists in artist-fold k (new artists) plus a 1/k sample of the tracks of artist-fold k+1 (known
    artists); it trains on the rest (1 - 1/k - 1/k^2 of the tracks). Without artist ids it is plain K-fold.
    """
    rng = np.random.default_rng(seed)
    n = len(tracks)
    track_fold = rng.integers(0, n_folds, n)
    try:
        groups = _artist_groups(tracks)
    except SplitUnavailable:
        for k in range(n_folds):
            yield np.flatnonzero(track_fold != k), np.flatnonzero(track_fold == k)
        return
    artist_fold = rng.integers(0, n_folds, groups.max() + 1)[groups]
    for k in range(n_folds):
        test = (artist_fold == k) | ((artist_fold == (k + 1) % n_folds) & (track_fold == k))
        yield np.flatnonzero(~test), np.flatnonzero(test)


# --------------------------------------------------------------------------------------------------------
# Evaluation


def _scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {"rmse": float(np.sqrt(mean_squared_error(y, pred))), "mae": float(mean_absolute_error(y, pred)),
            "r2": float(r2_score(y, pred))}


def _baseline_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """Design frame for the sklearn baselines: categories as strings with 'missing' for unknown."""
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


def linear_baseline():
    """Ordinary least squares on the model's features (imputed, scaled, categories one-hot)."""
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline

    return lambda frame: Pipeline([("prep", _preprocessor(frame)), ("ols", LinearRegression())])


def linear_predictions(train_frame: pd.DataFrame, y: np.ndarray, test_frame: pd.DataFrame) -> np.ndarray:
    """The linear baseline, routed like the model: with the track record for known artists, without it for new.

    (One regression with an imputed record would put every new artist at the median record: a poor baseline.)
    """
    without = train_frame.drop(columns=[ARTIST_RECORD], errors="ignore")
    pred = linear_baseline()(without).fit(without, y).predict(test_frame[list(without.columns)])
    if ARTIST_RECORD in train_frame.columns:
        known_train = train_frame[ARTIST_RECORD].notna().to_numpy()
        known_test = test_frame[ARTIST_RECORD].notna().to_numpy()
        if known_train.sum() > 10 and known_test.any():
            with_record = linear_baseline()(train_frame).fit(train_frame[known_train], y[known_train])
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


def training_design(model: PopularityModel, tracks: pd.DataFrame) -> pd.DataFrame:
    """The design frame ``model`` was fitted on for ``tracks`` (its training table), track record out of fold."""
    tracks = checked_tracks(tracks, require_popularity=True)
    feats = features.build_features(tracks, at=model.reference_date_)
    record = None
    if ARTIST_RECORD in model.feature_names_:
        record = out_of_fold_artist_record(
            tracks["artist_id"], tracks[TARGET].to_numpy(dtype="float64"), n_folds=5,
            new_artist_share=model._training_hidden_share(), prior_weight=model.record_prior_weight,
            seed=model.random_state)
    return model._design_from_features(feats, record)


def _evaluate_split(
    tracks: pd.DataFrame, folds: list[tuple[np.ndarray, np.ndarray]], template: PopularityModel, *,
    reference: bool, reference_params: Mapping[str, Any], tick: Any, name: str,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    y = tracks[TARGET].to_numpy(dtype="float64")
    methods = ["model", "mean", "linear", "audio_only"] + (["reference_rf"] if reference else [])
    preds = {m: np.full(len(tracks), np.nan) for m in methods}
    covered = np.full(len(tracks), np.nan)
    width = np.full(len(tracks), np.nan)
    tested = np.zeros(len(tracks), dtype=bool)
    for i, (train_idx, test_idx) in enumerate(folds):
        tick(f"{name} fold {i + 1}/{len(folds)}")
        train, test = tracks.iloc[train_idx], tracks.iloc[test_idx]
        model = clone(template).fit(train)
        if model.calibration_folds:
            interval = model.predict_interval(test)
            preds["model"][test_idx] = interval["prediction"].to_numpy()
            lower, upper = interval["lower"].to_numpy(), interval["upper"].to_numpy()
            covered[test_idx] = (y[test_idx] >= lower) & (y[test_idx] <= upper)
            width[test_idx] = upper - lower
        else:
            preds["model"][test_idx] = model.predict(test)
        preds["mean"][test_idx] = y[train_idx].mean()
        train_frame = _baseline_inputs(training_design(model, train))
        test_frame = _baseline_inputs(model.design_frame(test)).reset_index(drop=True)
        preds["linear"][test_idx] = linear_predictions(train_frame, y[train_idx], test_frame)
        audio = clone(template).set_params(feature_set="audio", artist_record=False, calibration_folds=0)
        preds["audio_only"][test_idx] = audio.fit(train).predict(test)
        if reference:
            ref_train, ref_test = reference_features(train_frame), reference_features(test_frame)
            forest = reference_rf(ref_train, **reference_params).fit(ref_train, y[train_idx])
            preds["reference_rf"][test_idx] = forest.predict(ref_test)
        tested[test_idx] = True
    result: dict[str, Any] = {
        "available": True, "folds": len(folds), "test_rows": int(tested.sum()),
        "model": _scores(y[tested], preds["model"][tested]),
        "baselines": {m: _scores(y[tested], preds[m][tested]) for m in methods if m != "model"},
    }
    return result, covered[tested], width[tested]


def evaluate(
    tracks: pd.DataFrame, *, reference: bool = False, n_splits: int = 5, seed: int = 0,
    progress: ProgressCallback | None = None, params: Mapping[str, Any] | None = None,
    reference_params: Mapping[str, Any] | None = None,
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
        Folds of the ``random`` and ``by_artist`` splits.
    seed
        Seed of the folds and the models.
    progress
        Called with (done, total, message) after each fold.
    params
        :class:`PopularityModel` parameters (e.g. tuned ones, or small trees in tests).
    reference_params
        Overrides for :func:`reference_rf` (``n_estimators``, ``n_jobs``); for tests and benchmarks.

    Returns
    -------
    dict
        ``{"splits": {"random"|"by_artist"|"by_time": {"model": {"rmse", "mae", "r2"}, "baselines":
        {"mean", "linear", "audio_only"[, "reference_rf"]}: {...}, ...} or {"available": False, "reason"}},
        "interval": {"level", "coverage", "measured_on", ...}, "rows", "features"}``.
    """
    progress = progress or null_progress
    tracks = checked_tracks(tracks, require_popularity=True)
    ref = features.reference_date(tracks)
    template = PopularityModel(**dict(params or {}))
    # Ages are measured at the collection date of the whole dataset, also for the older training half of
    # the time split (otherwise newer test tracks would get negative ages).
    template.set_params(random_state=seed, reference_date=None if ref is None else ref.strftime("%Y-%m-%d"))
    plans: dict[str, list[tuple[np.ndarray, np.ndarray]] | str] = {}
    plans["random"] = random_folds(len(tracks), n_splits, seed)
    for name, make in (("by_artist", lambda: artist_grouped_folds(tracks, n_splits, seed)),
                       ("by_time", lambda: [time_split(tracks)])):
        try:
            plans[name] = make()
        except SplitUnavailable as exc:
            plans[name] = str(exc)
    total = sum(len(p) for p in plans.values() if not isinstance(p, str))
    done = 0

    def tick(message: str) -> None:
        nonlocal done
        progress(done, total, message)
        done += 1

    splits: dict[str, Any] = {}
    intervals: dict[str, dict[str, float]] = {}
    for name, plan in plans.items():
        if isinstance(plan, str):
            splits[name] = {"available": False, "reason": plan}
            continue
        result, covered, width = _evaluate_split(tracks, plan, template, reference=reference,
                                                 reference_params=dict(reference_params or {}), tick=tick,
                                                 name=name)
        if name == "by_time":
            train_idx, test_idx = plan[0]
            dates = pd.to_datetime(tracks["release_date"])
            result["train_until"] = dates.iloc[train_idx].max().strftime("%Y-%m-%d")
            result["test_from"] = dates.iloc[test_idx].min().strftime("%Y-%m-%d")
        splits[name] = result
        if len(covered) and not np.isnan(covered).all():
            intervals[name] = {"coverage": float(np.nanmean(covered)), "mean_width": float(np.nanmean(width))}
    progress(total, total, "done")
    features_used = template._available_features(features.build_features(tracks, at=ref))[0]
    level = template.interval_level
    measured_on = "by_artist" if "by_artist" in intervals else ("random" if "random" in intervals else None)
    interval: dict[str, Any] = {"level": level, "coverage": None, "measured_on": measured_on}
    if measured_on:
        interval.update(coverage=intervals[measured_on]["coverage"],
                        mean_width=intervals[measured_on]["mean_width"], by_split=intervals)
    return {"splits": splits, "interval": interval, "rows": len(tracks), "features": features_used,
            "target": TARGET}


# --------------------------------------------------------------------------------------------------------
# Training with tuning


@dataclass(frozen=True)
class TrainResult:
    """A fitted model, its evaluation (``metrics.json`` schema) and how it was made."""

    model: PopularityModel
    metrics: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)


DEFAULT_PARAMS: dict[str, Any] = {k: v for k, v in PopularityModel().get_params().items()
                                  if k in {"n_estimators", "learning_rate", "num_leaves", "min_child_samples",
                                           "subsample", "colsample_bytree", "reg_lambda", "new_artist_num_leaves",
                                           "new_artist_min_child_samples", "new_artist_n_estimators"}}


def _sample_params(rng: np.random.Generator, n_rows: int) -> dict[str, Any]:
    learning_rate = float(np.exp(rng.uniform(np.log(0.02), np.log(0.15))))
    return {
        "learning_rate": learning_rate,
        # Fewer trees when each tree learns more: keeps a trial's cost roughly constant.
        "n_estimators": int(np.clip(round(20 / learning_rate * rng.uniform(0.6, 1.6)), 100, 1200)),
        "num_leaves": int(round(np.exp(rng.uniform(np.log(7), np.log(127))))),
        "min_child_samples": int(round(np.exp(rng.uniform(np.log(5), np.log(150))))),
        "subsample": float(rng.uniform(0.5, 1.0)),
        "colsample_bytree": float(rng.uniform(0.4, 1.0)),
        "reg_lambda": float(np.exp(rng.uniform(np.log(1e-3), np.log(30)))),
        "new_artist_num_leaves": int(round(np.exp(rng.uniform(np.log(4), np.log(31))))),
        "new_artist_min_child_samples": int(min(round(np.exp(rng.uniform(np.log(20), np.log(500)))),
                                                max(20, n_rows // 10))),
        "new_artist_n_estimators": int(rng.integers(200, 1001)),
    }


def _tuning_score(tracks: pd.DataFrame, params: Mapping[str, Any], folds: list[tuple[np.ndarray, np.ndarray]],
                  base: Mapping[str, Any]) -> float:
    """Mean of the RMSE on held-out artists and on held-out tracks of known artists (equal weight)."""
    y = tracks[TARGET].to_numpy(dtype="float64")
    errors: dict[str, list[np.ndarray]] = {"seen": [], "new": []}
    for train_idx, test_idx in folds:
        model = PopularityModel(**{**base, **params, "calibration_folds": 0}).fit(tracks.iloc[train_idx])
        test = tracks.iloc[test_idx]
        err = y[test_idx] - model.predict(test)
        seen = model.artist_seen(test)
        errors["seen"].append(err[seen])
        errors["new"].append(err[~seen])
    rmses = [float(np.sqrt(np.mean(np.concatenate(v) ** 2))) for v in errors.values()
             if sum(len(a) for a in v) > 0]
    return float(np.mean(rmses))


def tune(
    tracks: pd.DataFrame, *, budget_seconds: float = 30, seed: int = 0, base: Mapping[str, Any] | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Randomized search of LightGBM hyperparameters within ``budget_seconds``, artist-grouped 3-fold CV.

    Each fold holds out whole artists and single tracks of the other artists; the score is the mean of the
    two RMSEs, so the chosen model is good for new and known artists alike. The defaults are the first
    candidate; a trial starts only if its expected time still fits in the budget. Budget 0 returns the
    defaults untouched. Above 200,000 rows the search runs on a sample of whole artists.

    Returns
    -------
    (best parameters, tuning report)
    """
    progress = progress or null_progress
    base = dict(base or {})
    report: dict[str, Any] = {"budget_seconds": budget_seconds, "trials": 0, "objective":
                              "mean of RMSE on held-out artists and on held-out tracks of known artists "
                              "(3 folds)"}
    defaults = {**DEFAULT_PARAMS, **{k: v for k, v in base.items() if k in DEFAULT_PARAMS}}
    if budget_seconds <= 0:
        report["note"] = "no tuning (budget 0): default hyperparameters"
        return defaults, report
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    sample = _tuning_sample(tracks, rng)
    folds = list(mixed_holdout_folds(sample, 3, seed=seed + 2))
    best, best_score, default_score = dict(defaults), math.inf, math.nan
    per_tree: list[float] = []
    candidate = dict(defaults)
    while True:
        elapsed = time.perf_counter() - start
        progress(int(min(elapsed, budget_seconds)), int(math.ceil(budget_seconds)),
                 f"tuning: trial {report['trials'] + 1}, best RMSE {best_score:.2f}")
        if per_tree:
            expected = float(np.median(per_tree)) * candidate["n_estimators"]
            if elapsed + expected > budget_seconds:
                break
        trial_start = time.perf_counter()
        score = _tuning_score(sample, candidate, folds, {**base, "random_state": seed})
        per_tree.append((time.perf_counter() - trial_start) / candidate["n_estimators"])
        report["trials"] += 1
        if report["trials"] == 1:
            default_score = score
        if score < best_score:
            best, best_score = dict(candidate), score
        if time.perf_counter() - start >= budget_seconds:
            break
        candidate = _sample_params(rng, len(sample))
    progress(int(math.ceil(budget_seconds)), int(math.ceil(budget_seconds)), "tuning done")
    report.update(seconds=round(time.perf_counter() - start, 2), best_score=best_score,
                  default_score=default_score, rows=len(sample))
    return best, report


def _tuning_sample(tracks: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    if len(tracks) <= LARGE_DATA_ROWS:
        return tracks
    try:
        groups = _artist_groups(tracks)
    except SplitUnavailable:
        return tracks.iloc[np.sort(rng.choice(len(tracks), LARGE_DATA_ROWS, replace=False))]
    keep_share = LARGE_DATA_ROWS / len(tracks)
    kept = rng.random(groups.max() + 1) < keep_share
    return tracks.iloc[np.flatnonzero(kept[groups])]


def train(
    tracks: pd.DataFrame, *, budget_seconds: float = 30, seed: int = 0, reference: bool = False,
    progress: ProgressCallback | None = None, n_splits: int = 5, evaluate_model: bool = True,
    params: Mapping[str, Any] | None = None, reference_params: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Tune within the budget, evaluate honestly, and fit the final model on all tracks.

    Parameters
    ----------
    tracks
        Canonical track table with popularity (validated here).
    budget_seconds
        Wall-time budget of the hyperparameter search (0: defaults, no search).
    seed
        Seed of the search, the folds and the model.
    reference
        Include the original project's random forest in the evaluation (slow).
    progress
        Called with (done, total, message) during tuning, evaluation and the final fit.
    n_splits
        Folds of the evaluation.
    evaluate_model
        False skips the evaluation (``metrics`` then only records that); for very large data.
    params
        Fixed :class:`PopularityModel` parameters (e.g. ``n_jobs``, small trees in tests); tuned values
        override the hyperparameters among them.
    reference_params
        Overrides for the reference forest (see :func:`evaluate`).
    """
    progress = progress or null_progress
    start = time.perf_counter()
    clean, report = schema.check_tracks(tracks, require_popularity=True)
    if len(clean) < 10:
        # Said before tuning and evaluation, whose folds would otherwise report a fold's smaller count.
        raise schema.SchemaError([schema.Problem("*", f"has {len(clean)} tracks, too few to fit a model",
                                                 fix="provide at least 10 tracks (hundreds to be useful)")])
    base = dict(params or {})
    best, tuning = tune(clean, budget_seconds=budget_seconds, seed=seed, base=base, progress=progress)
    final_params = {**base, **best, "random_state": seed}
    if evaluate_model:
        metrics = evaluate(clean, reference=reference, n_splits=n_splits, seed=seed, progress=progress,
                           params=final_params, reference_params=reference_params)
    else:
        metrics = {"splits": {}, "interval": {"level": final_params.get("interval_level", 0.8), "coverage": None},
                   "note": "evaluation skipped"}
    progress(0, 1, "final fit")
    fit_start = time.perf_counter()
    model = PopularityModel(**final_params).fit(clean)
    progress(1, 1, "final fit done")
    info = {
        "params": model.get_params(), "tuning": tuning, "rows_in": report.rows_in, "rows_used": report.rows_out,
        "rows_dropped": report.rows_in - report.rows_out, "validation": report.to_dict(),
        "features": list(model.feature_names_), "features_unavailable": dict(model.features_unavailable_),
        "interval": model.calibration_description(),
        "fit_seconds": round(time.perf_counter() - fit_start, 2), "seconds": round(time.perf_counter() - start, 2),
    }
    return TrainResult(model=model, metrics=metrics, info=info)


# --------------------------------------------------------------------------------------------------------
# Artifacts


def save_model(
    model: PopularityModel, out_dir: str | os.PathLike[str], *, metrics: Mapping[str, Any] | None = None,
    data_source: str | None = None, data_sha256: str | None = None, rows_used: int | None = None,
    rows_dropped: int | None = None,
) -> Path:
    """Write ``model`` to ``out_dir`` atomically: LightGBM text model, JSON preprocessing, manifest.

    Files: ``model.txt`` (LightGBM native; ``model_new_artists.txt`` for the new-artist booster),
    ``preprocessing.json`` (features, categories, reference date,
    track-record settings, interval offsets, training summary), ``artist_tracks.csv.gz`` (training tracks'
    artist and popularity, when the track record is used), ``metrics.json`` (when given) and
    ``manifest.json`` with the sha256 of every file. Nothing is pickled.
    """
    model._check_fitted()
    out_dir = Path(out_dir)
    with artifacts.atomic_directory(out_dir) as tmp:
        (tmp / MODEL_FILE).write_text(model.booster_.model_to_string(), encoding="utf-8")
        new_artist_booster = getattr(model, "new_artist_booster_", None)
        if new_artist_booster is not None:
            (tmp / NEW_ARTIST_MODEL_FILE).write_text(new_artist_booster.model_to_string(), encoding="utf-8")
        artifacts.write_json_atomic(tmp / PREPROCESSING_FILE, {
            "params": model.get_params(),
            "feature_names": list(model.feature_names_),
            "features_unavailable": dict(model.features_unavailable_),
            "categories": model.categorical_features_,
            "reference_date": model.reference_date_,
            "target": TARGET,
            "target_mean": model.target_mean_,
            "n_train_rows": model.n_train_rows_,
            "artist_tracks": ARTIST_TRACKS_FILE if model.artist_tracks_ is not None else None,
            "new_artist_model": NEW_ARTIST_MODEL_FILE if new_artist_booster is not None else None,
            "interval": {"level": model.interval_level, "offsets": model.interval_offsets_,
                         "calibration_size": model.calibration_size_,
                         "method": model.calibration_method_},
            "training_summary": model.training_summary_,
        })
        if model.artist_tracks_ is not None:
            model.artist_tracks_.to_csv(tmp / ARTIST_TRACKS_FILE, index=False, compression="gzip")
        if metrics is not None:
            artifacts.write_json_atomic(tmp / METRICS_FILE, dict(metrics))
        artifacts.write_manifest(
            tmp, KIND, data_source=data_source, data_sha256=data_sha256,
            rows_used=rows_used if rows_used is not None else model.n_train_rows_, rows_dropped=rows_dropped,
            features=list(model.feature_names_), target=TARGET, model_format="lightgbm-text",
            interval_level=model.interval_level,
        )
    return out_dir


def _read_booster(path: Path):
    import lightgbm as lgb

    try:
        return lgb.Booster(model_str=path.read_text(encoding="utf-8"))
    except (lgb.basic.LightGBMError, OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not a readable LightGBM model ({exc}); rebuild it with popdrivers train") \
            from exc


def load_model(model_dir: str | os.PathLike[str]) -> PopularityModel:
    """Load a model saved by :func:`save_model`, after verifying every file against the manifest.

    Raises
    ------
    ArtifactError
        When the folder is missing, incomplete, from another format version, or a file was modified.
    """
    model_dir = Path(model_dir)
    manifest = artifacts.verify_manifest(model_dir, kind=KIND)
    prep = artifacts.read_json(model_dir / PREPROCESSING_FILE)
    booster = _read_booster(model_dir / MODEL_FILE)
    new_artist_booster = _read_booster(model_dir / prep["new_artist_model"]) if prep.get("new_artist_model") else None
    if booster.feature_name() != prep["feature_names"]:
        raise ArtifactError(f"{model_dir}: the model's features {booster.feature_name()} do not match "
                            f"{PREPROCESSING_FILE} {prep['feature_names']}; rebuild it with popdrivers train")
    valid = set(PopularityModel().get_params())
    model = PopularityModel(**{k: v for k, v in prep["params"].items() if k in valid})
    model.booster_ = booster
    model.new_artist_booster_ = new_artist_booster
    model.feature_names_ = list(prep["feature_names"])
    model.features_unavailable_ = dict(prep.get("features_unavailable", {}))
    model.categorical_features_ = {k: list(v) for k, v in prep["categories"].items()}
    model.n_features_in_ = len(model.feature_names_)
    model.reference_date_ = prep["reference_date"]
    model.target_mean_ = float(prep["target_mean"])
    model.n_train_rows_ = int(prep["n_train_rows"])
    model.interval_offsets_ = {k: list(v) for k, v in prep["interval"]["offsets"].items()}
    model.calibration_size_ = dict(prep["interval"].get("calibration_size", {}))
    model.calibration_method_ = prep["interval"].get("method") or ("cross" if model.interval_offsets_ else "none")
    model.training_summary_ = prep.get("training_summary", {})
    model.artist_tracks_ = None
    if prep.get("artist_tracks"):
        table = pd.read_csv(model_dir / prep["artist_tracks"], dtype={"track_id": "string", "artist_id": "string"},
                            compression="gzip")
        table[TARGET] = table[TARGET].astype("int16")
        model.artist_tracks_ = table
        model._index_artist_tracks()
    model.manifest_ = manifest
    metrics_path = model_dir / METRICS_FILE
    model.metrics_ = artifacts.read_json(metrics_path) if metrics_path.exists() else None
    return model
