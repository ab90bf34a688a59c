"""Explanations of the popularity model: SHAP (what the MODEL learned), what-if edits and curves.

Contributions are exact TreeSHAP values from LightGBM (``pred_contrib=True``): for each track they add up,
with the base value, to the model's raw output. They describe associations the model picked up in the
data, not causal effects: a feature can get credit because it travels with what really drives popularity
(followers with an artist's appeal, loudness with release year). For causal effects use
:func:`popdrivers.estimate_drivers`; :func:`what_if` puts both side by side for one edited track.

The CLI, the app and library users call the same functions here.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from popdrivers import registry
from popdrivers.errors import InputError
from popdrivers.features import ARTIST_RECORD, build_features, feature_label
from popdrivers.model import PopularityModel

ASSOCIATION_NOTE = ("SHAP values show what the model learned from associations in the data, "
                    "not causal effects of changing a feature (see `popdrivers drivers` for those).")
IMPORTANCE_TITLE = "What the model learned: mean |SHAP| per feature (association, not causal effect)"
WATERFALL_TITLE = "Why the model predicts this (association, not causal effect)"
_POSITIVE, _NEGATIVE = "#d62728", "#1f77b4"


@dataclass(frozen=True)
class TrackExplanation:
    """One track's prediction decomposed: base value + contributions = raw prediction (then clipped 0..100)."""

    track_id: str
    prediction: float
    base_value: float
    contributions: pd.Series
    values: pd.Series

    @property
    def raw_prediction(self) -> float:
        """Base value plus contributions: the model output before clipping to 0..100."""
        return float(self.base_value + self.contributions.sum())


def contributions(model: PopularityModel, tracks: pd.DataFrame) -> pd.DataFrame:
    """Per-track SHAP contributions (points of popularity), one column per feature, plus ``base_value``.

    Parameters
    ----------
    model
        A fitted or loaded :class:`PopularityModel`.
    tracks
        Canonical track table (validated like :meth:`PopularityModel.predict` input).

    Returns
    -------
    DataFrame indexed by track id; each row's contributions plus ``base_value`` equal the raw prediction.
    """
    matrix, ids = model.design_matrix(tracks)
    contrib = model.shap_values(matrix)
    out = pd.DataFrame(contrib[:, :-1], columns=list(model.feature_names_), index=ids)
    out["base_value"] = contrib[:, -1]
    return out


def global_importance(model: PopularityModel, tracks: pd.DataFrame, *, max_rows: int | None = 20_000,
                      seed: int = 0) -> pd.DataFrame:
    """Mean absolute SHAP value per feature, largest first (what the model leans on, on these tracks).

    Parameters
    ----------
    max_rows
        Explain a random sample of this many tracks (the mean converges long before millions of rows);
        None uses every track.

    Returns
    -------
    DataFrame with columns ``feature``, ``mean_abs_shap``, ``label`` (readable name).
    """
    if max_rows is not None and len(tracks) > max_rows:
        tracks = tracks.sample(n=max_rows, random_state=seed)
    contrib = contributions(model, tracks).drop(columns="base_value")
    importance = contrib.abs().mean().sort_values(ascending=False)
    return pd.DataFrame({"feature": importance.index, "mean_abs_shap": importance.to_numpy(),
                         "label": [feature_label(f) for f in importance.index]}).reset_index(drop=True)


def _explained(model: PopularityModel, frame: pd.DataFrame) -> TrackExplanation:
    contrib = model.shap_values(model.to_matrix(frame))[0]
    contributions_ = pd.Series(contrib[:-1], index=list(model.feature_names_), name="contribution")
    base = float(contrib[-1])
    prediction = float(np.clip(base + contributions_.sum(), 0.0, 100.0))
    return TrackExplanation(track_id=str(frame.index[0]), prediction=prediction, base_value=base,
                            contributions=contributions_, values=frame.iloc[0])


def _one_row(row_df: pd.DataFrame) -> None:
    if len(row_df) != 1:
        raise InputError(f"explain one track at a time: got {len(row_df)} rows (select one row, e.g. df.iloc[[i]])")


def track_explanation(model: PopularityModel, row_df: pd.DataFrame) -> TrackExplanation:
    """Prediction, base value, contributions and the feature values the model saw, for one track."""
    _one_row(row_df)
    return _explained(model, model.design_frame(row_df))


@dataclass(frozen=True)
class ExplainedPrediction:
    """One track's prediction with its interval and its SHAP explanation, and how long it took."""

    prediction: float
    lower: float
    upper: float
    explanation: TrackExplanation
    seconds: float


def explained_prediction(model: PopularityModel, row_df: pd.DataFrame) -> ExplainedPrediction:
    """Predict one track with its interval and the SHAP contribution of each feature (the app's Predict page).

    The design row is built once: TreeSHAP contributions add up to the raw prediction, so the prediction and
    its explanation come from one pass (a few milliseconds; see BENCHMARKS.md).
    """
    start = time.perf_counter()
    _one_row(row_df)
    frame = model.design_frame(row_df)
    explanation = _explained(model, frame)
    lower, upper = model.interval_for(np.array([explanation.prediction]), frame)
    return ExplainedPrediction(explanation.prediction, float(lower[0]), float(upper[0]), explanation,
                               time.perf_counter() - start)


def explain_track(model: PopularityModel, row_df: pd.DataFrame) -> tuple[float, float, pd.Series]:
    """(prediction clipped to 0..100, base value, contributions per feature) for a one-row table.

    Fast enough for interactive use (a few milliseconds for a canonical row; see BENCHMARKS.md).
    """
    explanation = track_explanation(model, row_df)
    return explanation.prediction, explanation.base_value, explanation.contributions


# --------------------------------------------------------------------------------------------------------
# Display helpers


# Model columns that hold a registered feature's categories under another name.
_CHOICE_COLUMNS = frozenset({"explicit_int", "key_cat"})


def format_value(feature: str, value: Any) -> str:
    """A feature value as shown beside its contribution ('unknown' for missing)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "unknown (new artist)" if feature == ARTIST_RECORD else "unknown"
    if feature == "log_followers":  # stored as log10(1 + followers); shown as the count, in the registry's unit
        return f"{10 ** float(value) - 1:,.0f} {registry.spec(feature).unit}"
    if feature == "track_age_days":
        return f"{float(value):,.0f} {registry.spec(feature).unit}"
    choices = registry.spec(feature).choices if registry.is_registered(feature) or feature in _CHOICE_COLUMNS else ()
    if choices:
        number = float(value)
        # Binary flags are stored as 0/1 floats; the registry names each value.
        match = next((text for choice, text in choices if float(choice) == round(number)), None)
        if match is not None:
            return match
    if isinstance(value, int | float | np.integer | np.floating):
        return f"{float(value):.3g}"
    return str(value)


def _waterfall_rows(explanation: TrackExplanation, top: int) -> pd.DataFrame:
    contrib = explanation.contributions
    order = contrib.abs().sort_values(ascending=False).index
    shown = list(order[:top])
    rows = [{"label": f"{feature_label(f)} = {format_value(f, explanation.values.get(f))}",
             "contribution": float(contrib[f])} for f in shown]
    rest = order[top:]
    if len(rest):
        rows.append({"label": f"{len(rest)} other features", "contribution": float(contrib[rest].sum())})
    return pd.DataFrame(rows)


def importance_figure_matplotlib(importance: pd.DataFrame, *, top: int = 15):
    """Bar chart of mean |SHAP| (a matplotlib Figure, no global pyplot state)."""
    from matplotlib.figure import Figure

    data = importance.head(top).iloc[::-1]
    fig = Figure(figsize=(8, 0.4 * len(data) + 1.6))
    ax = fig.add_subplot()
    ax.barh(data["label"], data["mean_abs_shap"], color=_NEGATIVE)
    ax.set_xlabel("mean |SHAP value| (popularity points)")
    ax.set_title(IMPORTANCE_TITLE, fontsize=10)
    fig.text(0.01, 0.01, ASSOCIATION_NOTE, fontsize=7, color="#555555")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def waterfall_figure_matplotlib(explanation: TrackExplanation, *, top: int = 12):
    """Waterfall of one prediction: from the base value, each feature pushes up (red) or down (blue)."""
    from matplotlib.figure import Figure

    rows = _waterfall_rows(explanation, top).iloc[::-1].reset_index(drop=True)
    fig = Figure(figsize=(9, 0.42 * len(rows) + 2.0))
    ax = fig.add_subplot()
    # Cumulative positions, drawn bottom-up so the largest contribution ends at the top.
    ends = explanation.base_value + rows["contribution"][::-1].cumsum()[::-1]
    starts = ends - rows["contribution"]
    colors = [_POSITIVE if c >= 0 else _NEGATIVE for c in rows["contribution"]]
    ax.barh(rows["label"], rows["contribution"], left=starts, color=colors)
    for y, (end, c) in enumerate(zip(ends, rows["contribution"], strict=True)):
        ax.text(end, y, f" {c:+.1f} ", va="center", ha="left" if c >= 0 else "right", fontsize=8)
    ax.axvline(explanation.base_value, color="#888888", linestyle="--", linewidth=1)
    ax.axvline(explanation.raw_prediction, color="#000000", linestyle=":", linewidth=1)
    ax.set_xlabel(f"popularity  (base value {explanation.base_value:.1f} -> prediction "
                  f"{explanation.prediction:.1f})")
    ax.set_title(f"{WATERFALL_TITLE}\ntrack {explanation.track_id}", fontsize=10)
    fig.text(0.01, 0.01, ASSOCIATION_NOTE, fontsize=7, color="#555555")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def importance_figure(importance: pd.DataFrame, *, top: int = 15):
    """Plotly bar chart of mean |SHAP| (for HTML reports and the app)."""
    import plotly.graph_objects as go

    data = importance.head(top).iloc[::-1]
    fig = go.Figure(go.Bar(x=data["mean_abs_shap"], y=data["label"], orientation="h", marker_color=_NEGATIVE))
    fig.update_layout(title=IMPORTANCE_TITLE, xaxis_title="mean |SHAP value| (popularity points)",
                      height=120 + 28 * len(data), margin={"l": 10, "r": 10, "t": 60, "b": 60},
                      annotations=[_note_annotation()])
    return fig


def waterfall_figure(explanation: TrackExplanation, *, top: int = 12):
    """Plotly waterfall of one prediction (base value, contributions, prediction)."""
    import plotly.graph_objects as go

    rows = _waterfall_rows(explanation, top)
    raw = explanation.raw_prediction
    fig = go.Figure(go.Waterfall(
        orientation="h",
        measure=["absolute", *(["relative"] * len(rows)), "total"],
        y=["base value (average prediction)", *rows["label"], "prediction"],
        x=[explanation.base_value, *rows["contribution"], 0.0],
        text=[f"{explanation.base_value:.1f}", *[f"{c:+.1f}" for c in rows["contribution"]], f"{raw:.1f}"],
        increasing={"marker": {"color": _POSITIVE}}, decreasing={"marker": {"color": _NEGATIVE}},
    ))
    title = f"{WATERFALL_TITLE}: track {explanation.track_id}, predicted {explanation.prediction:.1f}"
    fig.update_layout(title=title, yaxis={"autorange": "reversed"}, height=160 + 30 * (len(rows) + 2),
                      margin={"l": 10, "r": 10, "t": 60, "b": 60}, annotations=[_note_annotation()],
                      showlegend=False)
    return fig


def _note_annotation() -> dict[str, Any]:
    return {"text": ASSOCIATION_NOTE, "xref": "paper", "yref": "paper", "x": 0, "y": -0.12, "showarrow": False,
            "font": {"size": 10, "color": "#555555"}, "xanchor": "left"}


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Write a matplotlib Figure as PNG or a plotly Figure as HTML (plotly.min.js beside it), by extension."""
    path = Path(path)
    if path.suffix.lower() == ".png":
        fig.savefig(path, dpi=120)
    elif path.suffix.lower() in {".html", ".htm"}:
        # One shared plotly.min.js beside the pages: works offline, not copied into every page.
        fig.write_html(path, include_plotlyjs="directory")
    else:
        raise InputError(f"cannot save a figure as '{path.name}': use .png or .html")
    return path


# --------------------------------------------------------------------------------------------------------
# What-if: a real track with its drivers edited; the model's new prediction beside the causally implied change


def driver_values(row: pd.DataFrame, drivers: tuple[str, ...] | None = None) -> dict[str, float]:
    """Current value of each driver of a one-row canonical table, in the driver's unit (NaN if unknown).

    ``drivers`` defaults to every registered driver (:func:`popdrivers.registry.driver_names`).
    """
    feats = build_features(row)
    values = {}
    for driver in drivers if drivers is not None else registry.driver_names():
        column = registry.spec(driver).column
        values[driver] = float(feats[column].iloc[0]) if column in feats.columns else math.nan
    return values


def with_driver_values(row: pd.DataFrame, values: Mapping[str, float]) -> pd.DataFrame:
    """A copy of a canonical row with drivers set to ``values`` (driver units, written back to canonical columns)."""
    out = row.copy()
    for driver, value in values.items():
        column, stored = registry.canonical_value(driver, value)
        out[column] = stored
    return out


def track_from_values(values: Mapping[str, Any], reference: pd.Timestamp | str) -> pd.DataFrame:
    """One canonical track from values a person types (the Predict page, a song's analysis plus typed context).

    ``values`` holds registered feature names in their own units (``duration_min`` in minutes, ``explicit``
    0/1) plus the context: ``artist_followers``, ``genre`` (a Spotify genre) and ``track_age_days`` (counted back
    from ``reference``). Features it lacks stay unknown. The track's artist is one the model has never seen.
    """
    reference = pd.Timestamp(reference)
    row: dict[str, Any] = {"track_id": "your track", "track_name": "Your track",
                           "artist_id": "predict-input-artist", "artist_name": "Your artist",
                           "collected_at": reference, "release_date_precision": "day"}
    if "track_age_days" in values:
        row["release_date"] = reference - pd.Timedelta(days=int(values["track_age_days"]))
    if "genre" in values:
        row["artist_genres"] = [str(values["genre"])]
        row["genre"] = str(values["genre"])
    if "artist_followers" in values:
        row["artist_followers"] = float(values["artist_followers"])
    for name, value in values.items():
        if name in ("track_age_days", "genre", "artist_followers") or not registry.is_registered(name):
            continue
        column, stored = registry.canonical_value(name, value)
        row[column] = stored
    return pd.DataFrame([row])


@dataclass(frozen=True)
class TrackEffect:
    """The causal effect of one edited driver on *this* track, from the driver's effect model (its genre family's
    slope and the curve along its values), with its 95% CI: shown where the effect varies between tracks."""

    driver: str
    family: str
    start: float
    end: float
    effect: float
    low: float
    high: float


@dataclass(frozen=True)
class LearnerEffect:
    """This track's effect of +1 unit of a driver from the R-learner (told nothing about genre families),
    calibrated by its best linear predictor, with the 95% CI of that predictor (not of the track's true effect: it
    leaves out the learner's own error); ``change`` is the edit, ``effect * change`` what
    it implies for a small change (a local slope: the curve says what a large one does)."""

    driver: str
    change: float
    effect: float
    low: float
    high: float

    @property
    def implied(self) -> float:
        return self.effect * self.change


@dataclass(frozen=True)
class WhatIf:
    """A track before and after an edit: the model's view and the causal estimate, kept apart.

    ``causal_change`` is the average over the design's tracks of the change the edit would cause (for continuous
    drivers read off the dose-response curve between the track's value and the new one, so a large change is not
    one slope times its size), with its 95% CI. ``per_track`` holds the effect for this track of each edited driver
    whose effect is found to vary between tracks; ``average_applies`` the edited drivers where no such variation was
    found (the average is then the best estimate for this track too). ``learner`` holds, for edited drivers whose
    R-learner check finds heterogeneity, this track's own effect from that learner (:func:`learner_effects`).
    """

    before: float
    after: float
    causal_change: float
    causal_low: float
    causal_high: float
    changes: dict[str, float]
    per_track: tuple[TrackEffect, ...] = ()
    average_applies: tuple[str, ...] = ()
    learner: tuple[LearnerEffect, ...] = ()

    @property
    def model_change(self) -> float:
        """Change in the model's prediction (association: what tracks like the edited one score)."""
        return self.after - self.before


def _track_family(row: pd.DataFrame) -> str:
    feats = build_features(row)
    if "genre_family" not in feats.columns or pd.isna(feats["genre_family"].iloc[0]):
        return "unknown"
    return str(feats["genre_family"].iloc[0])


def track_effects(report: Any, row: pd.DataFrame, changes: Mapping[str, float],
                  current: Mapping[str, float] | None = None) -> tuple[tuple[TrackEffect, ...], tuple[str, ...]]:
    """Per edited driver: its effect on this track (where the report's heterogeneity test finds that the effect
    varies), or its name in the second tuple (no evidence that it varies: the average applies).

    ``changes`` are driver -> change in the driver's unit from the track's ``current`` values (read from ``row``
    when not given). A driver whose effect model cannot place the track's genre family gets the average.
    """
    current = dict(current) if current is not None else driver_values(row, tuple(changes))
    family = _track_family(row)
    per_track, average = [], []
    for driver, change in changes.items():
        try:
            result = report[driver]
        except KeyError:
            continue
        model = result.effect_model
        if not result.heterogeneous or model is None:
            average.append(driver)
            continue
        start = float(current[driver])
        try:
            effect, low, high = model.track_change(start, start + float(change), family)
        except ValueError:  # the family has no slope and nothing is pooled: no per-track effect to give
            average.append(driver)
            continue
        per_track.append(TrackEffect(driver, family, start, start + float(change), effect, low, high))
    return tuple(per_track), tuple(average)


def what_if(model: PopularityModel, report: Any, row: pd.DataFrame, new_values: Mapping[str, float]) -> WhatIf:
    """Edit a track's drivers; return the model's new prediction and the change implied by the causal effects.

    Parameters
    ----------
    model
        A fitted or loaded :class:`~popdrivers.model.PopularityModel`.
    report
        The causal drivers (:func:`popdrivers.estimate_drivers`).
    row
        One canonical track.
    new_values
        Driver -> new value in the driver's unit (``duration_min`` in minutes, ``explicit`` 0/1).

    The causal change is the sum over the edited drivers the report estimated of each one's average change (the
    dose-response curve from the track's value to the new one for continuous drivers, the average effect for
    binary ones), with its 95% CI (:func:`popdrivers.drivers.implied_change`); drivers the report lacks change
    only the model's prediction. Where a driver's effect varies between tracks, ``per_track`` gives its effect for
    this track (:func:`track_effects`).
    """
    from popdrivers.drivers import implied_change

    current = driver_values(row, tuple(new_values))
    changes = {d: float(v) - current[d] for d, v in new_values.items()
               if not math.isnan(current[d]) and not math.isclose(float(v), current[d], abs_tol=1e-9)}
    estimated = {r.feature for r in report.drivers}
    causal_changes = {d: c for d, c in changes.items() if d in estimated}
    if causal_changes:
        effect, low, high = implied_change(report, causal_changes, at={d: current[d] for d in causal_changes})
    else:
        effect, low, high = 0.0, 0.0, 0.0
    per_track, average = track_effects(report, row, causal_changes, current)
    learner = learner_effects(report, row, causal_changes)
    edited = with_driver_values(row, {d: new_values[d] for d in changes})
    before, after = (float(v) for v in model.predict(pd.concat([row, edited], ignore_index=True)))
    return WhatIf(before, after, float(effect), float(low), float(high), changes, per_track, average, learner)


def learner_effects(report: Any, row: pd.DataFrame, changes: Mapping[str, float]) -> tuple[LearnerEffect, ...]:
    """Per edited driver whose R-learner check finds heterogeneity (``DriverResult.track_learner``), this track's
    calibrated effect from ``report.track_effects`` (looked up by ``track_id``; empty for a track the report was not
    estimated on)."""
    table = getattr(report, "track_effects", None)
    if table is None or "track_id" not in row.columns or not len(row):
        return ()
    rows = table[table["track_id"].astype(str) == str(row["track_id"].iloc[0])]
    out = []
    for driver, change in changes.items():
        try:
            check = report[driver].track_learner
        except KeyError:
            continue
        hit = rows[rows["driver"] == driver]
        if check is None or not check.detected or hit.empty:
            continue
        first = hit.iloc[0]
        out.append(LearnerEffect(driver, float(change), float(first["effect"]), float(first["ci_low"]),
                                 float(first["ci_high"])))
    return tuple(out)


def feature_curve(model: PopularityModel, row: pd.DataFrame, driver: str, tracks: pd.DataFrame | None = None,
                  points: int = 41) -> pd.DataFrame:
    """Predicted popularity of ``row`` as one driver sweeps its range (ICE curve: ``value``, ``prediction``).

    The range is the driver's natural range, narrowed to the training data's 1st-99th percentile when the
    data is given (the model has seen nothing outside it), and always including the track's own value.
    """
    if driver not in registry.eligible_driver_names():
        raise InputError(f"unknown driver {driver!r}: choose from {', '.join(registry.eligible_driver_names())}")
    feature = registry.spec(driver)
    low, high = registry.input_range(driver)
    current = driver_values(row, (driver,))[driver]
    if feature.binary:
        grid = np.array([0.0, 1.0])
    else:
        if tracks is not None:
            column = feature.column
            values = build_features(tracks)[column] if column not in tracks.columns else tracks[column]
            values = pd.to_numeric(values, errors="coerce").dropna()
            if len(values):
                low, high = max(low, float(values.quantile(0.01))), min(high, float(values.quantile(0.99)))
        if not math.isnan(current):
            low, high = min(low, current), max(high, current)
        grid = np.linspace(low, high, points)
    rows = pd.concat([with_driver_values(row, {driver: float(v)}) for v in grid], ignore_index=True)
    return pd.DataFrame({"value": grid, "prediction": model.predict(rows)})
