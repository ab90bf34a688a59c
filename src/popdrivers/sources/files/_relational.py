"""The relational layout: a crawl folder of four tables (track, album, artist, audio) joined into tracks."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pandas as pd

from popdrivers.errors import FormatError
from popdrivers.schema import AUDIO_FEATURES, Problem, SchemaError
from popdrivers.sources.files._columns import aliases_for, missing_columns_error, plan_columns, read_planned
from popdrivers.sources.files._detection import relational_tables
from popdrivers.sources.files._layouts import CRAWL_FILE, MEASURED_DESCRIPTORS, RELATIONAL_REQUIRED, RELATIONAL_TABLES
from popdrivers.sources.files._readers import RawRead, drop_unusable_rows
from popdrivers.sources.files._report import bad_row_records
from popdrivers.sources.tabular import TableFile, open_table


def _read_table(table_name: str, path: Path, require_popularity: bool, raw: RawRead) -> tuple[pd.DataFrame, TableFile]:
    """One table of a crawl folder, its columns and broken rows reported into ``raw``."""
    mapping = RELATIONAL_TABLES[table_name]
    required = [c for c in RELATIONAL_REQUIRED[table_name] if require_popularity or c != "track_popularity"]
    table = open_table(path, expects=f"a header row with at least {', '.join(required)}")
    plan = plan_columns(table, mapping, layout=f"relational {table_name}-table", file_label=path.name,
                         aliases=aliases_for(mapping.values()))
    missing = [c for c in required if mapping[c] not in plan.names()]
    if missing:
        raise missing_columns_error(table, f"relational {table_name}-table", missing)
    text = tuple(c for c in plan.names() if c.endswith("_id") or "release_date" in c)
    frame = read_planned(plan, text=text)
    raw.unused += plan.unused
    raw.sources += plan.sources()
    raw.notes += [*table.notes, *plan.notes]
    if table_name != "track":  # broken rows of the track table are dropped tracks, counted by the caller
        raw.notes += [f"{path.name}: {d.rows} row(s) not read: {d.reason} (e.g. {', '.join(d.examples)})"
                      for d in bad_row_records(table)]
    return frame, table


def _unique_by(frame: pd.DataFrame, key: str, table: str, notes: list[str]) -> pd.DataFrame:
    # A lookup table with a repeated key would multiply tracks in the join: keep its first row.
    repeated = frame[key].duplicated()
    if repeated.any():
        notes.append(f"{table} table: {int(repeated.sum())} repeated {key}(s); the first row of each is used")
        frame = frame[~repeated]
    return frame.set_index(key)


def read_relational(folder: Path, require_popularity: bool) -> RawRead:
    tables = relational_tables(folder)
    missing = [t for t, p in tables.items() if p is None]
    if missing:
        wanted = "; ".join(f"{t}.csv or {t}.parquet with columns {', '.join(RELATIONAL_REQUIRED[t])}"
                           for t in missing)
        raise FormatError(f"{folder}: relational crawl folder is missing its {', '.join(missing)} table(s). "
                          f"Fix: add {wanted} (an audio table may hold only its header)")
    paths: dict[str, Path] = {t: p for t, p in tables.items() if p is not None}
    raw = RawRead(pd.DataFrame(), 0)  # filled table by table
    tracks, track_table = _read_table("track", paths["track"], require_popularity, raw)
    notes, counts = raw.notes, raw.counts
    raw.dropped = bad_row_records(track_table)
    raw.rows_read = len(tracks) + len(track_table.bad_rows)
    raw.row_label = lambda n: f"{track_table.path.name} {track_table.row_label(int(n))}"
    rows_read = raw.rows_read
    tracks, unusable = drop_unusable_rows(tracks, require_popularity, track_table)
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
    features = [c for c in audio.columns if c in AUDIO_FEATURES or c in MEASURED_DESCRIPTORS]
    no_audio = int((~tracks["track_id"].isin(audio.index)).sum())
    counts["tracks_without_audio"] = no_audio
    for column in features:
        tracks[column] = tracks["track_id"].map(audio[column]).astype("float64")
    # Provenance, and Deezer's gain and bpm (kept apart from a tempo of another source), from a collector's crawl.
    for column in ("features_source", "deezer_gain", "deezer_bpm"):
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

