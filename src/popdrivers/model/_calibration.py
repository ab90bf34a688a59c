"""How a model's prediction interval is calibrated: where its held-out residuals come from.

The strategies (see :mod:`popdrivers.model._conformal` for the interval itself):

``cross``          out-of-fold refits on mixed folds until enough residuals are pooled; boosters on every track
``holdout_refit``  one refit without a held-out part (10% of the artists whole, 1% of the other tracks);
                   boosters on every track
``split``          the boosters themselves are fitted without that part (no refit: big tables)
``auto``           cross up to ``split_calibration_rows`` tracks, split above
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pandas as pd
from sklearn.base import clone

from popdrivers import features, schema
from popdrivers.model._conformal import Interval, Residuals
from popdrivers.model._splits import MIN_FIT_ROWS, mixed_folds

if TYPE_CHECKING:  # the estimator calls this module; only its type is needed here
    from popdrivers.model._estimator import FittedState, PopularityModel

CALIBRATIONS = ("auto", "cross", "holdout_refit", "split")
# The held-out part of the one-fit calibrations ("split", "holdout_refit"): fold 0 of this many mixed folds,
# i.e. 10% of the artists whole plus 1% of the other tracks.
HOLDOUT_FOLDS = 10


def calibration_method(calibration: str, calibration_folds: int, split_calibration_rows: int, n_rows: int) -> str:
    """The strategy a fit on ``n_rows`` tracks uses: cross, holdout_refit, split or none."""
    if not calibration_folds:
        return "none"
    if calibration == "auto":
        return "split" if n_rows > split_calibration_rows else "cross"
    return calibration


def calibrated_state(model: PopularityModel, tracks: pd.DataFrame, reference_date: str | None, *,
                     eval_tracks: pd.DataFrame | None = None,
                     oof_residuals: Residuals | None = None) -> FittedState:
    """Fit ``model``'s boosters on validated ``tracks`` and calibrate their interval by its strategy.

    ``oof_residuals`` (from :func:`popdrivers.model.train`'s evaluation, same parameters and folds) replace the
    refits of a ``cross`` calibration.
    """
    method = model.calibration_method(len(tracks))
    if method in {"split", "holdout_refit"}:
        fold = mixed_folds(tracks, HOLDOUT_FOLDS, seed=model.random_state + 1)[0]
        part = model.fit_boosters(tracks.iloc[fold.train], reference_date, eval_tracks)
        residuals = model.point_model(part).held_out_residuals(tracks.iloc[fold.test])
        interval = Interval.from_residuals(residuals, model.interval_level, method)
        if method == "split":
            # The held-out tracks still join their artists' track record.
            record_table = features.artist_track_table(tracks) if part.artist_tracks is not None else None
            return replace(part, artist_tracks=record_table, interval=interval)
        return replace(model.fit_boosters(tracks, reference_date, eval_tracks), interval=interval)
    state = model.fit_boosters(tracks, reference_date, eval_tracks)
    if method == "cross":
        residuals = oof_residuals if oof_residuals is not None else cross_residuals(model, tracks, reference_date)
        state = replace(state, interval=Interval.from_residuals(residuals, model.interval_level, "cross"))
    return state


def cross_residuals(model: PopularityModel, tracks: pd.DataFrame, reference_date: str | None) -> Residuals:
    """Out-of-fold residuals on mixed folds, refitting until ``calibration_max_residuals`` are pooled."""
    parts: list[Residuals] = []
    sub = clone(model).set_params(calibration_folds=0, reference_date=reference_date)
    for fold in mixed_folds(tracks, model.calibration_folds, seed=model.random_state + 1):
        if len(fold.train) < MIN_FIT_ROWS or not len(fold.test):
            continue
        parts.append(clone(sub).fit(tracks.iloc[fold.train]).held_out_residuals(tracks.iloc[fold.test]))
        if sum(p.size for p in parts) >= model.calibration_max_residuals:
            break  # enough residuals for two quantiles per group; more folds would only cost refits
    if not parts:
        raise too_few_to_calibrate(len(tracks))
    return Residuals.pooled(parts)


def too_few_to_calibrate(n_rows: int) -> schema.SchemaError:
    """The error when no fold leaves enough tracks to fit on and some to hold out (one machine and the cluster)."""
    return schema.SchemaError([schema.Problem(
        "*", f"has {n_rows} tracks: too few to hold some out and calibrate the interval",
        fix="provide more tracks, or fit with calibration_folds=0 (no interval)")])


def describe_calibration(interval: Interval, n_train_rows: int, split_calibration_rows: int) -> str:
    """One sentence on how an interval was calibrated and how many tracks the boosters were fitted on."""
    counts = dict(interval.sizes)
    if len(set(counts.values())) == 1 and set(interval.offsets.get("seen", ())) == set(interval.offsets.get("new", ())):
        # One pool for every track (a model without the track record treats every artist alike).
        sizes = f"{next(iter(counts.values()), 0):,}"
    else:
        sizes = ", ".join(f"{n:,} {g}-artist" for g, n in counts.items())
    level = interval.level
    if interval.method == "split":
        return (f"{level:.0%} interval by split conformal on one held-out part ({sizes} residuals: 10% of artists "
                f"whole, 1% of other tracks); the boosters were fitted once on the other {n_train_rows:,} tracks "
                f"(above {split_calibration_rows:,} tracks no refit on all), and the held-out tracks still count in "
                "their artists' track record")
    if interval.method == "holdout_refit":
        return (f"{level:.0%} interval by split conformal on one held-out part ({sizes} residuals) of a separate fit "
                f"without it; the boosters were fitted on all {n_train_rows:,} tracks")
    if interval.method == "cross":
        return (f"{level:.0%} interval from out-of-fold refits ({sizes} residuals); the boosters were fitted on all "
                f"{n_train_rows:,} tracks")
    return f"no interval (calibration_folds=0); the boosters were fitted on {n_train_rows:,} tracks"
