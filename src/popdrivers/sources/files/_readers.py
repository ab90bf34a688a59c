"""Readers of one-file layouts (canonical and the public ones): rows renamed, ids made, unusable rows dropped.

Each reader returns a :class:`RawRead`: the frame with canonical names, and what it dropped, noticed and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from popdrivers.errors import FormatError
from popdrivers.schema import (
    CANONICAL_COLUMNS,
    COLUMNS,
    EXTRA_COLUMNS,
    KNOWN_ALIASES,
    DropRecord,
    Problem,
    SchemaError,
    parse_genre_list,
    suggest_column,
)
from popdrivers.sources.files._columns import ColumnPlan, aliases_for, missing_columns_error, plan_columns, read_planned
from popdrivers.sources.files._layouts import FORMATS, LIST_COLUMNS
from popdrivers.sources.files._report import UnusedColumn, bad_row_records, line_examples
from popdrivers.sources.files._values import album_ids_from_names, read_as_meant
from popdrivers.sources.tabular import TableFile, open_table
from popdrivers.text import normal_texts

# Columns of the canonical table that must stay text when read from CSV: ids can look like numbers
# ("007" would become 7) and dates must keep their written precision ("2009" is a year, not an int).
_TEXT_COLUMNS = ("track_id", "artist_id", "album_id", "release_date", "release_date_precision")


@dataclass
class RawRead:
    """What a reader hands on: the frame (canonical names, indexed by the row's place in the file) and its report."""

    frame: pd.DataFrame
    rows_read: int
    dropped: list[DropRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    unused: list[UnusedColumn] = field(default_factory=list)
    sources: list[tuple[str, str]] = field(default_factory=list)
    # How the frame's index names a row for the user ("line 7", "row 3 of sheet 'Tracks'").
    row_label: Callable[[Any], str] | None = None


def start_read(table: TableFile, plan: ColumnPlan, frame: pd.DataFrame) -> RawRead:
    """What every reader reports about its file: rows read (broken ones included), how, which columns."""
    return RawRead(frame, len(frame) + len(table.bad_rows), bad_row_records(table),
                   [*table.notes, *plan.notes], {}, plan.unused, plan.sources(), lambda n: table.row_label(int(n)))


def header_map(plan: ColumnPlan) -> dict[str, str]:
    """Column -> the header it was read from."""
    return {plan.use[p]: (plan.table.header[p] or f"column {p + 1}") for p in plan.use}


def drop_unusable_rows(df: pd.DataFrame, require_popularity: bool,
                       table: TableFile) -> tuple[pd.DataFrame, list[DropRecord]]:
    """Drop rows of a public layout that have no track id or (when required) no usable popularity."""
    records: list[DropRecord] = []
    track_id = df["track_id"]
    no_id = track_id.isna() | track_id.astype("string").str.strip().fillna("").eq("")
    if no_id.any():
        records.append(DropRecord("no track_id in the source row", int(no_id.sum()), line_examples(no_id, table)))
    keep = ~no_id
    if require_popularity and "popularity" in df.columns:
        popularity = pd.to_numeric(df["popularity"], errors="coerce")
        no_popularity = popularity.isna() & keep
        if no_popularity.any():
            records.append(DropRecord("no popularity (empty or not a number) in the source row",
                                      int(no_popularity.sum()), line_examples(no_popularity, table)))
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


def _synthesize_track_ids(frame: pd.DataFrame, table: TableFile) -> tuple[pd.DataFrame, list[DropRecord], str]:
    """Track ids from artist + title for files that identify tracks by them only (charts, top-hit lists)."""
    artist, title = (normal_texts(frame[c], unicode="as-is", punctuation=True) for c in ("artist_name", "track_name"))
    frame = frame.copy()
    frame.insert(0, "track_id", ("name:" + artist + " | " + title).astype("string"))
    unnamed = frame["track_id"].isna()
    records = []
    if unnamed.any():
        records.append(DropRecord("no track_id column, and no artist or title to make an id from",
                                  int(unnamed.sum()), line_examples(unnamed, table)))
        frame = frame[~unnamed.to_numpy()]
    note = ("no track_id column: each track's id is made from its artist and title ('name:<artist> | <title>', "
            "lower case), so the same song listed twice is one track (repeats are merged)")
    return frame, records, note


def read_canonical(table: TableFile, require_popularity: bool) -> RawRead:
    """The canonical layout and any table that uses its column names, or common other names for them (charts,
    exports): other names and units are read and reported, unknown columns kept as extras. Rows without a
    track id or (for training) a popularity are dropped with their file lines, as in every layout."""
    wanted = {c: c for c in (*CANONICAL_COLUMNS, *EXTRA_COLUMNS)}
    plan = plan_columns(table, wanted, layout="canonical", aliases=KNOWN_ALIASES, keep_others=True)
    names = plan.names()
    exact = tuple(spec.name for spec in COLUMNS if spec.kind in {"id", "text"} and spec.name in names)
    frame = read_planned(plan, text=_TEXT_COLUMNS, exact_text=exact)
    raw = start_read(table, plan, frame)
    frame = read_as_meant(frame, header_map(plan), raw.notes)
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
    if "track_id" not in frame.columns:
        if not {"artist_name", "track_name"} <= set(frame.columns):
            raise _no_track_ids_error(table, frame)
        frame, dropped, note = _synthesize_track_ids(frame, table)
        raw.dropped += dropped
        raw.notes.append(note)
    if "artist_id" not in frame.columns and "artist_name" in frame.columns:
        frame["artist_id"] = _artist_ids_from_names(frame)
        raw.notes.append("no artist_id column: artist_id is 'name:' + the artist's name, so tracks of one artist "
                         "are still compared with each other")
    frame = album_ids_from_names(frame, raw.notes)
    frame, dropped = drop_unusable_rows(frame, require_popularity, table)
    raw.dropped += dropped
    raw.frame = frame
    return raw


def _no_track_ids_error(table: TableFile, frame: pd.DataFrame) -> SchemaError:
    """No track id, and no title and artist to make ids from: name the columns that could be renamed."""
    have = [c for c in ("track_name", "artist_name") if c in frame.columns]
    lacking = [c for c in ("track_name", "artist_name") if c not in frame.columns]
    text_columns = [str(c) for c in frame.columns if c not in CANONICAL_COLUMNS
                    and not pd.api.types.is_numeric_dtype(frame[c])][:8]
    candidates = f" (text columns found: {', '.join(text_columns)})" if text_columns else ""
    found = f"the file has {' and '.join(have)} but no {' or '.join(lacking)}" if have else \
        "the file has neither a title nor an artist column"
    hint = suggest_column("track_id", [h for h in table.header if h])
    renamed = "" if hint.startswith("add a") else f"{hint}; or "
    return SchemaError([Problem(
        "track_id", f"is missing, and ids cannot be made from artist + title: {found}",
        fix=f"{renamed}add a 'track_id' column, or rename the title column to 'track_name' and the artist column to "
            f"'artist_name'{candidates}: each track's id is then made from them")], str(table.path))


def read_flat(table: TableFile, layout: str, require_popularity: bool) -> RawRead:
    """A one-file public layout: read the columns it maps, rename, add artist ids, drop unusable rows.

    Layouts published by others drop rows without an id or popularity (each counted with a reason)
    instead of failing a whole real dataset over a few broken rows.
    """
    spec = FORMATS[layout]
    wanted = {source: target or source for source, target in spec.columns.items()}
    # The columns that identify the layout must be there under their own names (up to case); the others may
    # go by their canonical or common names.
    optional = [target for source, target in spec.columns.items() if target and source not in spec.signature]
    # Canonical columns the layout does not have may still be there under a common name (genres, year, ...).
    provided = set(spec.columns.values()) | {"artist_id", "artist_name"}
    optional += [c for c in CANONICAL_COLUMNS if c not in provided]
    plan = plan_columns(table, wanted, layout=layout, aliases=aliases_for(optional))
    names = plan.names()
    needed = [wanted[c] for c in sorted(spec.signature)] + (["popularity"] if require_popularity else [])
    missing = [spec.source_of(c) for c in needed if c not in names]
    if missing:
        raise missing_columns_error(table, layout, missing)
    text = tuple(c for c in names if c in _TEXT_COLUMNS or c in {"artists", "id_artists"})
    frame = read_planned(plan, text=text)
    raw = start_read(table, plan, frame)
    frame = read_as_meant(frame, header_map(plan), raw.notes)
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
    elif layout == "genre-tracks" and "artist_id" not in frame.columns:
        raw.notes.append("no artist column in this layout: within-artist analysis is not possible with it")
    frame = album_ids_from_names(frame, raw.notes)
    frame, dropped = drop_unusable_rows(frame, require_popularity, table)
    raw.dropped += dropped
    if layout == "kaggle-600k":
        frame = _join_600k_artists(table.path, frame, raw)
    raw.frame = frame
    return raw


_600K_ARTISTS = {"id": "id", "followers": "followers", "genres": "genres"}
_600K_ARTISTS_FIX = ("replace it with the Kaggle 600k artists.csv (columns id, followers, genres, name, popularity), "
                     "or delete it (followers and genres are then left empty)")


def _join_600k_artists(path: Path, tracks: pd.DataFrame, raw: RawRead) -> pd.DataFrame:
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
    plan = plan_columns(table, _600K_ARTISTS, layout="kaggle-600k artists", file_label=sibling.name)
    missing = [c for c in _600K_ARTISTS if c not in plan.names()]
    if missing:
        raise missing_columns_error(table, "kaggle-600k artists", missing, fix=_600K_ARTISTS_FIX)
    artists = read_planned(plan, text=("id", "genres"))
    raw.unused += plan.unused
    raw.sources += plan.sources()
    raw.notes += list(table.notes) + plan.notes
    raw.notes += [f"{sibling.name}: {d.rows} row(s) not read: {d.reason} (e.g. {', '.join(d.examples)})"
                  for d in bad_row_records(table)]
    artists = artists[artists["id"].isin(tracks["artist_id"].dropna().unique())]
    artists = artists.drop_duplicates("id").set_index("id")
    tracks = tracks.copy()
    for column, source in (("artist_followers", "followers"), ("artist_genres", "genres")):
        joined = tracks["artist_id"].map(artists[source])
        # A tracks.csv that carries the column itself keeps its own values; the artists table fills the gaps.
        tracks[column] = tracks[column].where(tracks[column].notna(), joined) if column in tracks.columns else joined
    unmatched = int((tracks["artist_id"].notna() & ~tracks["artist_id"].isin(artists.index)).sum())
    raw.counts["artist_not_in_artists_file"] = unmatched
    if unmatched:
        raw.notes.append(f"{unmatched} track(s) have a first artist missing from {sibling.name}: "
                         "their followers and genres are left empty")
    return tracks

