"""The collectors' checkpoint store (SQLite in the output folder) and the four CSV tables written from it.

Shared by the Spotify and Deezer collectors. Every step of a crawl commits in one SQLite transaction (an
artist's details, an artist's album list, one album's track list, one batch or one item of full tracks, one
batch of audio features). A process killed at any moment loses at most the step in flight; rows are keyed by
the source's ids, so redoing a step never duplicates.

The CSVs (the relational layout of ``catalog-2022``, plus release-structure and provenance columns after the
catalog-2022 ones) are always rewritten whole, atomically, from the store.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from popdrivers.artifacts import write_text_atomic

STORE_NAME = "crawl.sqlite"
AUDIO_FEATURE_COLUMNS = ("danceability", "energy", "loudness", "speechiness", "acousticness", "instrumentalness",
                         "liveness", "valence", "tempo", "key", "mode", "time_signature")
INTEGER_FEATURES = ("key", "mode", "time_signature")

# The catalog-2022 headers come first (tools written for that dataset keep working); then what it lacks.
TRACK_COLUMNS = ("track_id", "track_name", "track_artist_id", "track_album_id", "track_number", "track_popularity",
                 "track_explicit", "track_homepage", "track_disc_number", "track_isrc", "track_n_artists",
                 "track_popularity_source")
AUDIO_COLUMNS = ("track_id", "track_duration", *AUDIO_FEATURE_COLUMNS, "features_source")
ALBUM_COLUMNS = ("album_id", "album_name", "album_release_date", "album_total_tracks", "album_artist_id",
                 "album_image", "album_homepage", "album_type")
ARTIST_COLUMNS = ("artist_id", "artist_name", "artist_genre", "artist_popularity", "artist_followers",
                  "artist_image", "artist_homepage")
# Columns only a Deezer crawl has (a Spotify crawl does not write them empty).
DEEZER_COLUMNS = {"track.csv": ("track_deezer_rank",), "audio.csv": ("deezer_gain",),
                  "album.csv": ("album_genre", "album_genres")}
TABLE_NAMES = ("track.csv", "audio.csv", "album.csv", "artist.csv")


def table_columns(source: str, audio_extra: Sequence[str] = ()) -> dict[str, tuple[str, ...]]:
    """The header of each CSV a ``source`` crawl writes; ``audio_extra`` ends audio.csv's (an audio crawl's)."""
    base = {"track.csv": TRACK_COLUMNS, "audio.csv": AUDIO_COLUMNS, "album.csv": ALBUM_COLUMNS,
            "artist.csv": ARTIST_COLUMNS}
    if source == "deezer":
        base = {name: columns + DEEZER_COLUMNS.get(name, ()) for name, columns in base.items()}
    extra = tuple(c for c in dict.fromkeys(audio_extra) if c not in base["audio.csv"])
    return {**base, "audio.csv": base["audio.csv"] + extra}


_FEATURE_SQL = ", ".join(f"{c} {'INTEGER' if c in INTEGER_FEATURES else 'REAL'}" for c in AUDIO_FEATURE_COLUMNS)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS resolution (query TEXT PRIMARY KEY, status TEXT NOT NULL, artist_id TEXT, detail TEXT);
CREATE TABLE IF NOT EXISTS artist (artist_id TEXT PRIMARY KEY, name TEXT, genres TEXT, popularity INTEGER,
    followers INTEGER, image TEXT, homepage TEXT, albums_listed INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS album (album_id TEXT PRIMARY KEY, name TEXT, release_date TEXT, total_tracks INTEGER,
    artist_id TEXT, image TEXT, homepage TEXT, tracks_listed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS artist_album (artist_id TEXT, album_id TEXT, position INTEGER,
    PRIMARY KEY (artist_id, album_id));
CREATE TABLE IF NOT EXISTS track_stub (track_id TEXT PRIMARY KEY, album_id TEXT, disc_number INTEGER,
    track_number INTEGER, artist_id TEXT);
CREATE TABLE IF NOT EXISTS track (track_id TEXT PRIMARY KEY, name TEXT, popularity INTEGER, explicit INTEGER,
    duration_ms INTEGER, homepage TEXT);
CREATE TABLE IF NOT EXISTS audio (track_id TEXT PRIMARY KEY, available INTEGER NOT NULL, {_FEATURE_SQL});
CREATE TABLE IF NOT EXISTS preview (track_id TEXT PRIMARY KEY, status TEXT NOT NULL, reason TEXT, features TEXT,
    source TEXT, sha256 TEXT, seconds REAL);
"""
# A track's preview, once decided: "analysed" (features holds what was measured, as JSON), "missing" (the source
# gives none) or "failed" (refused twice, not decodable, ...: reason says). The link itself is never stored.
PREVIEW_STATUSES = ("analysed", "missing", "failed")
# Columns added after the first release: a crawl folder started by an older version gains them on open.
_ADDED_COLUMNS = {
    "album": {"album_type": "TEXT", "genres": "TEXT"},
    "track_stub": {"artist_name": "TEXT", "n_artists": "INTEGER"},
    "track": {"isrc": "TEXT", "n_artists": "INTEGER", "rank": "INTEGER"},
    "audio": {"gain": "REAL", "source": "TEXT"},
}


class CrawlStore:
    """SQLite checkpoints of one output folder.

    Parameters
    ----------
    path : path-like
        The database file (created if missing).
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        # Autocommit mode: transactions are opened explicitly by :meth:`transaction`.
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        # WAL + NORMAL: a commit survives a killed process; a power cut may roll back the last few commits,
        # which only means redoing those steps (every write is keyed by id), never a torn or duplicated row.
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        for table, columns in _ADDED_COLUMNS.items():
            present = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns.items():
                if name not in present:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    @classmethod
    def open(cls, folder: str | os.PathLike[str]) -> CrawlStore:
        """The store of crawl folder ``folder``."""
        return cls(Path(folder) / STORE_NAME)

    @staticmethod
    def remove(folder: str | os.PathLike[str]) -> None:
        """Delete the checkpoints of ``folder`` (``--refresh``)."""
        for suffix in ("", "-journal", "-wal", "-shm"):
            (Path(folder) / (STORE_NAME + suffix)).unlink(missing_ok=True)

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One checkpoint: everything inside commits together or not at all."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ----- meta
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str | int | float | None) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, None if value is None else str(value)))

    # ----- resolution of the artists file
    def resolution(self, query: str) -> tuple[str, str | None, str | None] | None:
        return self.db.execute("SELECT status, artist_id, detail FROM resolution WHERE query = ?",
                               (query,)).fetchone()

    def set_resolution(self, query: str, status: str, artist_id: str | None, detail: str | None) -> None:
        self.db.execute("INSERT OR REPLACE INTO resolution VALUES (?, ?, ?, ?)", (query, status, artist_id, detail))

    # ----- artists and albums
    def artist_state(self, artist_id: str) -> tuple[int, int] | None:
        """``(albums_listed, done)`` of a stored artist, or None when its details are not stored yet."""
        return self.db.execute("SELECT albums_listed, done FROM artist WHERE artist_id = ?", (artist_id,)).fetchone()

    def put_artist(self, row: Mapping[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO artist (artist_id, name, genres, popularity, followers, image, homepage) "
            "VALUES (:artist_id, :name, :genres, :popularity, :followers, :image, :homepage) "
            "ON CONFLICT(artist_id) DO UPDATE SET name = excluded.name, genres = excluded.genres, "
            "popularity = excluded.popularity, followers = excluded.followers, image = excluded.image, "
            "homepage = excluded.homepage", {**row, "genres": json.dumps(list(row["genres"]))})

    def put_albums(self, artist_id: str, albums: Sequence[Mapping[str, Any]], complete: bool) -> None:
        for position, album in enumerate(albums):
            self.db.execute(
                "INSERT INTO album (album_id, name, release_date, total_tracks, artist_id, image, homepage, "
                "album_type, genres) VALUES (:album_id, :name, :release_date, :total_tracks, :artist_id, :image, "
                ":homepage, :album_type, :genres) ON CONFLICT(album_id) DO NOTHING",
                {"album_type": None, **album, "genres": json.dumps(list(album.get("genres") or []))})
            self.db.execute("INSERT OR REPLACE INTO artist_album VALUES (?, ?, ?)",
                            (artist_id, album["album_id"], position))
        self.db.execute("UPDATE artist SET albums_listed = ? WHERE artist_id = ?", (int(complete), artist_id))

    def update_album(self, album_id: str, **values: Any) -> None:
        """Fill in album details learnt after listing (e.g. Deezer's genres, from the album itself)."""
        if "genres" in values:
            values["genres"] = json.dumps(list(values["genres"] or []))
        sets = ", ".join(f"{k} = :{k}" for k in values)
        self.db.execute(f"UPDATE album SET {sets} WHERE album_id = :album_id", {**values, "album_id": album_id})

    def albums_to_list(self, artist_id: str) -> list[str]:
        """Albums of ``artist_id`` whose track list is not stored yet."""
        return [r[0] for r in self.db.execute(
            "SELECT a.album_id FROM artist_album aa JOIN album a USING (album_id) "
            "WHERE aa.artist_id = ? AND a.tracks_listed = 0 ORDER BY aa.position", (artist_id,))]

    def put_album_tracks(self, album_id: str, stubs: Iterable[Mapping[str, Any]], complete: bool) -> None:
        self.db.executemany(
            "INSERT OR IGNORE INTO track_stub (track_id, album_id, disc_number, track_number, artist_id, "
            "artist_name, n_artists) VALUES (:track_id, :album_id, :disc_number, :track_number, :artist_id, "
            ":artist_name, :n_artists)", [{"artist_name": None, "n_artists": None, **s} for s in stubs])
        self.db.execute("UPDATE album SET tracks_listed = ? WHERE album_id = ?", (int(complete), album_id))

    def drop_album(self, artist_id: str, album_id: str) -> None:
        """Forget a listed album that turns out not to be the artist's own release."""
        self.db.execute("DELETE FROM artist_album WHERE artist_id = ? AND album_id = ?", (artist_id, album_id))

    def mark_artist_done(self, artist_id: str) -> None:
        self.db.execute("UPDATE artist SET done = 1 WHERE artist_id = ?", (artist_id,))

    # ----- tracks and audio features
    def tracks_to_fetch(self, artist_id: str) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT s.track_id FROM artist_album aa JOIN track_stub s USING (album_id) "
            "LEFT JOIN track t USING (track_id) WHERE aa.artist_id = ? AND t.track_id IS NULL "
            "ORDER BY aa.position, s.disc_number, s.track_number", (artist_id,))]

    def put_tracks(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO track (track_id, name, popularity, explicit, duration_ms, homepage, isrc, "
            "n_artists, rank) VALUES (:track_id, :name, :popularity, :explicit, :duration_ms, :homepage, :isrc, "
            ":n_artists, :rank)", [{"isrc": None, "n_artists": None, "rank": None, **row} for row in rows])

    def audio_to_fetch(self, artist_id: str) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT t.track_id FROM artist_album aa JOIN track_stub s USING (album_id) JOIN track t USING (track_id) "
            "LEFT JOIN audio f USING (track_id) WHERE aa.artist_id = ? AND f.track_id IS NULL "
            "ORDER BY aa.position, s.disc_number, s.track_number", (artist_id,))]

    def put_audio(self, rows: Iterable[Mapping[str, Any]]) -> None:
        names = ("track_id", "available", *AUDIO_FEATURE_COLUMNS, "gain", "source")
        self.db.executemany(
            f"INSERT OR REPLACE INTO audio ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})",
            [{n: row.get(n) for n in names} for row in rows])

    # ----- previews (Deezer --audio)
    def previews_to_do(self, artist_id: str) -> list[str]:
        """Tracks of ``artist_id`` fetched but whose preview is not decided yet, in album order."""
        return [r[0] for r in self.db.execute(
            "SELECT t.track_id FROM artist_album aa JOIN track_stub s USING (album_id) JOIN track t USING (track_id) "
            "LEFT JOIN preview p USING (track_id) WHERE aa.artist_id = ? AND p.track_id IS NULL "
            "ORDER BY aa.position, s.disc_number, s.track_number", (artist_id,))]

    def has_preview_outcome(self, track_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM preview WHERE track_id = ?", (track_id,)).fetchone() is not None

    def put_preview(self, track_id: str, status: str, *, reason: str | None = None,
                    features: Mapping[str, Any] | None = None, source: str | None = None, sha256: str | None = None,
                    seconds: float | None = None) -> None:
        """Record what became of one track's preview (one of :data:`PREVIEW_STATUSES`)."""
        if status not in PREVIEW_STATUSES:
            raise ValueError(f"preview status {status!r} is not one of {PREVIEW_STATUSES}")
        self.db.execute("INSERT OR REPLACE INTO preview VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (track_id, status, reason, json.dumps(dict(features)) if features is not None else None,
                         source, sha256, seconds))

    def preview_outcomes(self, track_ids: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """``track_id -> {status, reason, features, source, sha256, seconds}`` (of all tracks, or of ``track_ids``)."""
        rows = self.db.execute("SELECT track_id, status, reason, features, source, sha256, seconds "
                               "FROM preview").fetchall()
        wanted = None if track_ids is None else set(track_ids)
        return {r[0]: {"status": r[1], "reason": r[2], "features": json.loads(r[3]) if r[3] else None,
                       "source": r[4], "sha256": r[5], "seconds": r[6]}
                for r in rows if wanted is None or r[0] in wanted}

    # ----- a feature service keyed by Spotify id (ReccoBeats)
    def audio_to_fill(self, artist_id: str, service: str) -> list[str]:
        """Tracks of ``artist_id`` with no audio features yet that ``service`` has not been asked about."""
        return [r[0] for r in self.db.execute(
            "SELECT t.track_id FROM artist_album aa JOIN track_stub s USING (album_id) JOIN track t USING (track_id) "
            "LEFT JOIN audio f USING (track_id) WHERE aa.artist_id = ? AND (f.track_id IS NULL OR "
            "(f.available = 0 AND COALESCE(f.source, '') != ?)) ORDER BY aa.position, s.disc_number, s.track_number",
            (artist_id, service))]

    def count(self, table: str) -> int:
        return self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608 (fixed names)

    # ----- export
    def tables(self, artist_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Rows of the four tables for ``artist_ids`` (in that order), one row per id, keyed by CSV column.

        Track rows also carry ``_artist_name`` and ``_duration_ms`` (used to match merged files, not written).
        """
        artist_rows: list[dict[str, Any]] = []
        album_rows: list[dict[str, Any]] = []
        track_rows: list[dict[str, Any]] = []
        audio_rows: list[dict[str, Any]] = []
        seen_albums: set[str] = set()
        seen_tracks: set[str] = set()
        names: dict[str, str] = {}
        for artist_id in dict.fromkeys(artist_ids):
            artist = self.db.execute("SELECT artist_id, name, genres, popularity, followers, image, homepage "
                                     "FROM artist WHERE artist_id = ?", (artist_id,)).fetchone()
            if artist is None:
                continue
            names[artist[0]] = artist[1]
            artist_rows.append({"artist_id": artist[0], "artist_name": artist[1],
                                "artist_genre": str(json.loads(artist[2] or "[]")), "artist_popularity": artist[3],
                                "artist_followers": artist[4], "artist_image": artist[5],
                                "artist_homepage": artist[6]})
            albums = self.db.execute(
                "SELECT a.album_id, a.name, a.release_date, a.total_tracks, a.artist_id, a.image, a.homepage, "
                "a.album_type, a.genres FROM artist_album aa JOIN album a USING (album_id) WHERE aa.artist_id = ? "
                "ORDER BY aa.position", (artist_id,)).fetchall()
            for album in albums:
                if album[0] in seen_albums:
                    continue
                seen_albums.add(album[0])
                genres = json.loads(album[8] or "[]")
                album_rows.append({"album_id": album[0], "album_name": album[1], "album_release_date": album[2],
                                   "album_total_tracks": album[3], "album_artist_id": album[4],
                                   "album_image": album[5], "album_homepage": album[6], "album_type": album[7],
                                   "album_genre": genres[0] if genres else None,
                                   "album_genres": json.dumps(genres, ensure_ascii=False) if genres else None})
                tracks = self.db.execute(
                    "SELECT t.track_id, t.name, s.artist_id, s.album_id, s.track_number, t.popularity, t.explicit, "
                    "t.homepage, t.duration_ms, s.disc_number, t.isrc, COALESCE(t.n_artists, s.n_artists), t.rank, "
                    "s.artist_name, f.available, f.gain, f.source, "
                    f"{', '.join('f.' + c for c in AUDIO_FEATURE_COLUMNS)} "
                    "FROM track_stub s JOIN track t USING (track_id) LEFT JOIN audio f USING (track_id) "
                    "WHERE s.album_id = ? ORDER BY s.disc_number, s.track_number", (album[0],)).fetchall()
                for row in tracks:
                    if row[0] in seen_tracks:
                        continue
                    seen_tracks.add(row[0])
                    track_rows.append({
                        "track_id": row[0], "track_name": row[1], "track_artist_id": row[2], "track_album_id": row[3],
                        "track_number": row[4], "track_popularity": row[5],
                        "track_explicit": None if row[6] is None else bool(row[6]), "track_homepage": row[7],
                        "track_disc_number": row[9], "track_isrc": row[10], "track_n_artists": row[11],
                        "track_popularity_source": None, "track_deezer_rank": row[12],
                        "_artist_name": names.get(row[2]) or row[13], "_duration_ms": row[8]})
                    features = dict(zip(AUDIO_FEATURE_COLUMNS, row[17:], strict=True))
                    if not row[14]:
                        features = dict.fromkeys(AUDIO_FEATURE_COLUMNS)
                    has_features = any(v is not None for v in features.values())
                    audio_rows.append({"track_id": row[0], "track_duration": row[8], **features,
                                       "features_source": (row[16] or "spotify") if has_features else None,
                                       "deezer_gain": row[15]})
        return {"artist.csv": artist_rows, "album.csv": album_rows, "track.csv": track_rows,
                "audio.csv": audio_rows}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def write_table(path: str | os.PathLike[str], columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write one CSV (UTF-8, no BOM, header ``columns``, empty cell = unknown) atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return write_text_atomic(path, buffer.getvalue())


def write_tables(out: str | os.PathLike[str], tables: Mapping[str, Sequence[Mapping[str, Any]]],
                 source: str = "spotify", audio_extra: Sequence[str] = ()) -> None:
    """Write the four CSVs of the relational crawl layout into ``out``, each atomically."""
    for name, columns in table_columns(source, audio_extra).items():
        write_table(Path(out) / name, columns, tables[name])
