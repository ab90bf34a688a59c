"""What the app's pages compute, as plain functions of DataFrames (no Streamlit here, so tests call them directly).

Pages only lay out widgets and call these or the library (predictions, explanations and what-if edits come from
:mod:`popdrivers.explain`, shared with the CLI); these only call the library (model, drivers, readers).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from popdrivers.errors import PopdriversError
from popdrivers.features import (
    DRIVER_UNITS,
    KEY_NAMES,
    build_features,
    genre_family_of_genre,
    reference_date,
)
from popdrivers.schema import SchemaError

# --------------------------------------------------------------------------------------------------------------
# Predict: the inputs, with real ranges, units and help, defaulting to the training data's medians.
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputSpec:
    """One input of the Predict page.

    ``kind`` is "slider" (continuous, ``low``..``high`` by ``step``), "number" (free number box), "select"
    (``options`` with ``labels``) or "toggle" (a yes/no flag).
    """

    name: str
    label: str
    kind: str
    help: str
    default: Any
    low: float | None = None
    high: float | None = None
    step: float | None = None
    unit: str = ""
    options: tuple[Any, ...] = ()
    labels: dict[Any, str] = field(default_factory=dict)


_UNIT_HELP = {
    "danceability": "How suitable the track is for dancing, from tempo, rhythm stability and beat strength "
                    "(Spotify audio feature, 0 = least, 1 = most danceable).",
    "energy": "Perceived intensity and activity: fast, loud, noisy tracks score high (0-1).",
    "speechiness": "Presence of spoken words: above 0.66 is almost all speech, 0.33-0.66 mixes music and "
                   "speech such as rap, below 0.33 is mostly music (0-1).",
    "acousticness": "Confidence that the track is acoustic (0-1).",
    "instrumentalness": "Likelihood the track has no vocals; above 0.5 is probably instrumental (0-1).",
    "liveness": "Presence of an audience in the recording; above 0.8 is probably live (0-1).",
    "valence": "Musical positiveness: high is happy, cheerful, euphoric; low is sad, angry, tense (0-1).",
}
TIME_SIGNATURES = (1, 3, 4, 5, 6, 7)


def _median(tracks: pd.DataFrame, column: str, fallback: float) -> float:
    if column not in tracks.columns:
        return fallback
    value = pd.to_numeric(tracks[column], errors="coerce").median()
    return fallback if pd.isna(value) else float(value)


def _most_common(tracks: pd.DataFrame, column: str, fallback: Any) -> Any:
    if column not in tracks.columns or tracks[column].dropna().empty:
        return fallback
    return tracks[column].dropna().mode().iloc[0]


def genre_choices(tracks: pd.DataFrame, limit: int = 60) -> list[str]:
    """Spotify genres of the training data, most common first (a track's genre sets its genre family)."""
    counts: dict[str, int] = {}
    if "artist_genres" in tracks.columns:
        for genres in tracks["artist_genres"]:
            for genre in genres if isinstance(genres, list | tuple | np.ndarray) else ():
                counts[str(genre)] = counts.get(str(genre), 0) + 1
    if not counts and "genre" in tracks.columns:
        counts = {str(k): int(v) for k, v in tracks["genre"].dropna().value_counts().items()}
    ordered = sorted(counts, key=lambda g: (-counts[g], g))[:limit]
    return ordered or ["pop"]


def model_reference_date(model: Any, tracks: pd.DataFrame) -> pd.Timestamp:
    """The date track ages are measured at for this model (its own, else the training data's)."""
    for attribute in ("reference_date_", "at_", "reference_"):
        value = getattr(model, attribute, None)
        if value is not None:
            return pd.Timestamp(value)
    ref = reference_date(tracks)
    return ref if ref is not None else pd.Timestamp.today().normalize()


def predict_inputs(tracks: pd.DataFrame, model: Any = None) -> list[InputSpec]:
    """The Predict page's inputs, each defaulting to the training data's median (most common value for labels)."""
    ref = model_reference_date(model, tracks)
    ages = (ref - pd.to_datetime(tracks["release_date"], errors="coerce")).dt.days if "release_date" in tracks else None
    max_age = int(np.nanmax(ages)) if ages is not None and ages.notna().any() else 36500
    followers_max = max(_median(tracks, "artist_followers", 0) * 1000, 150_000_000)
    genres = genre_choices(tracks)
    top_genre = genres[0]
    specs = [
        InputSpec("artist_followers", "Artist followers", "number",
                  "Followers of the artist on Spotify (the model uses log10 of it: reach, not quality).",
                  int(round(_median(tracks, "artist_followers", 100_000))), 0, float(followers_max), 1000),
        InputSpec("genre", "Genre", "select",
                  "A Spotify genre of the artist; the model uses its genre family (shown in brackets).",
                  top_genre, options=tuple(genres),
                  labels={g: g if genre_family_of_genre(g) == g else f"{g} ({genre_family_of_genre(g)})"
                          for g in genres}),
        InputSpec("age_days", "Time since release", "number",
                  f"Days from release to the data's reference date ({ref.date()}); older tracks have "
                  "lost popularity.", int(round(float(np.nanmedian(ages)))) if ages is not None else 365,
                  0, float(max(max_age, 1)), 30, "days"),
        InputSpec("duration_min", "Duration", "slider", "Track length in minutes.",
                  round(_median(tracks, "duration_ms", 210_000) / 60000, 2), 0.5, 15.0, 0.05, "minutes"),
    ]
    for name in ("danceability", "energy"):
        specs.append(InputSpec(name, name.capitalize(), "slider", _UNIT_HELP[name],
                               round(_median(tracks, name, 0.5), 2), 0.0, 1.0, 0.01, "0-1"))
    specs += [
        InputSpec("key", "Key", "select", "Pitch class the track is in (-1: no key detected).",
                  int(_most_common(tracks, "key", 0)), options=tuple(range(-1, 12)),
                  labels={-1: "not detected"} | {i: KEY_NAMES[i] for i in range(12)}),
        InputSpec("loudness", "Loudness", "slider",
                  "Average loudness of the track in dB (LUFS-like; most commercial tracks sit between -14 and -4).",
                  round(_median(tracks, "loudness", -7.0), 1), -60.0, 5.0, 0.1, "dB"),
        InputSpec("mode", "Mode", "select", "Modality: major or minor.",
                  int(_most_common(tracks, "mode", 1)), options=(1, 0), labels={1: "major", 0: "minor"}),
    ]
    for name in ("speechiness", "acousticness", "instrumentalness", "liveness", "valence"):
        specs.append(InputSpec(name, name.capitalize(), "slider", _UNIT_HELP[name],
                               round(_median(tracks, name, 0.1), 3), 0.0, 1.0, 0.001 if name == "instrumentalness"
                               else 0.01, "0-1"))
    ts_default = int(_most_common(tracks, "time_signature", 4))
    specs += [
        InputSpec("time_signature", "Time signature", "select",
                  "Estimated beats per bar (4 = 4/4, 3 = 3/4 ...).",
                  ts_default if ts_default in TIME_SIGNATURES else 4, options=TIME_SIGNATURES,
                  labels={t: f"{t}/4" for t in TIME_SIGNATURES}),
        InputSpec("tempo", "Tempo", "slider", "Estimated tempo in beats per minute.",
                  round(_median(tracks, "tempo", 120.0)), 30.0, 250.0, 1.0, "BPM"),
        InputSpec("explicit", "Explicit lyrics", "toggle", "Whether the track is flagged as explicit.",
                  bool(_most_common(tracks, "explicit", False))),
    ]
    return specs


# The model feature each Predict input feeds (the others feed the feature of the same name).
INPUT_FEATURES = {"artist_followers": "log_followers", "genre": "genre_family", "age_days": "track_age_days",
                  "key": "key_cat", "explicit": "explicit_int"}


def used_inputs(specs: list[InputSpec], model: Any) -> tuple[list[InputSpec], list[InputSpec]]:
    """Split the inputs into those the model uses and those it was trained without (the data lacked them)."""
    names = set(getattr(model, "feature_names_", ()) or ())
    if not names:
        return list(specs), []
    used = [s for s in specs if INPUT_FEATURES.get(s.name, s.name) in names]
    return used, [s for s in specs if s not in used]


def track_from_inputs(values: dict[str, Any], reference: pd.Timestamp) -> pd.DataFrame:
    """One canonical track row from the Predict page's inputs (ages are counted back from ``reference``)."""
    genre = str(values["genre"])
    row: dict[str, Any] = {
        "track_id": "your track",
        "track_name": "Your track",
        "artist_id": "predict-input-artist",
        "artist_name": "Your artist",
        "release_date": pd.Timestamp(reference) - pd.Timedelta(days=int(values["age_days"])),
        "release_date_precision": "day",
        "collected_at": pd.Timestamp(reference),
        "explicit": bool(values["explicit"]),
        "artist_followers": float(values["artist_followers"]),
        "artist_genres": [genre],
        "genre": genre,
        "duration_ms": float(round(float(values["duration_min"]) * 60000.0)),
    }
    for name in ("danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness",
                 "instrumentalness", "liveness", "valence", "tempo", "time_signature"):
        row[name] = float(values[name])
    return pd.DataFrame([row])


def waterfall_range(explanation: Any, top: int = 12) -> tuple[float, float]:
    """x-axis range that zooms a waterfall onto where its bars move (from 0 they would be slivers)."""
    contributions = explanation.contributions.astype(float)
    order = contributions.abs().sort_values(ascending=False).index
    steps = [float(contributions[f]) for f in order[:top]] + [float(contributions[order[top:]].sum())]
    positions = explanation.base_value + np.concatenate([[0.0], np.cumsum(steps)])
    low, high = float(positions.min()), float(positions.max())
    pad = 0.25 * (high - low) + 1.0
    return low - pad, high + pad


# --------------------------------------------------------------------------------------------------------------
# What-if: a real track, its drivers edited, the model's new prediction beside the causally implied change.
# --------------------------------------------------------------------------------------------------------------

DRIVER_LABELS: dict[str, str] = {
    "duration_min": "Duration (minutes)", "loudness": "Loudness (dB)", "tempo": "Tempo (BPM)",
    "explicit": "Explicit (0/1)", "mode": "Mode (1 major, 0 minor)",
}


def search_tracks(tracks: pd.DataFrame, query: str, limit: int = 50) -> pd.DataFrame:
    """Tracks whose name or artist contains ``query`` (case-insensitive), most popular first."""
    query = query.strip()
    hits = pd.Series(True, index=tracks.index)
    if query:
        hits = pd.Series(False, index=tracks.index)
        for column in ("track_name", "artist_name"):
            if column in tracks.columns:
                hits |= tracks[column].astype("string").str.contains(query, case=False, regex=False).fillna(False)
    found = tracks[hits]
    if "popularity" in found.columns:
        found = found.sort_values("popularity", ascending=False, kind="stable")
    return found.head(limit)


def track_label(row: pd.Series) -> str:
    """"Name - Artist (popularity N)" for a pick list."""
    name = row.get("track_name")
    artist = row.get("artist_name")
    text = f"{name if pd.notna(name) else row['track_id']}"
    if pd.notna(artist):
        text += f" - {artist}"
    if "popularity" in row and pd.notna(row["popularity"]):
        text += f" (popularity {int(row['popularity'])})"
    return text


def curve_figure(curve: pd.DataFrame, driver: str, current: float, current_prediction: float) -> Any:
    """Line of predicted popularity over a driver's range with the track's current value marked."""
    import plotly.graph_objects as go

    figure = go.Figure()
    figure.add_trace(go.Scatter(x=curve["value"], y=curve["prediction"], mode="lines+markers"
                                if len(curve) < 5 else "lines", name="model prediction"))
    figure.add_trace(go.Scatter(x=[current], y=[current_prediction], mode="markers", name="this track now",
                                marker={"size": 12, "symbol": "diamond", "color": "crimson"}))
    figure.update_layout(
        title=f"Predicted popularity as {driver} changes (model association)",
        xaxis_title=f"{driver} ({DRIVER_UNITS[driver].removeprefix('+1.0 on the ').removeprefix('+1 ')})",
        yaxis_title="predicted popularity", height=360, margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return figure


# --------------------------------------------------------------------------------------------------------------
# Data: summary, EDA tables, and uploads.
# --------------------------------------------------------------------------------------------------------------

EDA_COLUMNS = ("popularity", "log_followers", "track_age_days", "duration_min", "danceability", "energy",
               "loudness", "speechiness", "acousticness", "instrumentalness", "liveness", "valence", "tempo")


def dataset_summary(tracks: pd.DataFrame) -> dict[str, Any]:
    """Headline numbers of a track table."""
    summary: dict[str, Any] = {"tracks": len(tracks)}
    if "artist_id" in tracks.columns:
        summary["artists"] = int(tracks["artist_id"].nunique())
    if "popularity" in tracks.columns:
        popularity = pd.to_numeric(tracks["popularity"], errors="coerce")
        summary["mean popularity"] = round(float(popularity.mean()), 1)
        summary["share at 0"] = f"{100 * float((popularity == 0).mean()):.1f}%"
    if "release_date" in tracks.columns:
        dates = pd.to_datetime(tracks["release_date"], errors="coerce").dropna()
        if len(dates):
            summary["released"] = f"{dates.min().year}-{dates.max().year}"
    return summary


def eda_frame(tracks: pd.DataFrame) -> pd.DataFrame:
    """The numeric columns the Data page explores (derived columns included), as floats."""
    features = build_features(tracks)
    columns = [c for c in EDA_COLUMNS if c in features.columns]
    return features[columns].apply(pd.to_numeric, errors="coerce").astype("float64")


def vif_table(tracks: pd.DataFrame) -> pd.DataFrame:
    """Variance inflation factor of each explanatory column (above 5-10: collinear, effects hard to separate)."""
    from statsmodels.stats.outliers_influence import variance_inflation_factor
    from statsmodels.tools.tools import add_constant

    frame = eda_frame(tracks).drop(columns=["popularity"], errors="ignore").dropna()
    frame = frame.loc[:, frame.std() > 0]
    if frame.shape[0] <= frame.shape[1] + 1 or frame.empty:
        return pd.DataFrame(columns=["feature", "vif"])
    design = add_constant(frame.to_numpy(), has_constant="add")
    vif = [variance_inflation_factor(design, i + 1) for i in range(frame.shape[1])]
    return (pd.DataFrame({"feature": frame.columns, "vif": vif})
            .sort_values("vif", ascending=False, ignore_index=True))


def popularity_by(tracks: pd.DataFrame, by: str) -> pd.DataFrame:
    """Mean, median and count of popularity per genre family (``by="genre_family"``) or release year."""
    features = build_features(tracks)
    if by not in features.columns or "popularity" not in features.columns:
        return pd.DataFrame(columns=[by, "tracks", "mean", "median"])
    grouped = features.groupby(by, observed=True)["popularity"]
    table = pd.DataFrame({"tracks": grouped.size(), "mean": grouped.mean(), "median": grouped.median()})
    return table.reset_index()


@dataclass(frozen=True)
class Upload:
    """An uploaded file after validation: the canonical table, or every problem as a readable message."""

    filename: str
    tracks: pd.DataFrame | None
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.tracks is not None


def read_upload(content: bytes, filename: str, format: str = "auto") -> Upload:
    """Validate an uploaded dataset with the same readers the CLI uses; never raises for a bad file.

    The bytes are written to a temporary file under the upload's own name (format detection may look at it),
    read with :func:`popdrivers.sources.files.read_tracks_with_report` (popularity optional: an upload may be
    scored, not trained on), and every :class:`~popdrivers.schema.SchemaError` problem or reader error becomes
    one message.
    """
    from popdrivers.sources.files import read_tracks_with_report

    name = Path(filename).name or "upload.csv"
    with tempfile.TemporaryDirectory(prefix="popdrivers-upload-") as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        try:
            tracks, report = read_tracks_with_report(path, format=format, require_popularity=False)
        except SchemaError as exc:
            return Upload(name, None, tuple(str(p) for p in exc.problems) or (str(exc),))
        except PopdriversError as exc:
            return Upload(name, None, (str(exc).replace(str(path), name),))
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            return Upload(name, None, (f"{name} could not be read: {exc}".replace(str(path), name),))
        except Exception as exc:  # a UI boundary: any parser failure becomes a message, never a traceback
            return Upload(name, None, (f"{name} could not be read ({type(exc).__name__}: {exc})"
                                       .replace(str(path), name),))
    notes = [f"{report.rows_kept:,} tracks read from {name} (format: {report.format}, {report.rows_read:,} rows)"]
    notes += [f"{d.rows:,} rows not kept as separate tracks: {d.reason}" for d in report.dropped]
    notes += [str(note).replace(str(path), name) for note in report.notes]
    notes += [f"column not used: {unused}" for unused in report.unused_columns]
    return Upload(name, tracks, (), tuple(notes))


def score_tracks(model: Any, tracks: pd.DataFrame) -> pd.DataFrame:
    """Predicted popularity with its 80% interval for every track, beside its id, name, artist and actual value."""
    interval = model.predict_interval(tracks).reset_index(drop=True)
    keep = [c for c in ("track_id", "track_name", "artist_name", "popularity") if c in tracks.columns]
    out = tracks[keep].reset_index(drop=True).copy()
    out["predicted_popularity"] = interval["prediction"].round(1)
    out["lower_80"] = interval["lower"].round(1)
    out["upper_80"] = interval["upper"].round(1)
    return out


# --------------------------------------------------------------------------------------------------------------
# Model card.
# --------------------------------------------------------------------------------------------------------------

SPLIT_NAMES = {"random": "random tracks", "by_artist": "unseen artists", "by_time": "newest releases"}


def metrics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Tidy metrics: one row per (split, predictor) with rmse, mae, r2; the model first in each split."""
    rows = []
    for split, content in (metrics.get("splits") or {}).items():
        if not isinstance(content, dict):
            continue
        predictors: list[tuple[str, Any]] = [("popdrivers model", content.get("model"))]
        predictors += [(f"baseline: {name}", value) for name, value in (content.get("baselines") or {}).items()]
        for name, value in predictors:
            if isinstance(value, dict):
                rows.append({"split": SPLIT_NAMES.get(split, split), "predictor": name,
                             **{k: value.get(k) for k in ("rmse", "mae", "r2")}})
    return pd.DataFrame(rows, columns=["split", "predictor", "rmse", "mae", "r2"])


def coverage_table(interval: dict[str, Any]) -> pd.DataFrame:
    """Empirical coverage and mean width of the prediction interval on each evaluation split."""
    rows = [{"split": SPLIT_NAMES.get(name, name), "coverage": f"{100 * v['coverage']:.1f}%",
             "mean width (points)": round(float(v["mean_width"]), 1)}
            for name, v in (interval.get("by_split") or {}).items() if v.get("coverage") is not None]
    return pd.DataFrame(rows, columns=["split", "coverage", "mean width (points)"])


def limitations(simulated: bool) -> list[str]:
    """What the model and the effects cannot tell (shown on the model card)."""
    items = [
        "Popularity is Spotify's snapshot score at collection time: it rewards recent plays, so old tracks "
        "and tracks collected at different dates are not comparable one to one.",
        "Predictions are associations: the model learns what tracks like this one score, including through "
        "the artist's reach and style; the SHAP values explain the model, not the music industry.",
        "Causal effects compare tracks of the same artist (artist appeal held fixed). They assume no other "
        "track-level cause of both the feature and popularity (e.g. a label's promotion budget for the single).",
        "Audio features are Spotify's model outputs, not measurements; their meaning drifts across versions.",
        "The prediction interval is 80% on average over tracks like the test set; for artists unlike the "
        "training artists (very small or very large) it is too narrow.",
    ]
    if simulated:
        items.insert(0, "This model is trained on SIMULATED data: the numbers show how the method behaves "
                        "(the true effects are known), not what drives real popularity.")
    return items
