"""Dataset files: writing the canonical table, and reading it back from every layout popdrivers knows.

The canonical table is written as Parquet (types kept) or CSV (list columns as JSON lists, dates ISO).

Readers map a public layout onto the canonical columns and hand the result to :func:`schema.check_tracks`,
which owns every rule about values. What a reader adds is the layout knowledge (column names, joins, quirks)
and a :class:`ReadReport` that accounts for every source row: kept, merged as a duplicate, or dropped with a
reason. Only the columns a layout needs are read (``usecols``), so a million-row public file does not carry
its URLs and playlist names through memory.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from popdrivers.artifacts import write_bytes_atomic
from popdrivers.errors import FormatError
from popdrivers.schema import (
    AUDIO_FEATURES,
    CANONICAL_COLUMNS,
    COLUMNS,
    DropRecord,
    Problem,
    SchemaError,
    check_tracks,
    parse_genre_list,
    suggest_column,
)

LIST_COLUMNS = ("artist_genres", "dataset_genres")
_TEXT_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_MAX_EXAMPLES = 5
# Columns of the canonical table that must stay text when read from CSV: ids can look like numbers
# ("007" would become 7) and dates must keep their written precision ("2009" is a year, not an int).
_TEXT_COLUMNS = ("track_id", "artist_id", "album_id", "release_date", "release_date_precision")


def write_tracks(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a canonical table to ``path`` (.parquet or .csv, by extension), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        buffer = io.BytesIO()
        df.to_parquet(buffer, index=False)
        return write_bytes_atomic(path, buffer.getvalue())
    if suffix == ".csv":
        out = df.copy()
        # Whole-number columns are stored as floats (NaN = unknown); write them as integers.
        for spec in COLUMNS:
            if spec.kind == "int" and spec.name in out.columns and pd.api.types.is_float_dtype(out[spec.name]):
                out[spec.name] = out[spec.name].round().astype("Int64")
        for column in LIST_COLUMNS:
            if column in out.columns:
                out[column] = out[column].map(lambda v: json.dumps(list(v) if v is not None else []))
        return write_bytes_atomic(path, out.to_csv(index=False, date_format="%Y-%m-%d").encode("utf-8"))
    raise ValueError(f"cannot write '{path}': use a .parquet or .csv file name")


# --------------------------------------------------------------------------------------------------------------
# The layouts
# --------------------------------------------------------------------------------------------------------------

_AUDIO_SAME_NAME = tuple(c for c in AUDIO_FEATURES if c != "duration_ms")


@dataclass(frozen=True)
class FormatSpec:
    """One layout popdrivers reads: what it is, and the columns (or files) it expects.

    ``signature`` are the columns whose presence identifies the layout during auto-detection;
    ``columns`` maps each source column the reader uses to its canonical name (or to itself for an
    extra column kept as is, or to ``""`` for a column used internally and not kept).
    """

    name: str
    description: str
    expects: tuple[str, ...]
    signature: frozenset[str] = frozenset()
    columns: Mapping[str, str] = field(default_factory=dict)
    folder: bool = False

    def describe(self) -> str:
        """One line: the name, what it is, and what it expects."""
        return f"{self.name}: {self.description}; expects {', '.join(self.expects)}"


def _same(*names: str) -> dict[str, str]:
    return {n: n for n in names}


# Relational crawl folder: the four tables of ../shared/data/catalog-2022 (the Spotify collector writes the same).
RELATIONAL_TABLES: dict[str, dict[str, str]] = {
    "track": {"track_id": "track_id", "track_name": "track_name", "track_artist_id": "artist_id",
              "track_album_id": "album_id", "track_popularity": "popularity", "track_explicit": "explicit",
              "track_number": "track_number", "disc_number": "disc_number", "track_disc_number": "disc_number",
              "track_isrc": "isrc", "isrc": "isrc", "track_n_artists": "n_artists", "n_artists": "n_artists",
              # written by `popdrivers collect` (Deezer's rank; where popularity came from)
              "track_deezer_rank": "deezer_rank", "track_popularity_source": "popularity_source"},
    "audio": {"track_id": "track_id", "track_duration": "duration_ms", "duration_ms": "duration_ms",
              **_same(*_AUDIO_SAME_NAME), "features_source": "features_source", "deezer_gain": "deezer_gain"},
    "album": {"album_id": "album_id", "album_name": "album_name", "album_release_date": "release_date",
              "album_release_date_precision": "release_date_precision", "album_artist_id": "album_artist_id",
              "album_type": "album_type", "album_total_tracks": "album_total_tracks",
              "album_genre": "genre"},  # a Deezer crawl: the album's main genre
    "artist": {"artist_id": "artist_id", "artist_name": "artist_name", "artist_genre": "artist_genres",
               "artist_genres": "artist_genres", "artist_followers": "artist_followers"},
}
# Columns a relational table cannot do without (the others are used when present).
RELATIONAL_REQUIRED: dict[str, tuple[str, ...]] = {
    "track": ("track_id", "track_artist_id", "track_album_id", "track_popularity"),
    "audio": ("track_id",),
    "album": ("album_id", "album_artist_id"),
    "artist": ("artist_id",),
}
CRAWL_FILE = "crawl.json"

FORMATS: dict[str, FormatSpec] = {
    spec.name: spec
    for spec in (
        FormatSpec(
            "canonical", "the table popdrivers writes (CSV or Parquet; list columns as JSON lists)",
            ("track_id", "popularity", "any other canonical column (track_name, artist_id, release_date, explicit, "
             "artist_followers, artist_genres, genre, the audio features, ...)"),
            frozenset({"track_id"}),
        ),
        FormatSpec(
            "relational", "a crawl folder of four tables (like catalog-2022 and the Spotify collector), "
            ".csv or .parquet, with an optional crawl.json holding collected_at",
            tuple(f"{table}.csv ({', '.join(RELATIONAL_REQUIRED[table])}, ...)" for table in RELATIONAL_TABLES),
            folder=True,
        ),
        FormatSpec(
            "tidytuesday", "TidyTuesday 2020-01-21 spotify_songs.csv (one row per track and playlist)",
            ("track_id", "track_name", "track_artist", "track_popularity", "track_album_id", "track_album_name",
             "track_album_release_date", "playlist_genre", "playlist_subgenre", "the audio features", "duration_ms"),
            frozenset({"track_id", "track_artist", "track_popularity", "playlist_genre"}),
            {"track_id": "track_id", "track_name": "track_name", "track_artist": "artist_name",
             "track_popularity": "popularity", "track_album_id": "album_id", "track_album_name": "album_name",
             "track_album_release_date": "release_date", "playlist_genre": "genre",
             "playlist_subgenre": "playlist_subgenre", **_same(*_AUDIO_SAME_NAME, "duration_ms")},
        ),
        FormatSpec(
            "genre-tracks", "genre-tracks tracks.csv (100 tracks per genre; 'loadness' sic, float-coded ints)",
            ("id", "name", "genre", "popularity", "loadness", "release_date", "explicit", "the audio features",
             "duration_ms"),
            frozenset({"id", "name", "genre", "popularity", "loadness"}),
            {"id": "track_id", "name": "track_name", "genre": "genre", "popularity": "popularity",
             "loadness": "loudness", "release_date": "release_date", "explicit": "explicit",
             **_same(*(c for c in _AUDIO_SAME_NAME if c != "loudness"), "duration_ms")},
        ),
        FormatSpec(
            "kaggle-114k", "Kaggle 'Spotify Tracks Dataset' dataset.csv (114k rows, artists ';'-joined)",
            ("Unnamed: 0", "track_id", "artists", "album_name", "track_name", "popularity", "duration_ms",
             "explicit", "the audio features", "time_signature", "track_genre"),
            frozenset({"track_id", "artists", "popularity", "track_genre"}),
            {"track_id": "track_id", "artists": "", "album_name": "album_name", "track_name": "track_name",
             "popularity": "popularity", "explicit": "explicit", "track_genre": "genre",
             **_same(*_AUDIO_SAME_NAME, "duration_ms")},
        ),
        FormatSpec(
            "kaggle-600k", "Kaggle 'Spotify 1921-2020 600k' tracks.csv, with an optional sibling artists.csv "
            "(id, followers, genres, name, popularity)",
            ("id", "name", "popularity", "duration_ms", "explicit", "artists", "id_artists", "release_date",
             "the audio features", "time_signature"),
            frozenset({"id", "artists", "id_artists", "popularity"}),
            {"id": "track_id", "name": "track_name", "popularity": "popularity", "explicit": "explicit",
             "artists": "", "id_artists": "", "release_date": "release_date",
             **_same(*_AUDIO_SAME_NAME, "duration_ms")},
        ),
    )
}
# Detection order: the most specific signatures first; canonical is the fallback for anything with track_id.
_DETECTION_ORDER = ("kaggle-600k", "kaggle-114k", "tidytuesday", "genre-tracks", "canonical")


@dataclass(frozen=True)
class ReadReport:
    """What reading a dataset did: every source row is kept, merged as a duplicate, or dropped with a reason.

    Attributes
    ----------
    source
        The file or folder read.
    format
        The layout it was read as (a key of :data:`FORMATS`).
    rows_read
        Rows in the source (for a relational folder: rows of its track table).
    rows_kept
        Rows of the canonical table returned.
    dropped
        Rows not kept as separate rows, with the reason: missing id or popularity, duplicates merged.
    notes
        Quirks handled (artist fallback, missing audio rows, unknown markers, popularity conflicts...).
    columns
        Columns of the returned table, canonical first, then extras.
    counts
        Named counts behind the notes (e.g. ``artist_fallback_to_album``), for programs and tests.
    """

    source: str
    format: str
    rows_read: int
    rows_kept: int
    dropped: tuple[DropRecord, ...] = ()
    notes: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    popularity_conflicts: int = 0

    @property
    def rows_dropped(self) -> int:
        """Source rows not kept as rows of their own (dropped or merged)."""
        return sum(d.rows for d in self.dropped)

    @property
    def canonical_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c in CANONICAL_COLUMNS)

    @property
    def extra_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in CANONICAL_COLUMNS)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the report."""
        return {
            "source": self.source,
            "format": self.format,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_dropped": self.rows_dropped,
            "dropped": [{"reason": d.reason, "rows": d.rows, "examples": list(d.examples)} for d in self.dropped],
            "notes": list(self.notes),
            "columns": {"canonical": list(self.canonical_columns), "extra": list(self.extra_columns)},
            "counts": dict(self.counts),
            "popularity_conflicts": self.popularity_conflicts,
        }


# --------------------------------------------------------------------------------------------------------------
# Low-level reading: headers, columns, errors that name the file
# --------------------------------------------------------------------------------------------------------------


def _is_parquet(path: Path) -> bool:
    if path.name.lower().endswith(_PARQUET_SUFFIXES):
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(4) == b"PAR1"
    except OSError:
        return False


def _known_formats_text() -> str:
    return "; ".join(FORMATS[name].describe() for name in ("canonical", *_DETECTION_ORDER[:-1], "relational"))


def _header(path: Path) -> list[str]:
    """Column names of a CSV or Parquet file, BOM stripped; clear errors for empty, binary or ';' files."""
    if _is_parquet(path):
        import pyarrow.parquet as pq

        try:
            return [str(c) for c in pq.read_schema(path).names if not str(c).startswith("__index_level_")]
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise FormatError(f"{path}: not a readable Parquet file ({exc}). Fix: rewrite it with "
                              "popdrivers.write_tracks or pandas.DataFrame.to_parquet") from None
    if path.stat().st_size == 0:
        raise SchemaError([Problem("*", "the file is empty (no header row)",
                                   fix="write a header row and at least the columns track_id and popularity")],
                          str(path))
    try:
        columns = [str(c).strip() for c in pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns]
    except pd.errors.EmptyDataError:
        raise SchemaError([Problem("*", "the file has no header row (only blank lines)",
                                   fix="write a header row and at least the columns track_id and popularity")],
                          str(path)) from None
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not UTF-8 text (a spreadsheet or binary file?). Fix: export it as "
                          "comma-separated CSV in UTF-8, or as Parquet") from None
    except pd.errors.ParserError as exc:
        raise FormatError(f"{path}: not a readable CSV file ({exc}). Fix: export it as comma-separated CSV") from None
    if len(columns) == 1:
        for delimiter, label in ((";", "';'"), ("\t", "tabs"), ("|", "'|'")):
            if delimiter in columns[0]:
                raise SchemaError([Problem(
                    columns[0][:60], f"the header is one column: the file separates columns with {label}, not ','",
                    fix="save it as comma-separated CSV (in pandas: df.to_csv(path, index=False))",
                )], str(path))
    return columns


def _read_csv(path: Path, usecols: list[str], **kwargs: Any) -> pd.DataFrame:
    # pandas' C engine, chunked (low_memory): measured on a 1M-row, 226 MB file it peaked at about half the
    # memory of the pyarrow engine (which holds the Arrow table and the frame at once) and was as fast.
    try:
        frame = pd.read_csv(path, usecols=usecols, encoding="utf-8-sig", **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"{path}: cannot be read as CSV ({exc}). Fix: check that every row has as many "
                          "fields as the header and that text with commas is quoted") from None
    return frame.rename(columns=lambda c: str(c).strip().lstrip("\ufeff"))


def _read_columns(path: Path, usecols: list[str], text_columns: tuple[str, ...] = (),
                  exact_text: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read only ``usecols`` of a CSV or Parquet file.

    ``text_columns`` stay text (ids, dates). ``exact_text`` columns treat only an empty cell as missing: in
    the table popdrivers writes, a track called "None" or an id "NA" is a value, not a gap. Public layouts
    keep pandas' NA tokens (TidyTuesday, written by R, spells missing names "NA").
    """
    if _is_parquet(path):
        return pd.read_parquet(path, columns=usecols)
    text = [c for c in usecols if c in text_columns or c in exact_text]
    frame = _read_csv(path, usecols, dtype=dict.fromkeys(text, "str"))
    # Re-read the few text columns where an NA token may have hidden a real value (rare, so usually skipped).
    recheck = [c for c in usecols if c in exact_text and frame[c].isna().any()]
    if recheck:
        exact = _read_csv(path, recheck, dtype=dict.fromkeys(recheck, "str"), keep_default_na=False,
                          na_values=[""])
        for column in recheck:
            frame[column] = exact[column].to_numpy()
    return frame


def _missing_columns_error(path: Path, layout: str, missing: list[str], present: list[str]) -> FormatError:
    fixes = []
    for name in missing:
        hint = suggest_column(name, present)
        fixes.append(f"'{name}' ({hint})" if not hint.startswith("add a") else f"'{name}'")
    return FormatError(f"{path}: the {layout} layout needs column(s) {', '.join(fixes)}; the file has "
                       f"{', '.join(present[:25])}{' ...' if len(present) > 25 else ''}. Fix: add or rename "
                       "those columns, or pass the right format= (auto-detection knows: "
                       f"{', '.join(FORMATS)})")


def _line_examples(mask: pd.Series) -> tuple[str, ...]:
    # Line numbers in the source file (header is line 1), which is where a user looks.
    positions = np.flatnonzero(mask.to_numpy(dtype=bool))[:_MAX_EXAMPLES]
    return tuple(f"line {p + 2}" for p in positions)


def _drop_unusable_rows(df: pd.DataFrame, require_popularity: bool) -> tuple[pd.DataFrame, list[DropRecord]]:
    """Drop rows of a public layout that have no track id or (when required) no usable popularity."""
    records: list[DropRecord] = []
    track_id = df["track_id"]
    no_id = track_id.isna() | track_id.astype("string").str.strip().fillna("").eq("")
    if no_id.any():
        records.append(DropRecord("no track_id in the source row", int(no_id.sum()), _line_examples(no_id)))
    keep = ~no_id
    if require_popularity and "popularity" in df.columns:
        popularity = pd.to_numeric(df["popularity"], errors="coerce")
        no_popularity = popularity.isna() & keep
        if no_popularity.any():
            records.append(DropRecord("no popularity (empty or not a number) in the source row",
                                      int(no_popularity.sum()), _line_examples(no_popularity)))
        keep &= ~no_popularity
    if records:
        df = df[keep.to_numpy()]
    return df, records


def _first_of_python_list(values: pd.Series) -> pd.Series:
    """First element of Python-list strings like "['Uli', 'Ana']" (the 600k layout), vectorised."""
    text = values.astype("string")
    first = text.str.extract(r"^\s*\[\s*(['\"])(.*?)\1", expand=True)[1]
    # Escaped quotes need a real parser; they are rare, so parse only those values.
    tricky = text.str.contains("\\", regex=False).fillna(False)
    if tricky.any():
        first = first.astype(object)
        for index, value in text[tricky].items():
            parsed = parse_genre_list(value)
            first.loc[index] = parsed[0] if parsed else None
    return first.astype("string").where(lambda s: s.str.strip().fillna("") != "")


# --------------------------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------------------------


def _relational_tables(folder: Path) -> dict[str, Path | None]:
    found: dict[str, Path | None] = {}
    for table in RELATIONAL_TABLES:
        found[table] = next((folder / f"{table}{suffix}" for suffix in (".csv", ".parquet", ".csv.gz", ".pq")
                             if (folder / f"{table}{suffix}").is_file()), None)
    return found


def _data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.name.lower().endswith(_TEXT_SUFFIXES + _PARQUET_SUFFIXES))


def _resolve(path: Path) -> tuple[Path, str | None]:
    """The file (or relational folder) to read and its detected layout (None: unrecognised)."""
    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    if path.is_dir():
        tables = _relational_tables(path)
        present = [t for t, p in tables.items() if p is not None]
        if "track" in present:
            return path, "relational"
        files = _data_files(path)
        # A folder holding one dataset file (or 600k's tracks.csv + artists.csv) means that file.
        if len(files) == 2 and {f.name for f in files} == {"tracks.csv", "artists.csv"}:
            files = [path / "tracks.csv"]
        if len(files) == 1:
            return _resolve(files[0])
        if present:
            raise FormatError(f"{path}: looks like a relational crawl folder ({', '.join(present)} found) but has "
                              "no track table. Fix: add track.csv (or track.parquet) with columns "
                              f"{', '.join(RELATIONAL_REQUIRED['track'])}")
        raise FormatError(f"{path}: a folder with {len(files)} data file(s) and no relational tables; "
                          f"pass one file. Formats known: {_known_formats_text()}")
    columns = set(_header(path))
    for name in _DETECTION_ORDER:
        if FORMATS[name].signature <= columns:
            return path, name
    # Several canonical names but no track_id: a canonical table with a renamed column. Reading it as
    # canonical lets validation say which column to rename ("did you mean ...").
    if len(columns & set(CANONICAL_COLUMNS)) >= 2:
        return path, "canonical"
    return path, None


def detect_format(path: str | os.PathLike[str]) -> str:
    """Name of the layout of ``path`` (a key of :data:`FORMATS`), from its columns or its files.

    Raises
    ------
    FormatError
        When the file matches no known layout; the message lists every format and the columns it expects.
    """
    resolved, name = _resolve(Path(path))
    if name is None:
        raise _unrecognised(resolved)
    return name


def _unrecognised(path: Path) -> FormatError:
    columns = _header(path)
    return FormatError(f"{path}: unrecognised layout (columns: {', '.join(columns[:20])}"
                       f"{' ...' if len(columns) > 20 else ''}). Fix: rename the id column to 'track_id' and the "
                       f"target to 'popularity', or pass format=. Formats known: {_known_formats_text()}")


# --------------------------------------------------------------------------------------------------------------
# Readers: each returns (frame with canonical names, drop records, notes, counts, rows read)
# --------------------------------------------------------------------------------------------------------------


@dataclass
class _Raw:
    frame: pd.DataFrame
    rows_read: int
    dropped: list[DropRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def _read_canonical(path: Path) -> _Raw:
    # The canonical table is ours: no row is dropped here, it goes strictly through validation.
    columns = _header(path)
    exact = tuple(spec.name for spec in COLUMNS if spec.kind in {"id", "text"} and spec.name in columns)
    frame = _read_columns(path, columns, _TEXT_COLUMNS, exact)
    for column in LIST_COLUMNS[1:]:
        # artist_genres is parsed by the schema; dataset_genres is an extra the schema writes but keeps as is.
        if column in frame.columns:
            frame[column] = frame[column].map(parse_genre_list)
    if "collected_at" in frame.columns and not pd.api.types.is_datetime64_any_dtype(frame["collected_at"]):
        parsed = pd.to_datetime(frame["collected_at"], errors="coerce", format="mixed")
        if parsed.notna().sum() == frame["collected_at"].notna().sum():
            frame["collected_at"] = parsed.dt.tz_localize(None) if parsed.dt.tz is not None else parsed
    if "collected_at" in frame.columns and pd.api.types.is_datetime64_any_dtype(frame["collected_at"]):
        frame["collected_at"] = frame["collected_at"].astype("datetime64[ns]")
    return _Raw(frame, len(frame))


def _read_flat(path: Path, layout: str, require_popularity: bool) -> _Raw:
    """A one-file public layout: read the columns it maps, rename, add artist ids, drop unusable rows.

    Layouts published by others drop rows without an id or popularity (each counted with a reason)
    instead of failing a whole real dataset over a few broken rows.
    """
    spec = FORMATS[layout]
    present = _header(path)
    missing = [c for c in sorted(spec.signature) if c not in present]
    if missing:
        raise _missing_columns_error(path, layout, missing, present)
    usecols = [c for c in spec.columns if c in present]
    text = tuple(c for c in usecols if spec.columns[c] in _TEXT_COLUMNS or c in {"artists", "id_artists"})
    frame = _read_columns(path, usecols, text)
    rows_read = len(frame)
    notes: list[str] = []
    counts: dict[str, int] = {}
    renamed = frame.rename(columns={c: spec.columns[c] for c in usecols if spec.columns[c]})
    if layout == "tidytuesday":
        # No artist id in this layout: the artist's name stands in, so within-artist comparisons still work.
        renamed["artist_id"] = ("name:" + renamed["artist_name"].astype("string")).astype("string")
        notes.append("no artist id in this layout: artist_id is 'name:' + the artist's name")
    elif layout == "kaggle-114k":
        names = frame["artists"].astype("string").str.split(";").str[0].str.strip()
        renamed["artist_name"] = names
        renamed["artist_id"] = "name:" + names
        renamed = renamed.drop(columns=["artists"])
        notes.append("no artist id in this layout: artist_id is 'name:' + the first credited artist's name")
    elif layout == "kaggle-600k":
        renamed["artist_name"] = _first_of_python_list(frame["artists"])
        renamed["artist_id"] = _first_of_python_list(frame["id_artists"])
        renamed = renamed.drop(columns=["artists", "id_artists"])
    elif layout == "genre-tracks":
        notes.append("no artist column in this layout: within-artist analysis is not possible with it")
    renamed, dropped = _drop_unusable_rows(renamed, require_popularity)
    if layout == "kaggle-600k":
        renamed = _join_600k_artists(path, renamed, notes, counts)
    return _Raw(renamed, rows_read, dropped, notes, counts)


def _join_600k_artists(path: Path, tracks: pd.DataFrame, notes: list[str], counts: dict[str, int]) -> pd.DataFrame:
    """Add followers and genres of each track's first artist from a sibling artists.csv, when there is one."""
    sibling = next((path.with_name(n) for n in ("artists.csv", "artists.parquet") if path.with_name(n).is_file()),
                   None)
    if sibling is None:
        notes.append(f"no artists.csv beside {path.name}: artist_followers and artist_genres are not available")
        return tracks
    present = _header(sibling)
    missing = [c for c in ("id", "followers", "genres") if c not in present]
    if missing:
        raise _missing_columns_error(sibling, "kaggle-600k artists", missing, present)
    artists = _read_columns(sibling, ["id", "followers", "genres"], ("id", "genres"))
    artists = artists[artists["id"].isin(tracks["artist_id"].dropna().unique())]
    artists = artists.drop_duplicates("id").set_index("id")
    tracks = tracks.copy()
    tracks["artist_followers"] = tracks["artist_id"].map(artists["followers"])
    tracks["artist_genres"] = tracks["artist_id"].map(artists["genres"])
    unmatched = int((tracks["artist_id"].notna() & ~tracks["artist_id"].isin(artists.index)).sum())
    counts["artist_not_in_artists_file"] = unmatched
    if unmatched:
        notes.append(f"{unmatched} track(s) have a first artist missing from {sibling.name}: "
                     "their followers and genres are left empty")
    return tracks


def _read_table(table: str, path: Path) -> pd.DataFrame:
    mapping = RELATIONAL_TABLES[table]
    if table == "audio" and path.stat().st_size == 0:
        # A crawl that has not fetched audio features yet may leave the file empty: the tracks still count.
        return pd.DataFrame({"track_id": pd.Series(dtype="string")})
    present = _header(path)
    missing = [c for c in RELATIONAL_REQUIRED[table] if c not in present]
    if missing:
        raise _missing_columns_error(path, f"relational {table}-table", missing, present)
    usecols = [c for c in mapping if c in present]
    # duration_ms and track_duration both map to duration_ms: use the first present only.
    if "track_duration" in usecols and "duration_ms" in usecols:
        usecols.remove("duration_ms")
    text = tuple(c for c in usecols if c.endswith("_id") or "release_date" in c)
    return _read_columns(path, usecols, text).rename(columns={c: mapping[c] for c in usecols})


def _unique_by(frame: pd.DataFrame, key: str, table: str, notes: list[str]) -> pd.DataFrame:
    # A lookup table with a repeated key would multiply tracks in the join: keep its first row.
    repeated = frame[key].duplicated()
    if repeated.any():
        notes.append(f"{table} table: {int(repeated.sum())} repeated {key}(s); the first row of each is used")
        frame = frame[~repeated]
    return frame.set_index(key)


def _read_relational(folder: Path, require_popularity: bool) -> _Raw:
    tables = _relational_tables(folder)
    missing = [t for t, p in tables.items() if p is None]
    if missing:
        wanted = "; ".join(f"{t}.csv or {t}.parquet with columns {', '.join(RELATIONAL_REQUIRED[t])}"
                           for t in missing)
        raise FormatError(f"{folder}: relational crawl folder is missing its {', '.join(missing)} table(s). "
                          f"Fix: add {wanted} (an audio table may hold only its header)")
    paths: dict[str, Path] = {t: p for t, p in tables.items() if p is not None}
    notes: list[str] = []
    counts: dict[str, int] = {}
    tracks = _read_table("track", paths["track"])
    rows_read = len(tracks)
    tracks, dropped = _drop_unusable_rows(tracks, require_popularity)
    if require_popularity and tracks.empty and rows_read:
        raise _no_popularity_error(folder, rows_read)

    albums = _unique_by(_read_table("album", paths["album"]), "album_id", "album", notes)
    for column in albums.columns:
        tracks[column] = tracks["album_id"].map(albums[column])
    no_album = int((~tracks["album_id"].isin(albums.index)).sum())
    counts["tracks_without_album"] = no_album
    if no_album:
        notes.append(f"{no_album} track(s) have an album id missing from {paths['album'].name}: "
                     "their album name and release date are left empty")

    artists = _unique_by(_read_table("artist", paths["artist"]), "artist_id", "artist", notes)
    known = tracks["artist_id"].isin(artists.index)
    # A featured or collaborating artist is often not in the artist table while the album's artist is.
    fallback = ~known & tracks["album_artist_id"].isin(artists.index)
    unresolved = ~known & ~fallback
    counts["artist_missing_from_artist_table"] = int((~known).sum())
    counts["artist_fallback_to_album"] = int(fallback.sum())
    counts["artist_unresolved"] = int(unresolved.sum())
    if (~known).any():
        notes.append(f"{int((~known).sum())} track(s) name an artist id missing from {paths['artist'].name}: "
                     f"{int(fallback.sum())} use their album's artist instead, {int(unresolved.sum())} keep their "
                     "own artist id without name, followers or genres")
    tracks.loc[fallback, "artist_id"] = tracks.loc[fallback, "album_artist_id"]
    tracks = tracks.drop(columns=["album_artist_id"])
    for column in artists.columns:
        tracks[column] = tracks["artist_id"].map(artists[column])

    audio = _unique_by(_read_table("audio", paths["audio"]), "track_id", "audio", notes)
    features = [c for c in audio.columns if c in AUDIO_FEATURES]
    no_audio = int((~tracks["track_id"].isin(audio.index)).sum())
    counts["tracks_without_audio"] = no_audio
    for column in features:
        tracks[column] = tracks["track_id"].map(audio[column]).astype("float64")
    for column in ("features_source", "deezer_gain"):  # provenance and Deezer's gain, from a collector's crawl
        if column in audio.columns:
            tracks[column] = tracks["track_id"].map(audio[column])
    if audio.empty:
        notes.append(f"{paths['audio'].name} has no rows: every audio feature is left empty (NaN); "
                     "tracks are kept")
    elif no_audio:
        notes.append(f"{no_audio} track(s) have no row in {paths['audio'].name}: their audio features are left "
                     "empty (NaN); the tracks are kept")

    collected_at = _collected_at(folder, notes)
    if collected_at is not None:
        tracks["collected_at"] = pd.Series(collected_at, index=tracks.index, dtype="datetime64[ns]")
    return _Raw(tracks, rows_read, dropped, notes, counts)


def _no_popularity_error(folder: Path, rows: int) -> SchemaError:
    """No track of a crawl folder has popularity: say why (from crawl.json) and how to add it."""
    why = ""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        crawl = json.loads((folder / CRAWL_FILE).read_text(encoding="utf-8-sig"))
        if crawl.get("popularity") == "unavailable":
            why = (f"; {CRAWL_FILE} says popularity is unavailable: a Spotify Development Mode app gets no "
                   "popularity since Feb/Mar 2026")
    return SchemaError([Problem(
        "popularity", f"none of the {rows} tracks of this crawl has a popularity (track_popularity is empty{why})",
        fix="train and drivers need popularity: rerun the same `popdrivers collect` command with --popularity FILE "
            "(a dataset, or a CSV track_id,popularity or isrc,popularity; no new requests), or crawl with "
            "--source deezer; the folder as it is serves prediction (`popdrivers predict`, "
            "read_tracks(path, require_popularity=False))")], str(folder))


def _collected_at(folder: Path, notes: list[str]) -> pd.Timestamp | None:
    path = folder / CRAWL_FILE
    if not path.is_file():
        notes.append(f"no {CRAWL_FILE} with collected_at: track ages are measured at the newest release date")
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        value = pd.Timestamp(data["collected_at"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{path}: needs a JSON object with an ISO date 'collected_at' ({type(exc).__name__}: "
                          f"{exc}). Fix: write e.g. {{\"collected_at\": \"2022-06-01T12:00:00Z\"}}") from None
    if value.tzinfo is not None:
        value = value.tz_convert("UTC").tz_localize(None)
    notes.append(f"collected_at {value.date()} from {CRAWL_FILE}: track ages are measured at this date")
    return value


# --------------------------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------------------------


def read_tracks_with_report(
    path: str | os.PathLike[str], format: str = "auto", *, require_popularity: bool = True
) -> tuple[pd.DataFrame, ReadReport]:
    """Read a dataset in any known layout into the canonical table, with a report of what happened.

    Parameters
    ----------
    path
        A CSV or Parquet file, or a relational crawl folder (a folder holding exactly one dataset file
        also works).
    format
        ``"auto"`` (detect from columns/files) or a key of :data:`FORMATS` to force a layout.
    require_popularity
        False for prediction input, where ``popularity`` may be absent or empty.

    Returns
    -------
    tracks, report
        The validated canonical table (one row per track) and a :class:`ReadReport` accounting for every
        source row.

    Raises
    ------
    FormatError
        Unknown layout, a relational folder missing a table, a file that is not CSV/Parquet.
    SchemaError
        Values that break the canonical contract, all listed at once with column, examples and fix.
    """
    path = Path(path)
    if format != "auto" and format not in FORMATS:
        raise FormatError(f"unknown format '{format}'. Fix: use 'auto' or one of {', '.join(FORMATS)}")
    resolved, detected = _resolve(path)
    layout = detected if format == "auto" else format
    if layout is None:
        raise _unrecognised(resolved)
    if (layout == "relational") != resolved.is_dir():
        raise FormatError(f"{path}: the {layout} format needs "
                          f"{'a folder of tables' if layout == 'relational' else 'a file'}. Fix: pass "
                          f"{'the crawl folder' if layout == 'relational' else 'the dataset file'} or format='auto'")
    if layout == "relational":
        raw = _read_relational(resolved, require_popularity)
    elif layout == "canonical":
        raw = _read_canonical(resolved)
    else:
        raw = _read_flat(resolved, layout, require_popularity)
    if raw.frame.empty and raw.rows_read > 0:
        reasons = "; ".join(f"{d.rows} {d.reason}" for d in raw.dropped)
        raise SchemaError([Problem("*", f"no usable rows: all {raw.rows_read} were dropped ({reasons})",
                                   fix="every track needs a track id and a popularity")], str(resolved))
    table, validation = check_tracks(raw.frame, require_popularity=require_popularity, source=str(resolved))
    report = ReadReport(
        source=str(resolved),
        format=layout,
        rows_read=raw.rows_read,
        rows_kept=len(table),
        dropped=tuple(raw.dropped) + validation.dropped,
        notes=tuple(raw.notes) + validation.notes,
        columns=tuple(str(c) for c in table.columns),
        counts=dict(raw.counts),
        popularity_conflicts=validation.popularity_conflicts,
    )
    return table, report


def read_tracks(
    path: str | os.PathLike[str], format: str = "auto", *, require_popularity: bool = True
) -> pd.DataFrame:
    """Read a dataset in any known layout into the validated canonical table (one row per track).

    Layouts (``format=``): ``canonical``, ``relational``, ``tidytuesday``, ``genre-tracks``, ``kaggle-114k``,
    ``kaggle-600k``; ``"auto"`` detects them. See :func:`read_tracks_with_report` for what was dropped and why.

    Examples
    --------
    >>> import popdrivers
    >>> tracks = popdrivers.read_tracks("../shared/data/catalog-2022")  # doctest: +SKIP
    """
    return read_tracks_with_report(path, format, require_popularity=require_popularity)[0]


def column_ranges(df: pd.DataFrame) -> dict[str, dict[str, float | int | None]]:
    """Min, median, max and missing count of each numeric (and date) column, for a quick look at a table."""
    ranges: dict[str, dict[str, float | int | None]] = {}
    for column in df.columns:
        values = df[column]
        if pd.api.types.is_bool_dtype(values):
            values = values.astype("float64")
        if pd.api.types.is_datetime64_any_dtype(values):
            present = values.dropna()
            ranges[column] = {
                "min": None if present.empty else str(present.min().date()),
                "median": None if present.empty else str(present.median().date()),
                "max": None if present.empty else str(present.max().date()),
                "missing": int(values.isna().sum()),
            }
        elif pd.api.types.is_numeric_dtype(values):
            numbers = values.astype("float64")
            present = numbers.dropna()
            ranges[column] = {
                "min": None if present.empty else float(present.min()),
                "median": None if present.empty else float(present.median()),
                "max": None if present.empty else float(present.max()),
                "missing": int(numbers.isna().sum()),
            }
    return ranges
