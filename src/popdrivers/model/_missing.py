"""Features a table to score lacks: predicted as unknown, and the interval widened by what not knowing them costs.

A feature is *missing* from a table when every column it comes from is absent or empty (a file from another
source: no ``time_signature``, no ``explicit``, no release date, no genre). Leaving it empty would be wrong:
LightGBM reads an empty value of a feature it always saw filled as 0 (0 dB loudness, no followers, released
today). So a missing feature is **marginalised** (:func:`predict_without`): each track is predicted with the
missing features set, in turn, to those of :data:`DONORS` training tracks (from the training sample kept in
the model folder) and the predictions are averaged: the model's expected prediction when only the other
features are known, treating the missing ones as drawn like in training.

The interval (:func:`interval_without`) is then recalibrated rather than kept: for training-sample tracks the
shift ``d`` = (prediction without the features) - (prediction with them) is measured, and the calibration
residuals ``r`` of the interval (actual - prediction, on held-out tracks) give the residuals without the
features as ``r - d`` over every pair (``r`` and ``d`` taken as independent: the residual is noise the features
do not explain). Their conformal quantiles, never narrower than the calibrated ones, are the new interval.
How well that holds is measured in ``benchmarks/missing_features.py`` (coverage on held-out artists with
features hidden).

Model folders written before the training sample was kept fill a missing numeric feature with the training
median (``training_summary``) and say that its interval could not be widened.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from popdrivers.features import ARTIST_RECORD, model_feature_sources
from popdrivers.model._conformal import GROUPS, Interval, conformal_offsets

if TYPE_CHECKING:  # only the type: the estimator imports this package's modules
    from popdrivers.model._estimator import PopularityModel

# Training tracks whose values a missing feature takes in turn (their predictions averaged): 16 keeps the
# Monte Carlo error of the average under half a point on the shared datasets (benchmarks/missing_features.py).
DONORS = 16
# Pairs of a calibration residual and a prediction shift behind a widened interval (all pairs up to this many).
MAX_PAIRS = 4_000_000


def missing_features(model: PopularityModel, tracks: pd.DataFrame) -> tuple[str, ...]:
    """The model's features ``tracks`` cannot provide: every column they come from is absent or empty."""
    missing = []
    for name in model.feature_names_:
        if name == ARTIST_RECORD:  # comes from the stored training table, never from the table scored
            continue
        sources = model_feature_sources(name)
        if not any(s in tracks.columns and tracks[s].notna().any() for s in sources):
            missing.append(name)
    return tuple(missing)


def can_marginalise(model: PopularityModel) -> bool:
    """Whether the model folder keeps the training sample missing features are predicted and widened with."""
    reference = model.fitted_state.reference
    return reference is not None and reference.sample is not None and len(reference.sample) > 0


def fill_unknown(model: PopularityModel, tracks: pd.DataFrame, missing: Sequence[str]) -> pd.DataFrame:
    """``tracks`` ready for :meth:`PopularityModel.design_frame` with ``missing`` features' columns present.

    With a training sample the columns are left empty (:func:`predict_without` then marginalises them); an older
    folder gets the training median of a numeric column (the best single guess it records).
    """
    columns = {s for name in missing for s in model_feature_sources(name)}
    absent = [c for c in columns if c not in tracks.columns]
    tracks = tracks.assign(**dict.fromkeys(absent, np.nan)) if absent else tracks
    if can_marginalise(model):
        return tracks
    summary = model.training_summary_
    medians = {}
    for column in columns:
        median = summary.get(column, {}).get("median")
        if median is not None and tracks[column].isna().all():
            medians[column] = median
    return tracks.assign(**medians) if medians else tracks


def _donor_values(model: PopularityModel, positions: list[int]) -> np.ndarray:
    """Design-matrix values of the missing features' columns for :data:`DONORS` training-sample tracks."""
    sample = model.fitted_state.reference.sample
    donors = sample.sample(n=min(DONORS, len(sample)), random_state=0)
    matrix = model.to_matrix(model.design_frame(donors, absent="empty"))
    return matrix[:, positions]


def predict_without(model: PopularityModel, frame: pd.DataFrame, missing: Sequence[str]) -> np.ndarray:
    """Unclipped predictions for the rows of a design ``frame`` whose ``missing`` features are unknown.

    The prediction averages the model over the missing features' values of :data:`DONORS` training tracks
    (:func:`can_marginalise`); without a training sample it is the model's output on ``frame`` as it is.
    """
    matrix = model.to_matrix(frame)
    if not missing or not can_marginalise(model):
        return model.predict_raw(matrix)
    positions = [model.feature_names_.index(name) for name in missing]
    donors = _donor_values(model, positions)
    total = np.zeros(len(matrix))
    for values in donors:
        matrix[:, positions] = values
        total += model.predict_raw(matrix)
    return total / len(donors)


def interval_without(model: PopularityModel, missing: Sequence[str]) -> Interval | None:
    """The interval for tracks whose ``missing`` features are unknown (see the module docstring).

    Returns the calibrated interval when nothing is missing, and None when the folder keeps no training sample
    or calibration residuals to measure the widening with (written by an older popdrivers).
    """
    interval = model.interval_
    if not missing:
        return interval
    if not can_marginalise(model) or not interval.samples or not interval.available:
        return None
    sample = model.fitted_state.reference.sample
    offsets: dict[str, tuple[float, float]] = {}
    for group in GROUPS:
        rows = sample
        if group == "new" and "artist_id" in sample.columns:
            # As tracks of artists the model never saw: no track record, the new-artist booster.
            rows = sample.assign(artist_id=[f"popdrivers:unseen:{i}" for i in range(len(sample))])
        frame = model.design_frame(rows, absent="empty")
        full = np.clip(model.predict_raw(model.to_matrix(frame)), 0.0, 100.0)
        without = np.clip(predict_without(model, frame, missing), 0.0, 100.0)
        shift = without - full
        residuals = np.asarray(interval.samples.get(group) or interval.samples.get("seen") or (), dtype="float64")
        if not len(residuals):
            return None
        if len(residuals) * len(shift) > MAX_PAIRS:
            shift = np.sort(shift)[np.linspace(0, len(shift) - 1, MAX_PAIRS // len(residuals)).round().astype(int)]
        pairs = (residuals[:, None] - shift[None, :]).ravel()
        low, high = conformal_offsets(pairs, interval.level)
        calibrated = interval.offsets[group]
        offsets[group] = (min(low, calibrated[0]), max(high, calibrated[1]))
    return Interval(level=interval.level, method=interval.method, offsets=offsets, sizes=dict(interval.sizes))
