"""Dataset files: writing the canonical table, and reading it back from every layout popdrivers knows.

The canonical table is written as Parquet (types kept) or CSV (list columns as JSON lists, dates ISO).

Readers map a public layout onto the canonical columns and hand the result to :func:`schema.check_tracks`,
which owns every rule about values. What a reader adds is the layout knowledge (column names, joins, quirks)
and a :class:`ReadReport` that accounts for every source row (kept, merged as a duplicate, or dropped with a
reason) and every source column (read under which name, or unused and why). How a file is opened (CSV in
any common encoding and delimiter, Parquet, Excel; broken and cut rows) is :mod:`popdrivers.sources.tabular`'s
job. Only the columns a layout needs are read, so a million-row public file does not carry its URLs and
playlist names through memory.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from popdrivers.artifacts import write_bytes_atomic
from popdrivers.errors import FormatError, InputError
from popdrivers.schema import (
    AUDIO_FEATURES,
    CANONICAL_COLUMNS,
    COLUMNS,
    EXTRA_COLUMNS,
    KNOWN_ALIASES,
    DropRecord,
    Problem,
    SchemaError,
    check_tracks,
    parse_genre_list,
    suggest_column,
)
from popdrivers.sources.tabular import EXCEL_SUFFIXES, PARQUET_SUFFIXES, TableFile, forget_opened, open_table

LIST_COLUMNS = ("artist_genres", "dataset_genres")
_TEXT_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz")
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
    raise InputError(f"cannot write '{path}': use a .parquet or .csv file name")


# --------------------------------------------------------------------------------------------------------------
# The layouts
# --------------------------------------------------------------------------------------------------------------

_AUDIO_SAME_NAME = tuple(c for c in AUDIO_FEATURES if c != "duration_ms")


@dataclass(frozen=True)
class FormatSpec:
    """One layout popdrivers reads: what it is, and the columns (or files) it expects.

    ``signature`` are the columns whose presence identifies the layout during auto-detection (compared up to
    case and spacing; popularity is not among them, so a file of new tracks to score is recognised too);
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

    def source_of(self, column: str) -> str:
        """The layout's name for a canonical column (itself when the layout does not rename it)."""
        return next((source for source, target in self.columns.items() if target == column), column)


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
            "canonical", "the table popdrivers writes (CSV, Parquet or .xlsx; list columns as JSON lists; other "
            "spellings of its column names are recognised)",
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
            frozenset({"track_id", "track_artist", "playlist_genre"}),
            {"track_id": "track_id", "track_name": "track_name", "track_artist": "artist_name",
             "track_popularity": "popularity", "track_album_id": "album_id", "track_album_name": "album_name",
             "track_album_release_date": "release_date", "playlist_genre": "genre",
             "playlist_subgenre": "playlist_subgenre", **_same(*_AUDIO_SAME_NAME, "duration_ms")},
        ),
        FormatSpec(
            "genre-tracks", "genre-tracks tracks.csv (100 tracks per genre; 'loadness' sic, float-coded ints)",
            ("id", "name", "genre", "popularity", "loadness", "release_date", "explicit", "the audio features",
             "duration_ms"),
            frozenset({"id", "name", "genre", "loadness"}),
            {"id": "track_id", "name": "track_name", "genre": "genre", "popularity": "popularity",
             "loadness": "loudness", "release_date": "release_date", "explicit": "explicit",
             **_same(*(c for c in _AUDIO_SAME_NAME if c != "loudness"), "duration_ms")},
        ),
        FormatSpec(
            "kaggle-114k", "Kaggle 'Spotify Tracks Dataset' dataset.csv (114k rows, artists ';'-joined)",
            ("Unnamed: 0", "track_id", "artists", "album_name", "track_name", "popularity", "duration_ms",
             "explicit", "the audio features", "time_signature", "track_genre"),
            frozenset({"track_id", "artists", "track_genre"}),
            {"track_id": "track_id", "artists": "", "album_name": "album_name", "track_name": "track_name",
             "popularity": "popularity", "explicit": "explicit", "track_genre": "genre",
             **_same(*_AUDIO_SAME_NAME, "duration_ms")},
        ),
        FormatSpec(
            "kaggle-600k", "Kaggle 'Spotify 1921-2020 600k' tracks.csv, with an optional sibling artists.csv "
            "(id, followers, genres, name, popularity)",
            ("id", "name", "popularity", "duration_ms", "explicit", "artists", "id_artists", "release_date",
             "the audio features", "time_signature"),
            frozenset({"id", "artists", "id_artists"}),
            {"id": "track_id", "name": "track_name", "popularity": "popularity", "explicit": "explicit",
             "artists": "", "id_artists": "", "release_date": "release_date",
             **_same(*_AUDIO_SAME_NAME, "duration_ms")},
        ),
    )
}
# Detection order: the most specific signatures first; canonical is the fallback for anything with track_id.
_DETECTION_ORDER = ("kaggle-600k", "kaggle-114k", "tidytuesday", "genre-tracks", "canonical")


@dataclass(frozen=True)
class UnusedColumn:
    """A column of the source that does not reach the table as a column popdrivers uses, and why."""

    column: str
    reason: str
    file: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.column}: {self.reason}"

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "column": self.column, "reason": self.reason}


@dataclass(frozen=True)
class ReadReport:
    """What reading a dataset did: every source row is kept, merged as a duplicate, or dropped with a reason,
    and every source column is used (under which name) or listed as unused with the reason.

    Attributes
    ----------
    source
        The file or folder read.
    format
        The layout it was read as (a key of :data:`FORMATS`).
    rows_read
        Rows in the source (for a relational folder: rows of its track table), broken rows included.
    rows_kept
        Rows of the canonical table returned.
    dropped
        Rows not kept as separate rows, with the reason: broken or cut rows, missing id or popularity,
        duplicates merged.
    notes
        How the file was read (encoding, delimiter, sheet, renamed columns) and quirks handled (artist fallback,
        missing audio rows, unknown markers, popularity conflicts...).
    columns
        Columns of the returned table, canonical first, then extras.
    counts
        Named counts behind the notes (e.g. ``artist_fallback_to_album``), for programs and tests.
    unused_columns
        Every source column not used, with the reason (not part of the layout, an identical copy, kept as an
        extra that nothing uses, no header...).
    column_sources
        (source column as written, column it was read into) for every column read, file-qualified for the
        tables of a relational folder.
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
    unused_columns: tuple[UnusedColumn, ...] = ()
    column_sources: tuple[tuple[str, str], ...] = ()

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

    def summary(self) -> str:
        """One line: rows kept of rows read, and why the others were not kept (for error messages)."""
        text = f"{self.rows_kept:,} of {self.rows_read:,} source rows kept as tracks"
        if self.dropped:
            text += ": " + "; ".join(f"{d.rows:,} {d.reason}" for d in self.dropped)
        return text

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
            "columns": {
                "canonical": list(self.canonical_columns),
                "extra": list(self.extra_columns),
                "sources": [{"source": s, "column": c} for s, c in self.column_sources],
                "unused": [u.to_dict() for u in self.unused_columns],
            },
            "counts": dict(self.counts),
            "popularity_conflicts": self.popularity_conflicts,
        }


# --------------------------------------------------------------------------------------------------------------
# Columns: which source column becomes which table column (case, spacing, aliases, repeated headers)
# --------------------------------------------------------------------------------------------------------------


def _key(name: str) -> str:
    """A header compared up to case, surrounding spaces and inner spaces or hyphens ("Track ID" = "track_id")."""
    return re.sub(r"[\s\-]+", "_", name.strip().lstrip("\ufeff").strip().casefold())


@dataclass
class _Columns:
    """The plan for one file's columns: positions read, under which name; copies to compare; the rest, why."""

    table: TableFile
    use: dict[int, str]
    copies: dict[int, list[int]]
    unused: list[UnusedColumn]
    notes: list[str]
    file_label: str = ""

    @property
    def positions(self) -> list[int]:
        return [*self.use, *(c for copies in self.copies.values() for c in copies)]

    def names(self) -> set[str]:
        return set(self.use.values())

    def position_of(self, name: str) -> int | None:
        return next((p for p, n in self.use.items() if n == name), None)

    def sources(self) -> list[tuple[str, str]]:
        prefix = f"{self.file_label}: " if self.file_label else ""
        return [(prefix + (self.table.header[p] or f"column {p + 1}"), n) for p, n in self.use.items()]


def _plan_columns(table: TableFile, wanted: Mapping[str, str], *, layout: str,
                  aliases: Mapping[str, str] | None = None, keep_others: bool = False,
                  file_label: str = "") -> _Columns:
    """Match the file's header to the columns a reader wants (``wanted``: source name -> name in the frame).

    A header that differs only in case or spacing is used and the mapping noted; with ``aliases`` (canonical
    files) a known other name is used when the canonical one is absent. Two columns for one meaning are both
    read and compared later (:func:`_settle_copies`). Every other column is kept as an extra
    (``keep_others``) or listed as unused, with the reason.
    """
    header = table.header
    keys = [_key(h) for h in header]
    wanted_by_key = {_key(source): (source, target) for source, target in wanted.items()}
    groups: dict[str, list[int]] = {}
    how: dict[int, str] = {}  # position -> the name it was read as, when written otherwise
    for position, key in enumerate(keys):
        if header[position] and key in wanted_by_key:
            source, target = wanted_by_key[key]
            groups.setdefault(target, []).append(position)
            if header[position] != source:
                how[position] = f"read as '{source}' (the same name up to case or spacing)"
    claimed = set(groups)
    alias_by_key = {_key(alias): target for alias, target in (aliases or {}).items()}
    shadowed: dict[int, str] = {}
    for position, key in enumerate(keys):
        if any(position in g for g in groups.values()) or not header[position] or key not in alias_by_key:
            continue
        target = alias_by_key[key]
        if target in claimed:
            shadowed[position] = target
        else:
            groups.setdefault(target, []).append(position)
            how[position] = f"read as '{target}' (a common name for it)"

    use: dict[int, str] = {}
    copies: dict[int, list[int]] = {}
    notes: list[str] = []
    where = f"{file_label}: " if file_label else ""
    for target, positions in groups.items():
        exact = [p for p in positions if header[p] in wanted or header[p] == target]
        primary = exact[0] if exact else positions[0]
        use[primary] = target
        if len(positions) > 1:
            copies[primary] = [p for p in positions if p != primary]
        if primary in how:
            notes.append(f"{where}column '{header[primary]}' {how[primary]}")

    unused: list[UnusedColumn] = []
    grouped = {p for positions in groups.values() for p in positions}
    extras: dict[str, list[int]] = {}
    for position, name in enumerate(header):
        if position in grouped:
            continue
        if not name:
            unused.append(UnusedColumn(f"column {position + 1}", "has no header (a saved row index?): not read",
                                       file_label))
        elif keep_others:
            extras.setdefault(name, []).append(position)
            if position in shadowed:
                unused.append(UnusedColumn(name, f"kept as an extra column: it usually means '{shadowed[position]}',"
                                                 f" but the file also has '{shadowed[position]}'", file_label))
        elif position in shadowed:
            unused.append(UnusedColumn(name, f"not read: it would mean '{shadowed[position]}', which the file "
                                             "already has", file_label))
        else:
            reason = f"not part of the {layout} layout: not read"
            missing = [source for source, target in wanted.items() if target not in groups]
            close = difflib.get_close_matches(name, missing, n=1, cutoff=0.8)
            if close:
                reason += f" (did you mean '{close[0]}'? the layout's column '{close[0]}' is missing)"
            unused.append(UnusedColumn(name, reason, file_label))
    for name, positions in extras.items():
        use[positions[0]] = name
        if len(positions) > 1:
            copies[positions[0]] = positions[1:]
    return _Columns(table, use, copies, unused, notes, file_label)


def _aliases_for(targets: Collection[str]) -> dict[str, str]:
    """Other names a layout's canonical columns go by: the canonical name itself and its known aliases.

    A public file whose column was renamed to the canonical name (``track_popularity`` -> ``popularity``) or
    to a common name for it is still read, with the mapping noted.
    """
    canonical = {t for t in targets if t in CANONICAL_COLUMNS}
    return {**{t: t for t in canonical}, **{a: t for a, t in KNOWN_ALIASES.items() if t in canonical}}


def _same_values(a: pd.Series, b: pd.Series) -> tuple[bool, int | None]:
    """Whether two columns hold the same values (missing = missing); else the first row where they differ."""
    if a.dtype != b.dtype:
        a, b = a.astype(object), b.astype(object)
    equal = (a.isna() & b.isna()) | (a == b).fillna(False).astype(bool)
    if bool(equal.all()):
        return True, None
    return False, int(np.flatnonzero(~equal.to_numpy(dtype=bool))[0])


def _settle_copies(frame: pd.DataFrame, plan: _Columns) -> pd.DataFrame:
    """Drop identical copies of a column (listed as unused); stop on copies that disagree (ambiguous)."""
    table = plan.table
    for primary, others in plan.copies.items():
        for other in others:
            same, row = _same_values(frame[primary], frame[other])
            if not same:
                assert row is not None
                line = table.row_label(int(frame.index[row]))
                raise FormatError(
                    f"{table.path}: columns {table.column_label(primary)} (column {primary + 1}) and "
                    f"{table.column_label(other)} (column {other + 1}) both give '{plan.use[primary]}' but hold "
                    f"different values ({line}: '{frame[primary].iloc[row]}' vs '{frame[other].iloc[row]}'). "
                    "Fix: delete or rename one of them")
            plan.unused.append(UnusedColumn(
                table.header[other], f"repeats column {table.column_label(primary)} (column {primary + 1}) with the "
                f"same values: one copy is used", plan.file_label))
    drop = [c for others in plan.copies.values() for c in others]
    return frame.drop(columns=drop).rename(columns=plan.use)


def _read_planned(plan: _Columns, *, text: Collection[str] = (), exact_text: Collection[str] = ()) -> pd.DataFrame:
    """Read the planned columns: named as planned, index = the row's line (or sheet row) in the file."""
    by_target: dict[str, list[int]] = {}
    for primary, name in plan.use.items():
        by_target[name] = [primary, *plan.copies.get(primary, [])]
    text_positions = {p for name in text for p in by_target.get(name, [])}
    exact_positions = {p for name in exact_text for p in by_target.get(name, [])}
    frame = plan.table.read(plan.positions, text=text_positions, exact_text=exact_positions)
    return _settle_copies(frame, plan)


def _missing_columns_error(table: TableFile, layout: str, missing: list[str], *, fix: str = "") -> FormatError:
    present = [h for h in table.header if h]
    hints = []
    for name in missing:
        hint = suggest_column(name, present)
        hints.append(f"'{name}' ({hint})" if not hint.startswith("add a") else f"'{name}'")
    return FormatError(f"{table.path}: the {layout} layout needs column(s) {', '.join(hints)}; the file has "
                       f"{', '.join(present[:25])}{' ...' if len(present) > 25 else ''}. Fix: "
                       + (fix or "add or rename those columns, or name the layout the file is in (--format on the "
                          f"command line, format= in Python; known: {', '.join(FORMATS)})"))


def _bad_row_records(table: TableFile) -> list[DropRecord]:
    """Rows of the file that were not read (broken or cut), grouped by reason."""
    by_reason: dict[str, list[int]] = {}
    for row in table.bad_rows:
        by_reason.setdefault(row.reason, []).append(row.line)
    return [DropRecord(reason, len(lines), tuple(table.row_label(n) for n in lines[:_MAX_EXAMPLES]))
            for reason, lines in by_reason.items()]


def _line_examples(mask: pd.Series, table: TableFile) -> tuple[str, ...]:
    # Where the row is in the source file (the frame's index holds its line), which is where a user looks.
    return tuple(table.row_label(int(n)) for n in mask.index[mask.to_numpy(dtype=bool)][:_MAX_EXAMPLES])


def _drop_unusable_rows(df: pd.DataFrame, require_popularity: bool,
                        table: TableFile) -> tuple[pd.DataFrame, list[DropRecord]]:
    """Drop rows of a public layout that have no track id or (when required) no usable popularity."""
    records: list[DropRecord] = []
    track_id = df["track_id"]
    no_id = track_id.isna() | track_id.astype("string").str.strip().fillna("").eq("")
    if no_id.any():
        records.append(DropRecord("no track_id in the source row", int(no_id.sum()), _line_examples(no_id, table)))
    keep = ~no_id
    if require_popularity and "popularity" in df.columns:
        popularity = pd.to_numeric(df["popularity"], errors="coerce")
        no_popularity = popularity.isna() & keep
        if no_popularity.any():
            records.append(DropRecord("no popularity (empty or not a number) in the source row",
                                      int(no_popularity.sum()), _line_examples(no_popularity, table)))
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


def _artist_ids_from_names(frame: pd.DataFrame) -> pd.Series:
    # No artist id: the artist's name stands in, so tracks of one artist still group together.
    return ("name:" + frame["artist_name"].astype("string").str.strip()).astype("string")


def _normalised_text(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip().str.casefold().str.replace(r"\s+", " ", regex=True)
    return text.where(text.fillna("") != "")


def _synthesize_track_ids(frame: pd.DataFrame, table: TableFile) -> tuple[pd.DataFrame, list[DropRecord], str]:
    """Track ids from artist + title for files that identify tracks by them only (charts, top-hit lists)."""
    artist, title = _normalised_text(frame["artist_name"]), _normalised_text(frame["track_name"])
    frame = frame.copy()
    frame.insert(0, "track_id", ("name:" + artist + " | " + title).astype("string"))
    unnamed = frame["track_id"].isna()
    records = []
    if unnamed.any():
        records.append(DropRecord("no track_id column, and no artist or title to make an id from",
                                  int(unnamed.sum()), _line_examples(unnamed, table)))
        frame = frame[~unnamed.to_numpy()]
    note = ("no track_id column: each track's id is made from its artist and title ('name:<artist> | <title>', "
            "lower case), so the same song listed twice is one track (repeats are merged)")
    return frame, records, note


# --------------------------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------------------------


def _relational_tables(folder: Path) -> dict[str, Path | None]:
    found: dict[str, Path | None] = {}
    for table in RELATIONAL_TABLES:
        found[table] = next((folder / f"{table}{suffix}" for suffix in (".csv", ".parquet", ".csv.gz", ".pq", ".xlsx")
                             if (folder / f"{table}{suffix}").is_file()), None)
    return found


def _data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.name.lower().endswith(_TEXT_SUFFIXES + PARQUET_SUFFIXES + EXCEL_SUFFIXES))


def _is_artist_table(keys: set[str]) -> bool:
    return {"id", "followers", "genres"} <= keys and not keys & {"id_artists", "track_id", *AUDIO_FEATURES}


def _layout_of(header: Sequence[str]) -> str | None:
    keys = {_key(h) for h in header if h}
    for name in _DETECTION_ORDER:
        if {_key(c) for c in FORMATS[name].signature} <= keys:
            return name
    if _is_artist_table(keys):
        return None  # artists.csv of the 600k layout: a table of artists, not tracks (read beside tracks.csv)
    # Several canonical names (or their common aliases) but no track_id: a canonical table with renamed
    # columns, or a chart that names tracks by artist and title. Reading it as canonical maps what it can and
    # lets validation say which column to rename ("did you mean ...").
    canonical = {_key(c) for c in CANONICAL_COLUMNS}
    known = {k for k in keys if k in canonical} | {KNOWN_ALIASES[k] for k in keys if k in KNOWN_ALIASES}
    if len(known) >= 2:
        return "canonical"
    return None


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
    header = open_table(path).header
    layout = _layout_of(header)
    if layout in {None, "canonical"}:
        near = _near_miss(path, header)
        if near is not None:
            raise near
    return path, layout


def _near_miss(path: Path, header: Sequence[str]) -> FormatError | None:
    """A public layout with one identifying column misspelt ("track_arist"): say so rather than read it as
    another layout and lose what that column carries."""
    names = [h for h in header if h]
    keys = {_key(h) for h in names}
    known = {_key(c) for c in (*CANONICAL_COLUMNS, *KNOWN_ALIASES, *EXTRA_COLUMNS)}
    known |= {_key(source) for spec in FORMATS.values() for source in spec.columns}
    unknown = [h for h in names if _key(h) not in known]
    for name in _DETECTION_ORDER[:-1]:
        signature = FORMATS[name].signature
        missing = [c for c in sorted(signature) if _key(c) not in keys]
        if len(missing) != 1:
            continue
        close = difflib.get_close_matches(missing[0], unknown, n=1, cutoff=0.75)
        if close:
            return FormatError(f"{path}: looks like the {name} layout ({FORMATS[name].description}), but its "
                               f"column '{missing[0]}' is missing (did you mean '{close[0]}'?). Fix: rename column "
                               f"'{close[0]}' to '{missing[0]}', or read the file as a plain table (--format "
                               "canonical)")
    return None


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
    columns = [c for c in open_table(path).header if c]
    if _is_artist_table({_key(c) for c in columns}):
        return FormatError(f"{path}: this is an artist table (columns {', '.join(columns[:8])}), like the Kaggle "
                           "600k artists.csv, not a table of tracks. Fix: pass the tracks.csv it belongs to (the "
                           "artists table is read from beside it)")
    return FormatError(f"{path}: unrecognised layout (columns: {', '.join(columns[:20])}"
                       f"{' ...' if len(columns) > 20 else ''}). Fix: rename the id column to 'track_id' and the "
                       "target to 'popularity', or name the layout (--format on the command line, format= in "
                       f"Python). Formats known: {_known_formats_text()}")


def _known_formats_text() -> str:
    return "; ".join(FORMATS[name].describe() for name in ("canonical", *_DETECTION_ORDER[:-1], "relational"))


# --------------------------------------------------------------------------------------------------------------
# Readers: each returns the frame with canonical names, and what it dropped, noticed and counted
# --------------------------------------------------------------------------------------------------------------


@dataclass
class _Raw:
    frame: pd.DataFrame
    rows_read: int
    dropped: list[DropRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    unused: list[UnusedColumn] = field(default_factory=list)
    sources: list[tuple[str, str]] = field(default_factory=list)


def _start(table: TableFile, plan: _Columns, frame: pd.DataFrame) -> _Raw:
    """What every reader reports about its file: rows read (broken ones included), how, which columns."""
    return _Raw(frame, len(frame) + len(table.bad_rows), _bad_row_records(table),
                [*table.notes, *plan.notes], {}, plan.unused, plan.sources())


def _read_canonical(table: TableFile, require_popularity: bool) -> _Raw:
    # The canonical table is ours: no row is dropped here, it goes strictly through validation. Other names
    # for its columns (other case, common aliases) are used and reported; unknown columns are kept as extras.
    wanted = {c: c for c in (*CANONICAL_COLUMNS, *EXTRA_COLUMNS)}
    plan = _plan_columns(table, wanted, layout="canonical", aliases=KNOWN_ALIASES, keep_others=True)
    names = plan.names()
    exact = tuple(spec.name for spec in COLUMNS if spec.kind in {"id", "text"} and spec.name in names)
    frame = _read_planned(plan, text=_TEXT_COLUMNS, exact_text=exact)
    raw = _start(table, plan, frame)
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
    if "track_id" not in frame.columns and {"artist_name", "track_name"} <= set(frame.columns):
        frame, dropped, note = _synthesize_track_ids(frame, table)
        raw.dropped += dropped
        raw.notes.append(note)
    if "artist_id" not in frame.columns and "artist_name" in frame.columns:
        frame["artist_id"] = _artist_ids_from_names(frame)
        raw.notes.append("no artist_id column: artist_id is 'name:' + the artist's name, so tracks of one artist "
                         "are still compared with each other")
    raw.frame = frame
    return raw


def _read_flat(table: TableFile, layout: str, require_popularity: bool) -> _Raw:
    """A one-file public layout: read the columns it maps, rename, add artist ids, drop unusable rows.

    Layouts published by others drop rows without an id or popularity (each counted with a reason)
    instead of failing a whole real dataset over a few broken rows.
    """
    spec = FORMATS[layout]
    wanted = {source: target or source for source, target in spec.columns.items()}
    # The columns that identify the layout must be there under their own names (up to case); the others may
    # go by their canonical or common names.
    optional = [target for source, target in spec.columns.items() if target and source not in spec.signature]
    plan = _plan_columns(table, wanted, layout=layout, aliases=_aliases_for(optional))
    names = plan.names()
    needed = [wanted[c] for c in sorted(spec.signature)] + (["popularity"] if require_popularity else [])
    missing = [spec.source_of(c) for c in needed if c not in names]
    if missing:
        raise _missing_columns_error(table, layout, missing)
    text = tuple(c for c in names if c in _TEXT_COLUMNS or c in {"artists", "id_artists"})
    frame = _read_planned(plan, text=text)
    raw = _start(table, plan, frame)
    if layout == "tidytuesday":
        frame["artist_id"] = _artist_ids_from_names(frame)
        raw.notes.append("no artist id in this layout: artist_id is 'name:' + the artist's name")
    elif layout == "kaggle-114k":
        names_ = frame["artists"].astype("string").str.split(";").str[0].str.strip()
        frame["artist_name"] = names_
        frame["artist_id"] = "name:" + names_
        frame = frame.drop(columns=["artists"])
        raw.notes.append("no artist id in this layout: artist_id is 'name:' + the first credited artist's name")
    elif layout == "kaggle-600k":
        frame["artist_name"] = _first_of_python_list(frame["artists"])
        frame["artist_id"] = _first_of_python_list(frame["id_artists"])
        frame = frame.drop(columns=["artists", "id_artists"])
    elif layout == "genre-tracks":
        raw.notes.append("no artist column in this layout: within-artist analysis is not possible with it")
    frame, dropped = _drop_unusable_rows(frame, require_popularity, table)
    raw.dropped += dropped
    if layout == "kaggle-600k":
        frame = _join_600k_artists(table.path, frame, raw)
    raw.frame = frame
    return raw


_600K_ARTISTS = {"id": "id", "followers": "followers", "genres": "genres"}
_600K_ARTISTS_FIX = ("replace it with the Kaggle 600k artists.csv (columns id, followers, genres, name, popularity), "
                     "or delete it (followers and genres are then left empty)")


def _join_600k_artists(path: Path, tracks: pd.DataFrame, raw: _Raw) -> pd.DataFrame:
    """Add followers and genres of each track's first artist from a sibling artists.csv, when there is one."""
    sibling = next((path.with_name(n) for n in ("artists.csv", "artists.parquet") if path.with_name(n).is_file()),
                   None)
    if sibling is None:
        raw.notes.append(f"no artists.csv beside {path.name}: artist_followers and artist_genres are not available")
        return tracks
    try:
        table = open_table(sibling, expects="the Kaggle 600k artists table")
    except SchemaError as exc:
        problem = exc.problems[0].issue if exc.problems else "it cannot be read"
        raise FormatError(f"{sibling}: the artists table beside {path.name} is unusable: {problem}. "
                          f"Fix: {_600K_ARTISTS_FIX}") from None
    plan = _plan_columns(table, _600K_ARTISTS, layout="kaggle-600k artists", file_label=sibling.name)
    missing = [c for c in _600K_ARTISTS if c not in plan.names()]
    if missing:
        raise _missing_columns_error(table, "kaggle-600k artists", missing, fix=_600K_ARTISTS_FIX)
    artists = _read_planned(plan, text=("id", "genres"))
    raw.unused += plan.unused
    raw.sources += plan.sources()
    raw.notes += list(table.notes) + plan.notes
    raw.notes += [f"{sibling.name}: {d.rows} row(s) not read: {d.reason} (e.g. {', '.join(d.examples)})"
                  for d in _bad_row_records(table)]
    artists = artists[artists["id"].isin(tracks["artist_id"].dropna().unique())]
    artists = artists.drop_duplicates("id").set_index("id")
    tracks = tracks.copy()
    tracks["artist_followers"] = tracks["artist_id"].map(artists["followers"])
    tracks["artist_genres"] = tracks["artist_id"].map(artists["genres"])
    unmatched = int((tracks["artist_id"].notna() & ~tracks["artist_id"].isin(artists.index)).sum())
    raw.counts["artist_not_in_artists_file"] = unmatched
    if unmatched:
        raw.notes.append(f"{unmatched} track(s) have a first artist missing from {sibling.name}: "
                         "their followers and genres are left empty")
    return tracks


def _read_table(table_name: str, path: Path, require_popularity: bool, raw: _Raw) -> tuple[pd.DataFrame, TableFile]:
    """One table of a crawl folder, its columns and broken rows reported into ``raw``."""
    mapping = RELATIONAL_TABLES[table_name]
    required = [c for c in RELATIONAL_REQUIRED[table_name] if require_popularity or c != "track_popularity"]
    table = open_table(path, expects=f"a header row with at least {', '.join(required)}")
    plan = _plan_columns(table, mapping, layout=f"relational {table_name}-table", file_label=path.name,
                         aliases=_aliases_for(mapping.values()))
    missing = [c for c in required if mapping[c] not in plan.names()]
    if missing:
        raise _missing_columns_error(table, f"relational {table_name}-table", missing)
    text = tuple(c for c in plan.names() if c.endswith("_id") or "release_date" in c)
    frame = _read_planned(plan, text=text)
    raw.unused += plan.unused
    raw.sources += plan.sources()
    raw.notes += [*table.notes, *plan.notes]
    if table_name != "track":  # broken rows of the track table are dropped tracks, counted by the caller
        raw.notes += [f"{path.name}: {d.rows} row(s) not read: {d.reason} (e.g. {', '.join(d.examples)})"
                      for d in _bad_row_records(table)]
    return frame, table


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
    raw = _Raw(pd.DataFrame(), 0)  # filled table by table
    tracks, track_table = _read_table("track", paths["track"], require_popularity, raw)
    notes, counts = raw.notes, raw.counts
    raw.dropped = _bad_row_records(track_table)
    raw.rows_read = len(tracks) + len(track_table.bad_rows)
    rows_read = raw.rows_read
    tracks, unusable = _drop_unusable_rows(tracks, require_popularity, track_table)
    raw.dropped += unusable
    if require_popularity and tracks.empty and rows_read:
        raise _no_popularity_error(folder, rows_read)

    album_frame, _ = _read_table("album", paths["album"], require_popularity, raw)
    albums = _unique_by(album_frame, "album_id", "album", notes)
    for column in albums.columns:
        tracks[column] = tracks["album_id"].map(albums[column])
    no_album = int((~tracks["album_id"].isin(albums.index)).sum())
    counts["tracks_without_album"] = no_album
    if no_album:
        notes.append(f"{no_album} track(s) have an album id missing from {paths['album'].name}: "
                     "their album name and release date are left empty")

    artist_frame, _ = _read_table("artist", paths["artist"], require_popularity, raw)
    artists = _unique_by(artist_frame, "artist_id", "artist", notes)
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

    if paths["audio"].stat().st_size == 0:
        # A crawl that has not fetched audio features yet may leave the file empty: the tracks still count.
        audio_frame = pd.DataFrame({"track_id": pd.Series(dtype="string")})
    else:
        audio_frame, _ = _read_table("audio", paths["audio"], require_popularity, raw)
    audio = _unique_by(audio_frame, "track_id", "audio", notes)
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
    raw.frame = tracks
    return raw


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
        A CSV (any common encoding and delimiter), Parquet or Excel (.xlsx) file, or a relational crawl
        folder (a folder holding exactly one dataset file also works).
    format
        ``"auto"`` (detect from columns/files) or a key of :data:`FORMATS` to force a layout.
    require_popularity
        False for prediction input, where ``popularity`` may be absent or empty.

    Returns
    -------
    tracks, report
        The validated canonical table (one row per track) and a :class:`ReadReport` accounting for every
        source row and column.

    Raises
    ------
    FormatError
        Unknown layout, a relational folder missing a table, a file that is not CSV/Parquet/Excel, two
        columns that give the same canonical column different values.
    SchemaError
        Values that break the canonical contract, all listed at once with column, examples and fix.
    """
    try:
        return _read_with_report(Path(path), format, require_popularity)
    finally:
        forget_opened()


def _read_with_report(path: Path, format: str, require_popularity: bool) -> tuple[pd.DataFrame, ReadReport]:
    if format != "auto" and format not in FORMATS:
        raise FormatError(f"unknown format '{format}'. Fix: use 'auto' or one of {', '.join(FORMATS)}")
    resolved, detected = _resolve(path)
    layout = detected if format == "auto" else format
    if layout is None:
        raise _unrecognised(resolved)
    if (layout == "relational") != resolved.is_dir():
        raise FormatError(f"{path}: the {layout} format needs "
                          f"{'a folder of tables' if layout == 'relational' else 'a file'}. Fix: pass "
                          f"{'the crawl folder' if layout == 'relational' else 'the dataset file'}, or let the "
                          "layout be detected (--format auto)")
    if layout == "relational":
        raw = _read_relational(resolved, require_popularity)
    elif layout == "canonical":
        raw = _read_canonical(open_table(resolved), require_popularity)
    else:
        raw = _read_flat(open_table(resolved), layout, require_popularity)
    if raw.frame.empty and raw.rows_read > 0:
        reasons = "; ".join(f"{d.rows} {d.reason}" for d in raw.dropped)
        raise SchemaError([Problem("*", f"no usable rows: all {raw.rows_read} were dropped ({reasons})",
                                   fix="every track needs a track id" + (" and a popularity" if require_popularity
                                                                         else ""))], str(resolved))
    table, validation = check_tracks(raw.frame, require_popularity=require_popularity, source=str(resolved))
    unused = list(raw.unused)
    listed = {u.column for u in unused if not u.file}
    for column in table.columns:
        if column not in CANONICAL_COLUMNS and column not in EXTRA_COLUMNS and column not in listed:
            unused.append(UnusedColumn(str(column), "kept in the table as an extra column; no model or driver "
                                                    "uses it"))
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
        unused_columns=tuple(unused),
        column_sources=tuple(raw.sources),
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


def _plain_number(value: float, single_precision: bool) -> float:
    """A float as written: a float32 value 0.1 is 0.1, not 0.10000000149011612."""
    return float(str(np.float32(value))) if single_precision else float(value)


def column_ranges(df: pd.DataFrame) -> dict[str, dict[str, float | int | str | None]]:
    """Min, median, max and missing count of each numeric (and date) column, for a quick look at a table.

    Numbers stored in single precision are given as written (0.1, not 0.10000000149011612).
    """
    ranges: dict[str, dict[str, float | int | str | None]] = {}
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
            single = values.dtype == np.float32
            numbers = values.astype("float64")
            present = numbers.dropna()
            ranges[column] = {
                "min": None if present.empty else _plain_number(present.min(), single),
                "median": None if present.empty else _plain_number(present.median(), single),
                "max": None if present.empty else _plain_number(present.max(), single),
                "missing": int(numbers.isna().sum()),
            }
    return ranges
