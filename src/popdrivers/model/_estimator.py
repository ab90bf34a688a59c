"""PopularityModel: LightGBM on the canonical track table, the artist's track record, conformal intervals.

What the model is
-----------------
A LightGBM regressor on the derived columns of :func:`popdrivers.features.build_features`, using whatever
of them the data has (a table without ``tempo``, ``explicit`` or followers still trains; the model records
which features it used). Optionally one more feature, the artist's *track record*: the mean popularity of
the artist's **other** tracks, shrunk toward the overall mean. During training it is computed strictly out
of fold (a track never sees its own popularity); at prediction time it comes from the stored training
table and is NaN for an artist the model has never seen. Tracks of such new artists are predicted by a
second, heavily regularised booster trained on every track without the record (monotone in followers), so
the unseen-artist evaluation measures the new-artist case honestly.

Prediction intervals are split conformal (:mod:`popdrivers.model._conformal`), Mondrian by "artist seen in
training" vs "new artist".
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone

from popdrivers import features, schema
from popdrivers.errors import PopdriversError
from popdrivers.features import ARTIST_RECORD, MONOTONE_INCREASING
from popdrivers.model._calibration import (
    CALIBRATIONS,
    calibrated_state,
    calibration_method,
    describe_calibration,
)
from popdrivers.model._conformal import Interval, Residuals
from popdrivers.model._design import FEATURE_SETS, FeatureLayout
from popdrivers.model._lightgbm import load_lightgbm
from popdrivers.model._parallel import run_parallel
from popdrivers.model._shift import TrainingReference
from popdrivers.model._splits import DEFAULT_FOLDS, MIN_FIT_ROWS

TARGET = schema.TARGET
# Below this many rows a LightGBM fit runs on one thread: two threads that wait passively for each other lose
# more on every histogram than they gain (measured: 100k rows 4.5 s on one thread, 7.2 s on two).
MULTITHREAD_FIT_ROWS = 2_000_000
# The new-artist booster's "auto" tree count: early stopping (patience AUTO_TREES_PATIENCE) on AUTO_HOLDOUT_SHARE of
# the artists held out whole, at most AUTO_TREES_CAP trees, on a sample of whole artists of about AUTO_SAMPLE_ROWS
# tracks for big tables; with fewer than AUTO_MIN_ARTISTS artists (nothing to hold out) it uses
# AUTO_FALLBACK_TREES, the fixed default it replaced.
AUTO_TREES_CAP = 2000
AUTO_TREES_PATIENCE = 100
AUTO_HOLDOUT_SHARE = 0.2
AUTO_MIN_ARTISTS = 10
AUTO_FALLBACK_TREES = 600
AUTO_SAMPLE_ROWS = 100_000


@dataclass(frozen=True)
class FittedState:
    """Everything a fitted :class:`PopularityModel` has learned (what ``fit``, ``load_model`` and the Dask path
    produce, and what :meth:`PopularityModel.set_fitted` installs)."""

    layout: FeatureLayout
    booster: Any
    new_artist_booster: Any | None
    reference_date: str | None
    target_mean: float
    n_train_rows: int
    artist_tracks: pd.DataFrame | None
    interval: Interval
    training_summary: Mapping[str, Any] = field(default_factory=dict)
    # Families of the training rows' features_source (schema.feature_source_family): what the model may score.
    feature_sources: tuple[str, ...] = ("spotify",)
    # What the model keeps of its training table to say when tracks to score are unlike it (model._shift).
    reference: TrainingReference | None = None


def training_summary(tracks: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per numeric canonical column: median, 1st/99th percentile, min, max (defaults and ranges for the app)."""
    summary: dict[str, dict[str, Any]] = {}
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


class PopularityModel(RegressorMixin, BaseEstimator):
    """LightGBM popularity model on the canonical track table, with conformal 80% intervals.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples, subsample, colsample_bytree, reg_lambda
        LightGBM hyperparameters (see :func:`popdrivers.model.train` for tuning them).
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
        its splits to span several artists, so it learns what carries over to an unseen artist. Its number of
        trees, ``"auto"`` by default, is found by early stopping on 20% of the artists held out whole, then
        the booster is refitted on every track with 10% more trees: how long it may learn before it fits
        artist-specific noise depends on the data (about 150 trees on catalog-2022, which has followers; about
        600 on playlist-songs-2020, which has none).
    new_artist_share
        Share of artists whose track record is hidden during training (single-booster mode only).
    record_prior_weight
        Shrinkage of the track record toward the overall mean, in pseudo-tracks.
    monotone
        Constrain the new-artist booster to be non-decreasing in artist followers: a prior that keeps it
        from fitting artist-specific noise in followers, which does not carry over to unseen artists.
    feature_set
        ``"all"`` (every feature the data has), ``"audio"`` (Spotify audio features only, a baseline) or
        ``"sound"`` (what popdrivers measures from a recording plus followers, genre, explicit and release date:
        the model that predicts from a song; no track record).
    interval_level
        Coverage of :meth:`predict_interval` (0.8 = 80%).
    calibration_folds
        Folds of the out-of-fold refits that calibrate the interval (``"cross"``); 0: no interval.
    calibration
        How the interval is calibrated: ``"cross"`` (out-of-fold refits on ``calibration_folds`` mixed folds,
        stopping once ``calibration_max_residuals`` residuals are pooled; boosters on every track),
        ``"holdout_refit"`` (one refit without a held-out part of 10% of the artists and 1% of the other
        tracks; boosters on every track), ``"split"`` (no refit: the boosters are fitted without that part),
        or ``"auto"``: cross up to ``split_calibration_rows`` tracks, split above.
    calibration_max_residuals
        Cross calibration stops refitting once this many residuals are pooled: the quantiles are then
        estimated to well under a point, and each refit is a full fit.
    split_calibration_rows
        Above this many tracks ``"auto"`` calibrates by ``"split"``: a refit would double the cost of a
        million-track fit for a gain 11% more rows cannot buy at that size (<0.1% RMSE at 1M tracks).
    early_stopping_rounds
        With ``eval_tracks`` given to :meth:`fit`: stop each booster once its error on them has not improved
        for this many rounds (used by tuning; the fitted boosters keep their best iteration).
    reference_date
        Date track ages are measured at; default the training data's collection date or newest release.
    n_jobs
        Fits run side by side (the main and new-artist boosters); each LightGBM fit uses one thread below
        2,000,000 rows (faster on small machines, see ``MULTITHREAD_FIT_ROWS``). Prediction of large batches
        uses ``n_jobs`` threads.
    random_state
        Seed for folds, masking and LightGBM's bagging.
    """

    def __init__(
        self, n_estimators: int = 400, learning_rate: float = 0.07, num_leaves: int = 63,
        min_child_samples: int = 20, subsample: float = 0.8, colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0, artist_record: bool = True, new_artist_model: bool = True,
        new_artist_num_leaves: int = 7, new_artist_min_child_samples: int | None = None,
        new_artist_n_estimators: int | str = "auto", new_artist_share: float = 0.25,
        record_prior_weight: float = 3.0,
        monotone: bool = True, feature_set: str = "all", interval_level: float = 0.8,
        calibration_folds: int = DEFAULT_FOLDS,
        calibration: str = "auto", calibration_max_residuals: int = 20_000, split_calibration_rows: int = 200_000,
        early_stopping_rounds: int | None = None, reference_date: str | None = None, n_jobs: int = 2,
        random_state: int = 0,
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
        self.calibration = calibration
        self.calibration_max_residuals = calibration_max_residuals
        self.split_calibration_rows = split_calibration_rows
        self.early_stopping_rounds = early_stopping_rounds
        self.reference_date = reference_date
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ---- parameters ------------------------------------------------------------------------------------

    def check_params(self) -> None:
        """Raise :class:`ValueError` for a parameter outside its range, saying what is accepted."""
        if self.feature_set not in FEATURE_SETS:
            raise ValueError(f"feature_set={self.feature_set!r}: use one of {', '.join(FEATURE_SETS)}")
        if not 0 < self.interval_level < 1:
            raise ValueError(f"interval_level={self.interval_level!r}: use a share between 0 and 1, e.g. 0.8")
        if not 0 <= self.new_artist_share < 1:
            raise ValueError(f"new_artist_share={self.new_artist_share!r}: use a share in [0, 1)")
        if self.calibration_folds < 0 or self.calibration_folds == 1:
            raise ValueError(f"calibration_folds={self.calibration_folds!r}: use 0 (no intervals) or >= 2")
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration={self.calibration!r}: use one of {', '.join(CALIBRATIONS)}")
        if self.new_artist_n_estimators != "auto" and not (isinstance(self.new_artist_n_estimators, int | np.integer)
                                                           and self.new_artist_n_estimators >= 1):
            raise ValueError(f"new_artist_n_estimators={self.new_artist_n_estimators!r}: use 'auto' or a count >= 1")
        if self.early_stopping_rounds is not None and self.early_stopping_rounds < 1:
            raise ValueError(f"early_stopping_rounds={self.early_stopping_rounds!r}: use None or >= 1")

    def calibration_method(self, n_rows: int) -> str:
        """How a fit on ``n_rows`` tracks calibrates its interval: cross, holdout_refit, split or none."""
        return calibration_method(self.calibration, self.calibration_folds, self.split_calibration_rows, n_rows)

    @property
    def record_hidden_share(self) -> float:
        """Share of artists whose track record is hidden in training: none when a new-artist booster exists."""
        return 0.0 if self.new_artist_model else float(self.new_artist_share)

    def booster_params(self, feature_names: Sequence[str], *, new_artist: bool = False,
                       n_rows: int | None = None, threads: int = 1, trees: int | None = None) -> dict[str, Any]:
        """LightGBM parameters of the main booster, or of the new-artist booster (``new_artist=True``).

        ``trees`` overrides the number of trees (the new-artist booster's ``"auto"`` count once it is known;
        unresolved, ``"auto"`` means :data:`AUTO_TREES_CAP`, a cap for early stopping).
        """
        names = list(feature_names)
        params = dict(
            n_estimators=int(self.n_estimators), learning_rate=float(self.learning_rate),
            num_leaves=int(self.num_leaves), min_child_samples=int(self.min_child_samples),
            subsample=float(self.subsample), subsample_freq=1 if self.subsample < 1 else 0,
            colsample_bytree=float(self.colsample_bytree), reg_lambda=float(self.reg_lambda),
            n_jobs=int(threads), random_state=int(self.random_state), verbose=-1,
        )
        if new_artist:
            leaf = self.new_artist_min_child_samples
            if leaf is None:
                leaf = max(int(self.min_child_samples), min(300, (n_rows or 0) // 50))
            count = AUTO_TREES_CAP if self.new_artist_n_estimators == "auto" else int(self.new_artist_n_estimators)
            params.update(n_estimators=count, num_leaves=int(self.new_artist_num_leaves),
                          min_child_samples=int(leaf))
        if trees is not None:
            params["n_estimators"] = int(trees)
            if self.monotone and names:
                params["monotone_constraints"] = [1 if n in MONOTONE_INCREASING else 0 for n in names]
        return params

    # ---- fitting ---------------------------------------------------------------------------------------

    def fit(self, tracks: pd.DataFrame, y: Sequence[float] | None = None, *,
            oof_residuals: Residuals | None = None, eval_tracks: pd.DataFrame | None = None) -> PopularityModel:
        """Fit on a canonical track table (validated here); ``y`` defaults to ``tracks['popularity']``.

        Parameters
        ----------
        tracks
            Canonical track table with popularity.
        y
            Popularity, if not in ``tracks``.
        oof_residuals
            Out-of-fold residuals of models with these same parameters on mixed folds of these same tracks
            (what :func:`popdrivers.model.train` gets from its evaluation). Given, a ``"cross"`` calibration
            uses them instead of refitting.
        eval_tracks
            Held-out tracks with popularity for early stopping (``early_stopping_rounds``).

        Returns
        -------
        self
        """
        self.check_params()
        if y is not None:
            tracks = tracks.assign(**{TARGET: np.asarray(y)})
        tracks = schema.checked_tracks(tracks, require_popularity=True)
        if len(tracks) < MIN_FIT_ROWS:
            raise schema.SchemaError([schema.Problem("*", f"has {len(tracks)} tracks, too few to fit a model",
                                                     fix="provide at least 10 tracks (hundreds to be useful)")])
        ref = pd.Timestamp(self.reference_date) if self.reference_date is not None else \
            features.reference_date(tracks)
        reference_date = None if ref is None else ref.strftime("%Y-%m-%d")
        state = calibrated_state(self, tracks, reference_date, eval_tracks=eval_tracks, oof_residuals=oof_residuals)
        reference = TrainingReference.from_tracks(tracks, state.layout.names, state.layout.source_columns(),
                                                  reference_date, seed=self.random_state)
        return self.set_fitted(replace(state, training_summary=training_summary(tracks), reference=reference))

    def point_model(self, state: FittedState) -> PopularityModel:
        """A copy of this model with ``state`` installed and no interval (what calibration measures)."""
        return clone(self).set_params(calibration_folds=0).set_fitted(state)

    def fit_boosters(self, tracks: pd.DataFrame, reference_date: str | None,
                     eval_tracks: pd.DataFrame | None = None) -> FittedState:
        """Fit the boosters (and the track-record table) on validated ``tracks``; no interval."""
        feats = features.build_features(tracks, at=reference_date)
        layout = FeatureLayout.choose(feats, feature_set=self.feature_set, artist_record=self.artist_record)
        y_values = tracks[TARGET].to_numpy(dtype="float64")
        target_mean = float(y_values.mean())
        record = None
        artist_tracks = None
        if layout.uses_record:
            artist_tracks = features.artist_track_table(tracks)
            record = features.out_of_fold_artist_record(
                tracks["artist_id"], y_values, n_folds=features.TRACK_RECORD_FOLDS,
                new_artist_share=self.record_hidden_share, prior_weight=self.record_prior_weight,
                seed=self.random_state)
        matrix = layout.matrix(layout.frame(feats, record))
        state = FittedState(layout=layout, booster=None, new_artist_booster=None, reference_date=reference_date,
                            target_mean=target_mean, n_train_rows=len(tracks), artist_tracks=artist_tracks,
                            interval=Interval(self.interval_level),
                            feature_sources=tuple(sorted(set(schema.feature_source_families(tracks)))))
        evaluation = None
        if eval_tracks is not None and self.early_stopping_rounds:
            # Early-stopping rows as the fitted model will see them: track record from the training tracks.
            probe = self.point_model(replace(state, booster=_NoBooster()))
            eval_tracks = schema.checked_tracks(eval_tracks, require_popularity=True)
            eval_matrix, _ = probe.design_matrix(eval_tracks)
            evaluation = (eval_matrix, eval_tracks[TARGET].to_numpy(dtype="float64"), probe.artist_seen(eval_tracks))
        two = layout.uses_record and self.new_artist_model
        threads = 1 if len(tracks) < MULTITHREAD_FIT_ROWS else max(1, int(self.n_jobs) // (2 if two else 1))
        names = list(layout.names)
        jobs = [lambda: self._fit_booster(matrix, y_values, layout, names, new_artist=False, threads=threads,
                                          evaluation=evaluation)]
        if two:
            keep = layout.without_record
            trees = None
            if self.new_artist_n_estimators == "auto" and evaluation is None:
                trees = self._auto_new_artist_trees(matrix[:, keep], y_values, layout,
                                                    [names[i] for i in keep], tracks["artist_id"], threads)
            jobs.append(lambda: self._fit_booster(matrix[:, keep], y_values, layout, [names[i] for i in keep],
                                                  new_artist=True, threads=threads, evaluation=evaluation,
                                                  trees=trees))
        boosters = run_parallel(jobs, int(self.n_jobs))
        return replace(state, booster=boosters[0], new_artist_booster=boosters[1] if two else None)

    def _auto_new_artist_trees(self, matrix: np.ndarray, y: np.ndarray, layout: FeatureLayout, names: list[str],
                               artist_ids: pd.Series, threads: int) -> int:
        """Trees of the new-artist booster: early stopping on held-out artists, plus 10% for the refit on all."""
        lgb = load_lightgbm()

        codes, uniques = pd.factorize(artist_ids.astype("string"), use_na_sentinel=True)
        if len(uniques) < AUTO_MIN_ARTISTS:
            return AUTO_FALLBACK_TREES
        rng = np.random.default_rng(self.random_state + 5)
        if len(codes) > AUTO_SAMPLE_ROWS:
            # Big tables: the search runs on a sample of whole artists (its cost stays that of a small fit).
            kept_artists = rng.random(len(uniques)) < AUTO_SAMPLE_ROWS / len(codes)
            kept = (codes >= 0) & kept_artists[np.where(codes >= 0, codes, 0)]
            matrix, y, codes = matrix[kept], y[kept], codes[kept]
        held_artists = rng.random(len(uniques)) < AUTO_HOLDOUT_SHARE
        held = (codes >= 0) & held_artists[np.where(codes >= 0, codes, 0)]
        if held.sum() < MIN_FIT_ROWS or (~held).sum() < MIN_FIT_ROWS:
            return AUTO_FALLBACK_TREES
        regressor = lgb.LGBMRegressor(**self.booster_params(names, new_artist=True, n_rows=int((~held).sum()),
                                                            threads=threads, trees=AUTO_TREES_CAP))
        categorical = [i for i, n in enumerate(names) if n in layout.categories]
        held_out = (matrix[held], y[held])
        eval_args = {"eval_X": (held_out[0],), "eval_y": (held_out[1],)} if _eval_api() else {"eval_set": [held_out]}
        regressor.fit(matrix[~held], y[~held], feature_name=names, categorical_feature=categorical or "auto",
                      callbacks=[lgb.early_stopping(AUTO_TREES_PATIENCE, verbose=False)], **eval_args)
        best = int(regressor.booster_.best_iteration or regressor.booster_.current_iteration())
        return max(1, int(round(1.1 * best)))

    def _fit_booster(self, matrix: np.ndarray, y: np.ndarray, layout: FeatureLayout, names: list[str], *,
                     new_artist: bool, threads: int, evaluation: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
                     trees: int | None = None):
        lgb = load_lightgbm()

        regressor = lgb.LGBMRegressor(**self.booster_params(names, new_artist=new_artist, n_rows=len(y),
                                                            threads=threads, trees=trees))
        categorical = [i for i, n in enumerate(names) if n in layout.categories]
        fit_args: dict[str, Any] = {}
        if evaluation is not None:
            eval_matrix, eval_y, seen = evaluation
            # Each booster stops on the tracks it will answer for: with two boosters the main one answers for
            # known artists only.
            two = layout.uses_record and self.new_artist_model
            rows = ~seen if new_artist else (seen if two else np.ones(len(seen), dtype=bool))
            if rows.any():
                columns = [layout.names.index(n) for n in names]
                held = (eval_matrix[rows][:, columns], eval_y[rows])
                fit_args = {"eval_X": (held[0],), "eval_y": (held[1],)} if _eval_api() else {"eval_set": [held]}
                fit_args["callbacks"] = [lgb.early_stopping(int(self.early_stopping_rounds), verbose=False)]
        regressor.fit(matrix, y, feature_name=names, categorical_feature=categorical or "auto", **fit_args)
        return regressor.booster_

    def held_out_residuals(self, held_out: pd.DataFrame) -> Residuals:
        """Signed residuals (actual - predicted) on tracks with popularity, by artist seen in training or not."""
        matrix, _ = self.design_matrix(held_out)
        resid = held_out[TARGET].to_numpy(dtype="float64") - np.clip(self.predict_raw(matrix), 0.0, 100.0)
        seen = self.artist_seen(held_out)
        return Residuals(resid[seen], resid[~seen])

    def set_fitted(self, state: FittedState) -> PopularityModel:
        """Install a fitted state (from :meth:`fit`, :func:`popdrivers.model.load_model` or a Dask fit).

        ``state_`` is the one fitted attribute; the others (``feature_names_``, ``booster_``, ...) read it.
        """
        self.state_ = state
        if state.artist_tracks is not None:
            self._index_artist_tracks(state.artist_tracks)
        return self

    # ---- learned attributes, all read from ``state_`` ------------------------------------------------

    @property
    def layout_(self) -> FeatureLayout:
        return self.fitted_state.layout

    @property
    def feature_names_(self) -> list[str]:
        return list(self.fitted_state.layout.names)

    @property
    def n_features_in_(self) -> int:
        return len(self.fitted_state.layout.names)

    @property
    def categorical_features_(self) -> dict[str, list[Any]]:
        return {k: list(v) for k, v in self.fitted_state.layout.categories.items()}

    @property
    def features_unavailable_(self) -> dict[str, str]:
        return dict(self.fitted_state.layout.unavailable)

    @property
    def booster_(self) -> Any:
        return self.fitted_state.booster

    @property
    def new_artist_booster_(self) -> Any | None:
        return self.fitted_state.new_artist_booster

    @property
    def reference_date_(self) -> str | None:
        return self.fitted_state.reference_date

    @property
    def target_mean_(self) -> float:
        return float(self.fitted_state.target_mean)

    @property
    def n_train_rows_(self) -> int:
        return int(self.fitted_state.n_train_rows)

    @property
    def interval_(self) -> Interval:
        return self.fitted_state.interval

    @property
    def interval_offsets_(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self.fitted_state.interval.offsets.items()}

    @property
    def calibration_size_(self) -> dict[str, int]:
        return dict(self.fitted_state.interval.sizes)

    @property
    def calibration_method_(self) -> str:
        return self.fitted_state.interval.method

    @property
    def training_summary_(self) -> dict[str, Any]:
        return dict(self.fitted_state.training_summary)

    @property
    def artist_tracks_(self) -> pd.DataFrame | None:
        return self.fitted_state.artist_tracks

    def calibration_description(self) -> str:
        """One sentence on how the interval was calibrated and how many tracks the boosters were fitted on."""
        self._check_fitted()
        return describe_calibration(self.interval_, self.n_train_rows_, self.split_calibration_rows)

    # ---- features at prediction time ------------------------------------------------------------------

    def _index_artist_tracks(self, table: pd.DataFrame) -> None:
        grouped = table.groupby("artist_id", sort=False)[TARGET]
        self._artist_sums = grouped.sum().astype("float64")
        self._artist_counts = grouped.size().astype("float64")
        self._track_index = pd.Index(table["track_id"])
        self._track_popularity = table[TARGET].to_numpy(dtype="float64")
        self._track_artist_pos = self._artist_sums.index.get_indexer(table["artist_id"])

    def _artist_record_for(self, tracks: pd.DataFrame) -> np.ndarray:
        """Shrunk mean popularity of each track's artist's other training tracks; NaN for unseen artists."""
        if "artist_id" not in tracks.columns or self.artist_tracks_ is None:
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
        return features.shrunk_mean(sums, counts, self.target_mean_, self.record_prior_weight)

    def artist_seen(self, tracks: pd.DataFrame) -> np.ndarray:
        """Boolean per track: does the model know this track's artist from other training tracks?"""
        self._check_fitted()
        if self.artist_tracks_ is None:
            return np.zeros(len(tracks), dtype=bool)
        return ~np.isnan(self._artist_record_for(tracks))

    def design_frame(self, tracks: pd.DataFrame, *, keep_rows: bool = True, absent: str = "error") -> pd.DataFrame:
        """The model's input for ``tracks``: one column per feature (categories as labels), validated input.

        The index is the track id. This is what :mod:`popdrivers.explain` attributes predictions to.
        ``absent="error"`` refuses a table without a column a feature comes from; ``"empty"`` gives such a
        feature no values (NaN), which :func:`popdrivers.model.score_tracks` then predicts as unknown.
        """
        self._check_fitted()
        if not isinstance(tracks, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame of tracks, got {type(tracks).__name__}")
        if absent == "empty":
            columns = self.layout_.absent_sources(tracks)
            if columns:
                tracks = tracks.assign(**dict.fromkeys(columns, np.nan))
        else:
            # LightGBM would read an empty feature it always saw filled as 0 (0 dB, 0 followers): silently wrong,
            # so the library refuses; score_tracks (CLI predict, the app) predicts it as unknown instead.
            self.layout_.require_sources(tracks)
        # Only the columns the features come from are checked and used (a problem in a column the model does not
        # read cannot change a prediction), which also makes one row fast.
        self.check_feature_sources(tracks)
        needed = self.layout_.source_columns()
        tracks = schema.checked_tracks(tracks.loc[:, [c for c in tracks.columns if c in needed]],
                                       require_popularity=False, keep_rows=keep_rows)
        feats = features.build_features(tracks, at=self.reference_date_)
        record = self._artist_record_for(tracks) if self.layout_.uses_record else None
        frame = self.layout_.frame(feats, record)
        frame.index = pd.Index(tracks["track_id"].astype("string"), name="track_id")
        return frame

    @property
    def accepted_feature_sources(self) -> tuple[str, ...]:
        """Feature-source families this model scores: those it was trained on; a "sound" model also takes
        features measured from audio (its tempo, key, mode, loudness and duration are on Spotify's scales)."""
        sources = set(self.fitted_state.feature_sources)
        if self.feature_set == "sound":
            sources |= {"audio", "spotify"}
        return tuple(sorted(sources))

    def check_feature_sources(self, tracks: pd.DataFrame) -> None:
        """Refuse rows whose audio features come from a source the model was not trained on (never mixed silently).

        Raises
        ------
        SchemaError
            Naming the source, the rows and the fix.
        """
        families = schema.feature_source_families(tracks)
        foreign = ~families.isin(self.accepted_feature_sources)
        if not foreign.any():
            return
        found = ", ".join(sorted(set(families[foreign])))
        trained = ", ".join(self.fitted_state.feature_sources)
        fix = ("score them with the model's audio model (popdrivers predict --audio, or a table from popdrivers "
               "analyze), which is trained for features measured from the sound" if "audio" in set(families[foreign])
               else "train a model on data whose features come from that source, or correct features_source")
        raise schema.SchemaError([schema.Problem(
            "features_source", f"has rows whose audio features come from {found}; this model was trained on "
            f"features from {trained} and does not mix sources", rows=int(foreign.sum()),
            examples=tuple(str(v) for v in pd.unique(tracks.loc[foreign.to_numpy(), "features_source"])[:3])
            if "features_source" in tracks.columns else (), fix=fix)])

    def to_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The float matrix LightGBM sees for a :meth:`design_frame`."""
        self._check_fitted()
        return self.layout_.matrix(frame)

    def design_matrix(self, tracks: pd.DataFrame) -> tuple[np.ndarray, pd.Index]:
        """(float matrix as LightGBM sees it, track ids) for ``tracks``."""
        frame = self.design_frame(tracks)
        return self.layout_.matrix(frame), frame.index

    def training_design(self, tracks: pd.DataFrame) -> pd.DataFrame:
        """The design frame this model was fitted on for ``tracks`` (its training table): record out of fold."""
        self._check_fitted()
        tracks = schema.checked_tracks(tracks, require_popularity=True)
        feats = features.build_features(tracks, at=self.reference_date_)
        record = None
        if self.layout_.uses_record:
            record = features.out_of_fold_artist_record(
                tracks["artist_id"], tracks[TARGET].to_numpy(dtype="float64"), n_folds=features.TRACK_RECORD_FOLDS,
                new_artist_share=self.record_hidden_share, prior_weight=self.record_prior_weight,
                seed=self.random_state)
        return self.layout_.frame(feats, record)

    # ---- prediction ----------------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "state_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this PopularityModel is not fitted yet: call fit() or load_model(DIR) first")

    def _threads(self, rows: int) -> int:
        # Threads only pay off on big batches; one row is fastest on one thread.
        return 1 if rows < 20_000 else int(self.n_jobs)

    def _routes(self, matrix: np.ndarray) -> np.ndarray | None:
        """Rows for the new-artist booster (no track record), or None when there is one booster."""
        if self.new_artist_booster_ is None:
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
            out[new] = self.new_artist_booster_.predict(matrix[new][:, self.layout_.without_record],
                                                        num_threads=threads)
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
            keep = self.layout_.without_record
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

    def interval_for(self, prediction: np.ndarray, frame: pd.DataFrame,
                     interval: Interval | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) of the interval around ``prediction`` for the rows of a :meth:`design_frame`.

        ``interval`` replaces the model's own (the widened one of tracks that lack features).
        """
        self._check_fitted()
        interval = self.interval_ if interval is None else interval
        if not interval.available:
            raise PopdriversError("this model was fitted with calibration_folds=0, so it has no prediction "
                                  "intervals; refit with calibration_folds >= 2")
        if self.layout_.uses_record:
            seen = ~np.isnan(frame[ARTIST_RECORD].to_numpy(dtype="float64"))
        else:
            seen = np.zeros(len(frame), dtype=bool)
        return interval.bounds(prediction, seen)

    def predict_interval(self, tracks: pd.DataFrame) -> pd.DataFrame:
        """Prediction with its conformal interval (``interval_level``, 80% by default) per input row.

        Returns
        -------
        DataFrame indexed by track id with columns ``prediction``, ``lower``, ``upper`` (all within 0..100).
        Tracks of artists the model knows get the "seen artist" width, others the wider "new artist" width.
        """
        self._check_fitted()
        if not self.interval_.available:
            raise PopdriversError("this model was fitted with calibration_folds=0, so it has no prediction "
                                  "intervals; refit with calibration_folds >= 2")
        frame = self.design_frame(tracks)
        pred = np.clip(self.predict_raw(self.layout_.matrix(frame)), 0.0, 100.0)
        lower, upper = self.interval_for(pred, frame)
        return pd.DataFrame({"prediction": pred, "lower": lower, "upper": upper}, index=frame.index)

    @property
    def fitted_state(self) -> FittedState:
        """What the model has learned (see :class:`FittedState`)."""
        self._check_fitted()
        return self.state_

    @property
    def features_used(self) -> list[str]:
        """Feature names the fitted model uses, in order."""
        self._check_fitted()
        return list(self.feature_names_)

    @property
    def best_iterations(self) -> dict[str, int]:
        """Trees each booster uses (fewer than ``n_estimators`` after early stopping)."""
        self._check_fitted()
        out = {"main": _trees(self.booster_)}
        if self.new_artist_booster_ is not None:
            out["new_artist"] = _trees(self.new_artist_booster_)
        return out


@functools.cache
def _eval_api() -> bool:
    """LightGBM 4.6 renamed ``eval_set`` to ``eval_X`` / ``eval_y`` (and warns about the old name)."""
    import inspect

    lgb = load_lightgbm()

    return "eval_X" in inspect.signature(lgb.LGBMRegressor.fit).parameters


def _trees(booster: Any) -> int:
    best = int(getattr(booster, "best_iteration", 0) or 0)
    return best if best > 0 else int(booster.current_iteration())


class _NoBooster:
    """Stands in for a booster while the early-stopping rows are designed (nothing is predicted with it)."""
