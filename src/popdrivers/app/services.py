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

from popdrivers import registry
from popdrivers.errors import PopdriversError
from popdrivers.features import genre_family_of_genre, reference_date
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


# Inputs about the artist and the release, asked before the track's own features.
_CONTEXT_INPUTS = ("artist_followers", "genre_family", "track_age_days")


def _feature_input(name: str, tracks: pd.DataFrame) -> InputSpec:
    """A Predict input for one registered feature: label, help, unit, range and step from the registry."""
    feature = registry.spec(name)
    canonical = feature.canonical
    if feature.choices:
        options = tuple(value for value, _ in feature.choices)
        common = _most_common(tracks, canonical, options[0])
        default = next((o for o in options if o == common), options[0])
        if feature.kind == "binary" and set(options) == {False, True}:
            return InputSpec(name, feature.label, "toggle", feature.help, bool(default))
        return InputSpec(name, feature.label, "select", feature.help, default, options=options,
                         labels=dict(feature.choices))
    low, high = driver_input_range(name, tracks)
    step = feature.step or 0.01
    digits = max(0, -int(np.floor(np.log10(step)))) if step < 1 else 0
    default = _median(tracks, canonical, feature.canonical_scale * (low + high) / 2) / feature.canonical_scale
    return InputSpec(name, feature.label, "slider", feature.help, round(feature.clip(default), digits),
                     low, high, step, feature.unit)


def driver_input_range(driver: str, tracks: pd.DataFrame) -> tuple[float, float]:
    """The span a driver's slider offers: its valid range, open ends closed by the tracks' values."""
    feature = registry.spec(driver)
    observed = (pd.to_numeric(tracks[feature.canonical], errors="coerce") / feature.canonical_scale
                if feature.canonical in tracks.columns else None)
    return registry.input_range(driver, observed)


def input_features() -> list[str]:
    """The registered features the Predict page asks for (besides artist and release), in registry order."""
    return [f.name for f in registry.features() if f.name not in _CONTEXT_INPUTS]


def predict_inputs(tracks: pd.DataFrame, model: Any = None) -> list[InputSpec]:
    """The Predict page's inputs, each defaulting to the training data's median (most common value for labels)."""
    ref = model_reference_date(model, tracks)
    ages = (ref - pd.to_datetime(tracks["release_date"], errors="coerce")).dt.days if "release_date" in tracks else None
    max_age = int(np.nanmax(ages)) if ages is not None and ages.notna().any() else 36500
    genres = genre_choices(tracks)
    followers, family, age = (registry.spec(name) for name in _CONTEXT_INPUTS)
    # Up to the registry's most-followed artist, or a thousand times the typical artist if the data's are bigger.
    followers_max = max(_median(tracks, followers.canonical, 0) * 1000, followers.input_high or 0.0)
    specs = [
        InputSpec(followers.name, followers.label, "number", followers.help,
                  int(round(_median(tracks, followers.canonical, 100_000))), followers.low or 0.0,
                  float(followers_max), followers.step),
        InputSpec("genre", "Genre", "select",
                  f"A Spotify genre of the artist; the model uses its {family.label.lower()} (shown in brackets).",
                  genres[0], options=tuple(genres),
                  labels={g: g if genre_family_of_genre(g) == g else f"{g} ({genre_family_of_genre(g)})"
                          for g in genres}),
        InputSpec(age.name, age.label, "number", f"{age.help} Reference date: {ref.date()}.",
                  int(round(float(np.nanmedian(ages)))) if ages is not None else 365,
                  0, float(max(max_age, 1)), age.step, age.unit),
    ]
    # popdrivers' audio descriptors (sources "audio" only) come from an analysed recording: asked for only when
    # the training data has them (a table from `popdrivers analyze`), never for a dataset of Spotify features.
    measured_only = {f.name for f in registry.features() if f.sources == ("audio",) and f.canonical not in tracks}
    return specs + [_feature_input(name, tracks) for name in input_features() if name not in measured_only]


def used_inputs(specs: list[InputSpec], model: Any) -> tuple[list[InputSpec], list[InputSpec]]:
    """Split the inputs into those the model uses and those it was trained without (the data lacked them)."""
    names = set(getattr(model, "feature_names_", ()) or ())
    if not names:
        return list(specs), []
    used = [s for s in specs if registry.spec("genre_family" if s.name == "genre" else s.name).column in names]
    return used, [s for s in specs if s not in used]


def track_from_inputs(values: dict[str, Any], reference: pd.Timestamp) -> pd.DataFrame:
    """One canonical track row from the Predict page's inputs (:func:`popdrivers.explain.track_from_values`)."""
    from popdrivers.explain import track_from_values

    return track_from_values(values, reference)


# --------------------------------------------------------------------------------------------------------------
# Predict from a song: analysed on this machine, then the audio model.
# --------------------------------------------------------------------------------------------------------------

SONG_TYPES = ("mp3", "wav", "flac", "ogg")
MAX_SONG_MB = 50


@dataclass(frozen=True)
class SongAnalysis:
    """An uploaded song after analysis: the measured canonical row, or the reason it could not be analysed."""

    filename: str
    row: dict[str, Any] | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.row is not None


def analyse_song(content: bytes, filename: str) -> SongAnalysis:
    """Analyse an uploaded song with :mod:`popdrivers.audio` on this machine; never raises for a bad file.

    The bytes go to a private temporary folder (0700), are analysed there (in a child process with time and
    memory limits) and are deleted with the folder as soon as the analysis returns; nothing is sent anywhere.
    """
    from popdrivers import audio

    name = Path(filename).name or "upload"
    if len(content) > MAX_SONG_MB * 1024 * 1024:
        return SongAnalysis(name, None, f"{name} is {len(content) / 2**20:.0f} MB; songs of up to {MAX_SONG_MB} MB "
                                        "are analysed here (for longer files use `popdrivers analyze`)")
    with tempfile.TemporaryDirectory(prefix="popdrivers-song-") as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        try:
            analysis = audio.analyze_file(path)
        except PopdriversError as exc:
            return SongAnalysis(name, None, str(exc).replace(str(path), name))
        except Exception as exc:  # a UI boundary: any decoder failure becomes a message, never a traceback
            return SongAnalysis(name, None, f"{name} could not be analysed ({type(exc).__name__}: {exc})"
                                .replace(str(path), name))
    row = dict(analysis.to_row())
    row["file"] = name
    return SongAnalysis(name, row)


def song_inputs(row: dict[str, Any], specs: list[InputSpec]) -> tuple[list[InputSpec], list[InputSpec]]:
    """Split the audio model's inputs into those the song's analysis measured (defaults set to the measured
    values, in each feature's unit) and those a person still types (followers, genre, release date, explicit)."""
    measured, typed = [], []
    for spec in specs:
        feature = registry.spec("genre_family" if spec.name == "genre" else spec.name)
        value = row.get(feature.canonical)
        known = value is not None and not (isinstance(value, float) and np.isnan(value))
        if "audio" in feature.sources and known:
            default = float(value) / feature.canonical_scale
            if spec.kind == "select":
                default = next((o for o in spec.options if float(o) == default), spec.default)
            elif spec.kind == "slider":
                default = feature.clip(default)
            measured.append(InputSpec(**{**spec.__dict__, "default": default}))
        else:
            typed.append(spec)
    return measured, typed


def song_track(values: dict[str, Any], row: dict[str, Any], reference: pd.Timestamp) -> pd.DataFrame:
    """The canonical track of a song: the (possibly edited) values, the song's name and its feature source."""
    from popdrivers.explain import track_from_values

    track = track_from_values(values, reference)
    track["track_name"] = row.get("track_name") or row.get("file") or "Your song"
    track["features_source"] = row.get("features_source")
    return track


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
        xaxis_title=registry.spec(driver).axis_title,
        yaxis_title="predicted popularity", height=360, margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return figure


# --------------------------------------------------------------------------------------------------------------
# Data: summary, EDA tables, and uploads.
# --------------------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------------------
# Model card.
# --------------------------------------------------------------------------------------------------------------

def limitations(simulated: bool, design: str = "within_album") -> list[str]:
    """What the model and the effects cannot tell (shown on the model card); ``design`` is the drivers' primary
    design (what the causal effects held fixed)."""
    held = {"within_album": "tracks of the same album (the album's campaign, era and artist held fixed)",
            "within_artist": "tracks of the same artist (artist appeal held fixed)",
            "naive": "tracks across artists, adjusted for followers and the other features (associations)"}
    items = [
        "Popularity is Spotify's snapshot score at collection time: it rewards recent plays, so old tracks "
        "and tracks collected at different dates are not comparable one to one.",
        "Predictions are associations: the model learns what tracks like this one score, including through "
        "the artist's reach and style; the SHAP values explain the model, not the music industry.",
        f"Causal effects compare {held.get(design, design)}. They assume no other track-level cause of both the "
        "feature and popularity (e.g. a label's promotion budget for one track).",
        "Audio features are Spotify's model outputs, not measurements; their meaning drifts across versions.",
        "The prediction interval is 80% on average over tracks like the test set; for artists unlike the "
        "training artists (very small or very large) it is too narrow.",
    ]
    if simulated:
        items.insert(0, "This model is trained on SIMULATED data: the numbers show how the method behaves "
                        "(the true effects are known), not what drives real popularity.")
    return items
