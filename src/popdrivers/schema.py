"""The canonical track table: the one contract every stage reads.

One row per track. ``schema.py`` is the only module that knows what a column means, its unit, its
range and its storage type; readers map their layouts onto these names and call :func:`validate`.

Storage choices (why): numeric columns are stored as floats with NaN for "unknown" so that a missing
audio feature never forces a row out and every learner sees the same dtype; integer-ness and ranges are
still checked. ``popularity`` is ``int16`` when required (no gaps possible), ``float32`` when optional.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from popdrivers import registry
from popdrivers.errors import SchemaError

Kind = Literal["id", "text", "int", "float", "bool", "date", "list", "category"]


@dataclass(frozen=True)
class ColumnSpec:
    """What one canonical column holds."""

    name: str
    kind: Kind
    description: str
    unit: str = ""
    low: float | None = None
    high: float | None = None
    # Spotify writes this value for "could not be measured" (tempo 0, time signature 0 for silence).
    unknown_marker: float | None = None
    dtype: str = "float32"
    # The values a "category" column may take (compared after lower-casing and trimming).
    choices: tuple[str, ...] = ()


def feature_column(name: str, kind: Kind, *, dtype: str = "float32", unknown_marker: float | None = None,
                   canonical_unit: str | None = None) -> ColumnSpec:
    """The canonical spec of a registered feature's column: meaning, unit and range come from the registry.

    A feature stored on another scale (duration in minutes, stored in ms) gets its range scaled and names its
    storage unit with ``canonical_unit``.
    """
    feature = registry.spec(name)
    scale = feature.canonical_scale

    def scaled(bound: float | None) -> float | None:
        return None if bound is None else bound * scale

    return ColumnSpec(feature.canonical, kind, f"{feature.label}: {feature.help}", canonical_unit or feature.unit,
                      scaled(feature.low), scaled(feature.high), unknown_marker=unknown_marker, dtype=dtype)


# Order is the order columns are written in.
COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("track_id", "id", "Spotify track id (or any unique id)"),
    ColumnSpec("popularity", "int", "Spotify popularity, 0 (none) to 100 (most)", "points", 0, 100, dtype="int16"),
    ColumnSpec("track_name", "text", "Track title"),
    ColumnSpec("artist_id", "id", "Primary artist id; tracks of one artist are compared with each other"),
    ColumnSpec("artist_name", "text", "Primary artist name"),
    ColumnSpec("album_id", "id", "Album id"),
    ColumnSpec("album_name", "text", "Album title"),
    ColumnSpec("release_date", "date", "Release date; year-only and year-month dates keep their precision"),
    ColumnSpec("release_date_precision", "text", "'day', 'month' or 'year'"),
    # Release structure: where a track sits in its release (a single, the opener of an album, a bonus track).
    ColumnSpec("album_type", "category", "Kind of release the track came out on", "",
               choices=("album", "single", "compilation", "ep")),
    ColumnSpec("album_total_tracks", "int", "Number of tracks on the release", "tracks", 1, None),
    ColumnSpec("track_number", "int", "Position of the track on its disc (1 = first)", "position", 1, None),
    ColumnSpec("disc_number", "int", "Disc of the release the track is on (1 = first)", "disc", 1, None),
    ColumnSpec("n_artists", "int", "Number of artists credited on the track", "artists", 1, None),
    ColumnSpec("isrc", "id", "International Standard Recording Code (the same recording across releases)"),
    feature_column("explicit", "bool"),
    feature_column("artist_followers", "int", dtype="float64"),
    ColumnSpec("artist_genres", "list", "Spotify genres of the primary artist"),
    ColumnSpec("genre", "text", "Dataset or playlist genre of the track"),
    # Audio features: meaning, unit and range from the feature registry (popdrivers.registry).
    feature_column("danceability", "float"),
    feature_column("energy", "float"),
    feature_column("key", "int"),
    feature_column("loudness", "float"),
    feature_column("mode", "int"),
    feature_column("speechiness", "float"),
    feature_column("acousticness", "float"),
    feature_column("instrumentalness", "float"),
    feature_column("liveness", "float"),
    feature_column("valence", "float"),
    feature_column("tempo", "float", unknown_marker=0.0),
    feature_column("time_signature", "int"),
    # A length of 0 ms is Spotify's "unknown" (rows with no audio analysis in public datasets).
    feature_column("duration_min", "int", unknown_marker=0.0, canonical_unit="ms"),
    # Provenance: popularity and audio features may come from elsewhere than Spotify (Deezer, a merged file).
    ColumnSpec("deezer_rank", "int", "Deezer's rank of the track (not Spotify popularity)", "rank", 0, None,
               dtype="float64"),
    ColumnSpec("popularity_source", "text", "Where popularity came from: 'spotify', 'deezer_rank' (transformed) "
               "or the file it was merged from"),
    ColumnSpec("features_source", "text", "Where the audio features came from: 'spotify' or the file/service"),
    # --- Audio analysis (popdrivers.audio): the analysed file and popdrivers' own descriptors -------------------
    ColumnSpec("file", "text", "Audio file the row was analysed from (popdrivers analyze)"),
    *(feature_column(f.name, "float") for f in registry.features() if f.sources == ("audio",)),
    ColumnSpec("analysed_seconds", "float", "Seconds of audio analysed, from the start of the file (long files are "
               "capped; duration_ms is still the whole length)", "s", 0, None),
    ColumnSpec("analysis_notes", "text", "What the audio analysis noticed (part analysed, truncation, octave "
               "correction, weak tonal centre)"),
)
SPECS: dict[str, ColumnSpec] = {c.name: c for c in COLUMNS}
CANONICAL_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS)
TARGET = "popularity"
UNIT_INTERVAL_FEATURES = (
    "danceability", "energy", "speechiness", "acousticness", "instrumentalness", "liveness", "valence",
)
AUDIO_FEATURES: tuple[str, ...] = (
    "danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness",
    "instrumentalness", "liveness", "valence", "tempo", "time_signature", "duration_ms",
)
RELEASE_STRUCTURE_COLUMNS: tuple[str, ...] = (
    "album_type", "album_total_tracks", "track_number", "disc_number", "n_artists", "isrc",
)
# Names people use for canonical columns (compared by :func:`column_key`: case, spaces and punctuation aside, so
# "Track.Name", "track name" and "Beats.Per.Minute" match). A file in the canonical layout that has one of these
# (and not the canonical name itself) is read with it, and the mapping is reported; elsewhere they suggest a fix.
# Units and scales (percent, seconds, key names) are recognised from the values by the readers.
KNOWN_ALIASES: dict[str, str] = {
    "id": "track_id", "spotify_id": "track_id", "track_uri": "track_id", "uri": "track_id", "spotify_uri": "track_id",
    "track_popularity": "popularity", "spotify_popularity": "popularity", "pop": "popularity",
    "name": "track_name", "song": "track_name", "song_name": "track_name", "track": "track_name",
    "title": "track_name", "track_title": "track_name",
    "artist": "artist_name", "track_artist": "artist_name", "artists": "artist_name", "artist(s)_name": "artist_name",
    "artist_names": "artist_name", "track_artists": "artist_name",
    "track_artist_id": "artist_id", "album": "album_name", "track_album_name": "album_name",
    "album_title": "album_name",
    "track_album_id": "album_id", "album_release_date": "release_date", "track_album_release_date": "release_date",
    "year": "release_date", "released_year": "release_date", "release_year": "release_date",
    "track_explicit": "explicit", "is_explicit": "explicit", "explicit_track": "explicit",
    "followers": "artist_followers", "genres": "artist_genres",
    "artist_genre": "artist_genres", "track_genre": "genre", "playlist_genre": "genre", "top_genre": "genre",
    "track_track_number": "track_number",
    "track_duration": "duration_ms", "track_length": "duration_ms", "length": "duration_ms", "duration": "duration_ms",
    "duration_s": "duration_ms", "dur": "duration_ms",
    "loadness": "loudness", "loudness_db": "loudness", "db": "loudness",
    "bpm": "tempo", "beats_per_minute": "tempo",
    # The Kaggle "top songs 2010-2019" abbreviations.
    "nrgy": "energy", "dnce": "danceability", "live": "liveness", "val": "valence", "acous": "acousticness",
    "spch": "speechiness",
}


def column_key(name: str) -> str:
    """A header compared up to case, spaces and punctuation: "Track ID", "Track.Name", "danceability_%" and
    "Loudness..dB.." are "track_id", "track_name", "danceability" and "loudness_db"."""
    text = name.strip().lstrip("\ufeff").strip().casefold()
    return re.sub(r"[^0-9a-z]+", "_", text).strip("_") or text


def alias_target(name: str) -> str | None:
    """The canonical column a header means by a common other name (:data:`KNOWN_ALIASES`), or None."""
    return _ALIASES_BY_KEY.get(column_key(name))


_ALIASES_BY_KEY = {column_key(alias): target for alias, target in KNOWN_ALIASES.items()}
# Columns outside the canonical set that popdrivers itself writes and uses (kept, and not reported as unused).
EXTRA_COLUMNS: dict[str, str] = {
    "collected_at": "when the data was collected; track ages are measured at this date",
    "dataset_genres": "every genre the dataset lists the track under (its repeated rows merged)",
}
_TRUE = {"true", "t", "1", "1.0", "yes", "y"}
_FALSE = {"false", "f", "0", "0.0", "no", "n"}
_MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one column: what, how many rows, examples, and how to fix it."""

    column: str
    issue: str
    rows: int = 0
    examples: tuple[str, ...] = ()
    fix: str = ""
    # Where the first affected rows are, as the user sees the file ("line 7"; "row 3" for a DataFrame).
    locations: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"column '{self.column}'" if self.column != "*" else "table"
        text = f"{where}: {self.issue}"
        if self.rows:
            text += f" ({self.rows} row{'s' if self.rows != 1 else ''}"
            if self.examples:
                text += f", e.g. {', '.join(self.examples)}"
            if self.locations:
                text += f" at {', '.join(self.locations)}" + (" ..." if self.rows > len(self.locations) else "")
            text += ")"
        if self.fix:
            text += f". Fix: {self.fix}"
        return text


@dataclass(frozen=True)
class DropRecord:
    """Rows that did not make it into the table as separate rows, and why."""

    reason: str
    rows: int
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class ValidationReport:
    """What validation did to the table: rows in/out, rows merged or dropped with reasons, notes."""

    rows_in: int
    rows_out: int
    dropped: tuple[DropRecord, ...] = ()
    notes: tuple[str, ...] = ()
    popularity_conflicts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "dropped": [{"reason": d.reason, "rows": d.rows, "examples": list(d.examples)} for d in self.dropped],
            "notes": list(self.notes),
            "popularity_conflicts": self.popularity_conflicts,
        }


@dataclass(frozen=True)
class _Coerced:
    values: pd.Series
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# How check_tracks names a row in messages while it runs: the reader's (a file line, a sheet row) or "row <label>".
_ROW_LABEL: ContextVar[Callable[[Any], str] | None] = ContextVar("popdrivers_row_label", default=None)


def _locations(mask: pd.Series) -> tuple[str, ...]:
    """Where the first rows of ``mask`` are, as the user sees the table (file lines when a reader said so)."""
    label = _ROW_LABEL.get() or (lambda index: f"row {index}")
    return tuple(label(index) for index in mask.index[mask.to_numpy(dtype=bool)][:_MAX_EXAMPLES])


def _examples(values: pd.Series) -> tuple[str, ...]:
    uniq = pd.unique(values.astype(str))[:_MAX_EXAMPLES]
    return tuple(repr(v) if len(v) <= 40 else repr(v[:37] + "...") for v in uniq)


def _is_blank(series: pd.Series) -> pd.Series:
    missing = series.isna()
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        missing |= series.astype("string").str.strip().fillna("").eq("")
    return missing


def _range_text(spec: ColumnSpec) -> str:
    if spec.low is not None and spec.high is not None:
        return f"{spec.low:g} to {spec.high:g}"
    if spec.low is not None:
        return f">= {spec.low:g}"
    return f"<= {spec.high:g}"


def _coerce_number(spec: ColumnSpec, raw: pd.Series) -> _Coerced:
    problems: list[Problem] = []
    notes: list[str] = []
    if pd.api.types.is_bool_dtype(raw):
        raw = raw.astype("float64")
    blank = _is_blank(raw)
    values = pd.to_numeric(raw.where(~blank), errors="coerce").astype("float64")
    bad = values.isna() & ~blank
    if bad.any():
        problems.append(Problem(
            spec.name, "values are not numbers", int(bad.sum()), _examples(raw[bad]),
            f"'{spec.name}' must be numeric ({spec.unit or 'a number'}); clean those cells or leave them empty",
            _locations(bad),
        ))
    infinite = np.isinf(values)
    if infinite.any():
        problems.append(Problem(spec.name, "values are infinite", int(infinite.sum()), _examples(raw[infinite]),
                                "replace them with a real value or leave the cell empty", _locations(infinite)))
        values = values.where(~infinite)
    if spec.unknown_marker is not None:
        marker = values.eq(spec.unknown_marker)
        if marker.any():
            notes.append(f"{spec.name}: {int(marker.sum())} value(s) of {spec.unknown_marker:g} mean 'not measured' "
                         "for Spotify and are treated as missing")
            values = values.where(~marker)
    if spec.kind == "int":
        fractional = values.notna() & (values % 1 != 0)
        if fractional.any():
            problems.append(Problem(spec.name, "values are not whole numbers", int(fractional.sum()),
                                    _examples(raw[fractional]), f"'{spec.name}' counts {spec.unit or 'units'}: "
                                    "use whole numbers", _locations(fractional)))
    out_of_range = pd.Series(False, index=values.index)
    if spec.low is not None:
        out_of_range |= values < spec.low
    if spec.high is not None:
        out_of_range |= values > spec.high
    if out_of_range.any():
        unit = f" {spec.unit}" if spec.unit and spec.unit not in {"0-1", "0/1"} else ""
        problems.append(Problem(
            spec.name, f"values outside {_range_text(spec)}{unit}", int(out_of_range.sum()),
            _examples(raw[out_of_range]),
            f"check the unit of '{spec.name}' ({spec.description}); correct or blank the out-of-range cells",
            _locations(out_of_range),
        ))
    return _Coerced(values, problems, notes)


def parse_bool(value: Any) -> bool | None:
    """Parse True/False, true/false, 1/0 (and float-coded 1.0/0.0); None when blank; raise on anything else."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    text = str(value).strip().lower()
    if text == "" or text == "nan":
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(value)


def _coerce_bool(spec: ColumnSpec, raw: pd.Series) -> _Coerced:
    if pd.api.types.is_bool_dtype(raw) and not raw.isna().any():
        return _Coerced(raw.astype(bool))
    # Parse each distinct value once, then look rows up by code: columns are long, distinct values few.
    codes, uniques = pd.factorize(raw.astype(object))
    lookup = np.full(len(uniques) + 1, np.nan)  # the last slot serves code -1 (missing)
    bad_codes = []
    for code, value in enumerate(uniques):
        try:
            parsed_value = parse_bool(value)
        except ValueError:
            bad_codes.append(code)
            continue
        if parsed_value is not None:
            lookup[code] = float(parsed_value)
    bad = pd.Series(np.isin(codes, bad_codes), index=raw.index)
    parsed = pd.Series(lookup[codes], index=raw.index)
    problems = []
    if bad.any():
        problems.append(Problem(spec.name, "values are not booleans", int(bad.sum()), _examples(raw[bad]),
                                f"write '{spec.name}' as True/False, true/false or 1/0", _locations(bad)))
    if parsed.isna().any():
        return _Coerced(parsed.astype("boolean"), problems)
    return _Coerced(parsed.astype(bool), problems)


def parse_genre_list(value: Any) -> list[str]:
    """Parse a genre list from a list, a JSON list, a Python-list string or a ';'-joined string."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, list | tuple | np.ndarray):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError) as exc:
                raise ValueError(value) from exc
        if not isinstance(parsed, list):
            raise ValueError(value)
        return [str(v).strip() for v in parsed if str(v).strip()]
    return [part.strip() for part in text.split(";") if part.strip()]


def _coerce_list(spec: ColumnSpec, raw: pd.Series) -> _Coerced:
    parsed: list[list[str]] = []
    bad_rows: list[int] = []
    # Parse each distinct value once (artists repeat across their tracks). Already-parsed lists (simulated
    # tables, Parquet) are keyed by their contents: re-cleaning 1M lists one by one was most of validate's time.
    cache: dict[str | tuple[Any, ...], list[str]] = {}
    for i, value in enumerate(raw.tolist()):
        key: str | tuple[Any, ...] | None = None
        if isinstance(value, str):
            key = value
        elif isinstance(value, list | tuple | np.ndarray):
            key = tuple(value)
        try:
            cached = cache.get(key) if key is not None else None
        except TypeError:  # unhashable items: parse without caching
            key, cached = None, None
        if cached is not None:
            parsed.append(list(cached))
            continue
        try:
            result = parse_genre_list(value)
        except ValueError:
            bad_rows.append(i)
            result = []
            key = None  # not cached, so every bad row is counted
        if key is not None:
            cache[key] = result
        parsed.append(result)
    problems = []
    if bad_rows:
        bad = pd.Series(np.isin(np.arange(len(raw)), bad_rows), index=raw.index)
        problems.append(Problem(spec.name, "values are not lists of genres", len(bad_rows),
                                _examples(raw.iloc[bad_rows]),
                                "write a JSON list like [\"dance pop\", \"pop\"] or 'dance pop;pop'", _locations(bad)))
    return _Coerced(pd.Series(parsed, index=raw.index, dtype=object), problems)


def _as_nanoseconds(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Cast to datetime64[ns]; dates outside its range (years before 1677, "-1") become NaT and are flagged."""
    outside = values.notna() & ((values < pd.Timestamp.min) | (values > pd.Timestamp.max))
    return values.where(~outside).astype("datetime64[ns]"), outside


def parse_release_dates(raw: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Parse dates of mixed precision. Returns (datetime64 values, precision labels, unparseable mask)."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        values = pd.to_datetime(raw).dt.tz_localize(None) if getattr(raw.dt, "tz", None) else pd.to_datetime(raw)
        values, outside = _as_nanoseconds(values)
        precision = pd.Series(np.where(values.isna(), None, "day"), index=raw.index, dtype="string")
        return values, precision, outside
    blank = _is_blank(raw)
    text = raw.astype("string").str.strip()
    # Float-coded years ("2011.0") appear in some exports.
    text = text.str.replace(r"^(\d{4})\.0$", r"\1", regex=True)
    is_year = text.str.fullmatch(r"\d{4}").fillna(False)
    is_month = text.str.fullmatch(r"\d{4}-\d{1,2}").fillna(False)
    full = text.where(~is_year, text + "-01-01")
    full = full.where(~is_month, full + "-01")
    values = pd.to_datetime(full, errors="coerce", format="mixed")
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_localize(None)
    values, _ = _as_nanoseconds(values)
    precision = pd.Series(np.select([is_year.to_numpy(bool), is_month.to_numpy(bool)], ["year", "month"], "day"),
                          index=raw.index, dtype="string")
    bad = values.isna() & ~blank
    precision = precision.where(values.notna())
    return values, precision, bad


def _coerce_date(spec: ColumnSpec, raw: pd.Series) -> _Coerced:
    values, precision, bad = parse_release_dates(raw)
    problems = []
    if bad.any():
        problems.append(Problem(spec.name, "values are not dates", int(bad.sum()), _examples(raw[bad]),
                                "write dates as YYYY-MM-DD, YYYY-MM or YYYY", _locations(bad)))
    latest = pd.Timestamp.now() + pd.Timedelta(days=366)
    implausible = values.notna() & ((values < pd.Timestamp("1900-01-01")) | (values > latest))
    if implausible.any():
        problems.append(Problem(spec.name, "dates before 1900 or more than a year in the future",
                                int(implausible.sum()), _examples(raw[implausible]),
                                "check the date column and its format (day-first dates are not supported)",
                                _locations(implausible)))
    out = values.to_frame(spec.name)
    out["release_date_precision"] = precision
    return _Coerced(out, problems)  # type: ignore[arg-type]


def _coerce_id(spec: ColumnSpec, raw: pd.Series) -> _Coerced:
    blank = _is_blank(raw)
    if pd.api.types.is_float_dtype(raw):
        # Ids read as floats (1.0, 2.0) are whole numbers that lost their type in a CSV round trip.
        whole = raw.notna() & (raw % 1 == 0)
        text = raw.astype("string").where(~whole, raw.where(whole).astype("Int64").astype("string"))
    else:
        text = raw.astype("string").str.strip()
    return _Coerced(text.where(~blank).astype("string"))


def _coerce_text(spec: ColumnSpec, raw: pd.Series) -> _Coerced:
    return _Coerced(raw.astype("string").where(~_is_blank(raw)))


def _coerce_category(spec: ColumnSpec, raw: pd.Series) -> _Coerced:
    blank = _is_blank(raw)
    text = raw.astype("string").str.strip().str.lower().where(~blank)
    bad = text.notna() & ~text.isin(spec.choices)
    problems = []
    if bad.any():
        problems.append(Problem(spec.name, f"values are not one of {', '.join(spec.choices)}", int(bad.sum()),
                                _examples(raw[bad]), f"write '{spec.name}' as one of {', '.join(spec.choices)} "
                                "or leave the cell empty", _locations(bad)))
    return _Coerced(text.astype("string"), problems)


_COERCERS = {
    "id": _coerce_id, "text": _coerce_text, "int": _coerce_number, "float": _coerce_number,
    "bool": _coerce_bool, "date": _coerce_date, "list": _coerce_list, "category": _coerce_category,
}


def suggest_column(missing: str, columns: Iterable[str]) -> str:
    """A 'did you mean' hint for a missing column, from known aliases and near spellings."""
    columns = [str(c) for c in columns]
    aliases = [c for c in columns if alias_target(c) == missing]
    if aliases:
        return f"rename column '{aliases[0]}' to '{missing}'"
    close = difflib.get_close_matches(missing, columns, n=1, cutoff=0.75)
    if close:
        return f"did you mean '{close[0]}'? rename it to '{missing}'"
    if len(columns) == 1 and any(sep in columns[0] for sep in ";\t|"):
        return "the file seems to use another delimiter than ','; save it as comma-separated CSV"
    return f"add a '{missing}' column"


def check_tracks(
    df: pd.DataFrame, *, require_popularity: bool = True, source: str | None = None,
    row_label: Callable[[Any], str] | None = None,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Validate and coerce a track table; return the clean table and a report of what changed.

    Parameters
    ----------
    df
        Any DataFrame using canonical column names. Extra columns are kept untouched.
    require_popularity
        False for prediction input, where ``popularity`` may be absent.
    source
        Name of the file the table came from, quoted in error messages.
    row_label
        How a row is named in messages, from its index label (a reader's frame is indexed by file line:
        ``"line 7"``); default ``"row <index label>"``.

    Raises
    ------
    SchemaError
        Listing every problem found (column, rows affected, examples, fix), not just the first.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    token = _ROW_LABEL.set(row_label)
    try:
        return _check_tracks(df, require_popularity, source)
    finally:
        _ROW_LABEL.reset(token)


def _check_tracks(df: pd.DataFrame, require_popularity: bool, source: str | None,
                  ) -> tuple[pd.DataFrame, ValidationReport]:
    rows_in = len(df)
    if df.shape[1] == 0:
        raise SchemaError([Problem("*", "has no columns (empty file?)", fix="provide a file with a header row "
                                   "and at least the columns track_id and popularity")], source)
    if rows_in == 0:
        raise SchemaError([Problem("*", "has a header but no rows", fix="provide at least one track")], source)
    df = df.rename(columns=lambda c: str(c).strip().lstrip("\ufeff"))
    problems: list[Problem] = []
    notes: list[str] = []
    required = ["track_id"] + (["popularity"] if require_popularity else [])
    for name in required:
        if name not in df.columns:
            problems.append(Problem(name, "is missing", fix=suggest_column(name, df.columns)))
    out = pd.DataFrame(index=df.index)
    for spec in COLUMNS:
        if spec.name not in df.columns or spec.name == "release_date_precision":
            continue
        coerced = _COERCERS[spec.kind](spec, df[spec.name])
        problems += coerced.problems
        notes += coerced.notes
        if spec.kind == "date":
            out[spec.name] = coerced.values[spec.name]
            given = df.get("release_date_precision")
            out["release_date_precision"] = (
                given.astype("string").where(given.notna(), coerced.values["release_date_precision"])
                if given is not None else coerced.values["release_date_precision"]
            )
        elif spec.kind in {"int", "float"}:
            out[spec.name] = coerced.values
        else:
            out[spec.name] = coerced.values
    for name in required:
        if name in out.columns:
            blank = out[name].isna()
            if blank.any():
                problems.append(Problem(name, "has empty cells", int(blank.sum()),
                                        fix=f"every track needs a {name}; fill or remove those rows",
                                        locations=_locations(blank)))
    if problems:
        raise SchemaError(problems, source)

    if "popularity" in out.columns:
        out["popularity"] = (out["popularity"].astype("int16") if not out["popularity"].isna().any()
                             else out["popularity"].astype("float32"))
    for spec in COLUMNS:
        if spec.kind in {"int", "float"} and spec.name in out.columns and spec.name != "popularity":
            out[spec.name] = out[spec.name].astype(spec.dtype)
    extras = [c for c in df.columns if c not in out.columns]
    out = pd.concat([out, df[extras]], axis=1) if extras else out
    out, dropped, conflicts = _collapse_duplicates(out)
    # One order however the table arrived: canonical columns, the dataset_genres merging repeats adds, other
    # extras (the readers place the schema's own extras first, so a re-read table is unchanged). An extra can carry
    # a canonical name (release_date_precision without release_date): it is listed once.
    ordered = [c for c in (*CANONICAL_COLUMNS, "dataset_genres") if c in out.columns]
    out = out[ordered + [c for c in out.columns if c not in ordered]]
    if conflicts:
        notes.append(f"{conflicts} track id(s) appear with different popularity values; "
                     "the first row's value is kept (values are not averaged)")
    if dropped:
        # Merging can remove the only gaps of a column: settle its dtype on the rows kept, so the same table
        # gets the same dtypes however it arrived (and survives a CSV round trip unchanged).
        if "popularity" in out.columns and out["popularity"].dtype != np.int16 and out["popularity"].notna().all():
            out["popularity"] = out["popularity"].astype("int16")
        if "explicit" in out.columns and out["explicit"].dtype == "boolean" and out["explicit"].notna().all():
            out["explicit"] = out["explicit"].astype(bool)
    out = out.reset_index(drop=True)
    report = ValidationReport(rows_in, len(out), tuple(dropped), tuple(notes), conflicts)
    return out, report


def _collapse_duplicates(df: pd.DataFrame) -> tuple[pd.DataFrame, list[DropRecord], int]:
    """Collapse repeated track ids to their first row; genres of all copies merge into ``dataset_genres``."""
    dup_mask = df["track_id"].duplicated(keep=False)
    if not dup_mask.any():
        return df, [], 0
    repeated = df[dup_mask]
    conflicts = 0
    if "popularity" in df.columns:
        conflicts = int((repeated.groupby("track_id", sort=False)["popularity"].nunique(dropna=True) > 1).sum())
    keep = ~df["track_id"].duplicated(keep="first")
    out = df[keep].copy()
    if "genre" in df.columns:
        pairs = repeated[["track_id", "genre"]].dropna().drop_duplicates()
        merged = {track: sorted(str(v) for v in genres)
                  for track, genres in pairs.groupby("track_id", sort=False)["genre"].agg(list).items()}
        # Plain Python lists in an object column: pandas would otherwise infer a pyarrow list dtype that
        # Parquet metadata cannot turn back into a pandas dtype on reading. Python lists, not Series
        # element access, keep this fast on a million rows.
        ids = out["track_id"].astype(object).tolist()
        genres = out["genre"].astype(object).where(out["genre"].notna(), None).tolist()
        out["dataset_genres"] = pd.Series(
            [list(merged[t]) if t in merged else ([] if g is None else [str(g)])
             for t, g in zip(ids, genres, strict=True)],
            index=out.index, dtype=object)
    n_removed = int((~keep).sum())
    reason = "duplicate track_id: repeated rows merged into the first"
    if "dataset_genres" in out.columns and out["dataset_genres"].map(len).gt(1).any():
        reason += " (the genres of all copies are kept together)"
    record = DropRecord(reason, n_removed, tuple(pd.unique(df.loc[~keep, "track_id"].astype(str))[:_MAX_EXAMPLES]))
    return out, [record], conflicts


def validate(df: pd.DataFrame, *, require_popularity: bool = True, source: str | None = None) -> pd.DataFrame:
    """Return the clean canonical table or raise one :class:`SchemaError` listing every problem.

    See :func:`check_tracks` for the parameters; this drops the report.
    """
    return check_tracks(df, require_popularity=require_popularity, source=source)[0]


def present_audio_features(df: pd.DataFrame) -> list[str]:
    """Audio feature columns present in ``df`` with at least one value."""
    return [c for c in AUDIO_FEATURES if c in df.columns and df[c].notna().any()]


def popularity_source(df: pd.DataFrame) -> str | None:
    """Where a table's popularity came from ('spotify', 'deezer_rank', a file), joined when mixed; None if unsaid."""
    if "popularity_source" not in df.columns:
        return None
    values = sorted(str(v) for v in pd.unique(df["popularity_source"].dropna()))
    return ", ".join(values) or None


def feature_source_family(value: Any) -> str:
    """The family a row's ``features_source`` belongs to: 'spotify' (also when unsaid: every public dataset's
    features are Spotify's), 'audio' (measured by popdrivers.audio, any extractor or origin), else the source's
    own name ('deezer', 'reccobeats', a merged file)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "spotify"
    text = str(value).strip().lower()
    if not text or text == "spotify":
        return "spotify"
    return "audio" if text.startswith("audio:") else text


def feature_source_families(df: pd.DataFrame) -> pd.Series:
    """:func:`feature_source_family` of every row (all 'spotify' when the table has no ``features_source``)."""
    if "features_source" not in df.columns:
        return pd.Series("spotify", index=df.index, dtype=object)
    values = df["features_source"].astype(object)
    return values.map(feature_source_family, na_action=None).astype(object)


# --------------------------------------------------------------------------------------------------------
# Checked input for fitting and prediction (a validated table passes through without re-coercion)


def _numbers_are_canonical(spec: ColumnSpec, s: pd.Series) -> bool:
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


def _column_is_canonical(spec: ColumnSpec, s: pd.Series) -> bool:
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
    """True when ``df`` already satisfies the schema, so :func:`validate` would change nothing.

    A cheap, conservative check (dtypes, ranges, markers) that lets a row of a validated table, or a row
    the app built with canonical dtypes, skip re-coercion (which costs ~30 ms per call even for one row).
    Anything it is unsure of returns False and goes through ``schema.validate``.
    """
    if "track_id" not in df.columns or len(df) == 0:
        return False
    if not all(_column_is_canonical(spec, df[spec.name]) for spec in COLUMNS if spec.name in df.columns):
        return False
    ids = df["track_id"]
    return not ids.isna().any() and not ids.str.strip().eq("").any()


def checked_tracks(tracks: pd.DataFrame, *, require_popularity: bool, keep_rows: bool = False) -> pd.DataFrame:
    """Validate ``tracks`` with :func:`validate` (same :class:`SchemaError` as everywhere).

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
        return validate(tracks, require_popularity=require_popularity)
    # Validate once as given (so errors read exactly as everywhere), then once more with positional
    # stand-in ids so repeated ids are kept as separate rows.
    validate(tracks, require_popularity=require_popularity)
    ids = tracks["track_id"].astype("string").str.strip().reset_index(drop=True)
    stand_in = tracks.reset_index(drop=True).assign(track_id=[f"row-{i}" for i in range(len(tracks))])
    out = validate(stand_in, require_popularity=require_popularity)
    out["track_id"] = ids
    return out
