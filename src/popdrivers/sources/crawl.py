"""What every API collector shares around its calls: the crawl log, progress, checkpoints, ``crawl.json`` and the
crawl loop itself.

The Spotify collector (:mod:`.spotify`) and the Deezer collector (:mod:`.deezer`) differ in how they ask
(spotipy, plain HTTP) and what a reply means; everything about *surviving* a long crawl lives here and in
:mod:`.api_calls` (one request under retries, backoff and pacing), once:

- :class:`CrawlSession` ties one run together: the checkpoint store (:mod:`.crawl_store`), the log, request
  counters persisted with each checkpoint, progress with counts, and the refusal to mix two crawls in one folder.
- :class:`ArtistCrawler` runs the crawl itself, once for every source: the loop over the artists file
  (:meth:`ArtistCrawler.crawl`: resolve, crawl, rewrite the tables now and then, finish or stop resumably) and the
  steps of one artist; a source fills in how each step asks its API.
"""

from __future__ import annotations

import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from popdrivers.artifacts import utc_now, write_json_atomic
from popdrivers.errors import ApiUnavailable, InputError, PopdriversError
from popdrivers.progress import ProgressCallback
from popdrivers.sources.api_calls import ApiError, ApiStats, MalformedReply, RequestRunner
from popdrivers.sources.crawl_merge import (
    MergeReport,
    TrackMatcher,
    keep_sources_apart,
    merge_audio_features,
    merge_popularity,
)
from popdrivers.sources.crawl_store import CrawlStore, write_tables
from popdrivers.text import normal_text

LOG_NAME = "crawl_log.jsonl"
SUMMARY_NAME = "crawl.json"


class CrawlLog:
    """Append-only JSON lines; each line is one ``write`` so a kill never leaves half an event behind."""

    def __init__(self, path: Path):
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def __call__(self, event: Mapping[str, Any]) -> None:
        line = json.dumps({"time": utc_now(), **event}, ensure_ascii=False, default=str) + "\n"
        os.write(self._fd, line.encode("utf-8"))

    def close(self) -> None:
        os.close(self._fd)


@dataclass(frozen=True)
class CrawlSummary:
    """What one collector run produced (also written to ``crawl.json``).

    ``popularity`` says where the dataset's popularity stands: ``"spotify"`` (the API's own), ``"unavailable"``
    (a Spotify Development Mode app: empty, see ``notes``), ``"deezer_rank"`` (derived from Deezer's rank, see
    docs/collect.md) or ``"file"`` (merged from ``--popularity FILE``). ``popularity_source`` is the value of
    the ``popularity_source`` column of its tracks.
    """

    out: str
    source: str  # "spotify" | "deezer"
    access_level: str  # "extended_quota" | "development_mode" | "unknown" (Spotify); "public" (Deezer)
    market: str
    since: str | None
    artists_requested: int
    artists_resolved: int
    artists_ambiguous: tuple[str, ...]
    artists_not_found: tuple[str, ...]
    albums: int
    tracks: int
    tracks_with_popularity: int
    popularity: str
    popularity_source: str | None
    popularity_from_file: int
    tracks_with_audio_features: int
    audio_features_from_file: int
    audio_features: str  # "available" | "forbidden" | "not offered"
    requests: int
    retries: int
    rate_limit_waits: int
    skipped_replies: int
    complete: bool
    elapsed_seconds: float
    notes: tuple[str, ...] = field(default=())
    # Deezer --audio: {"analysed", "missing", "failed", "pending", "reasons", ...} (see sources.previews)
    previews: Mapping[str, Any] | None = None
    # --audio-features SERVICE (ReccoBeats): {"service", "asked", "found", "unknown", ...}
    audio_features_service: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("previews", "audio_features_service"):
            data[key] = dict(data[key]) if data[key] is not None else None
        for key in ("artists_ambiguous", "artists_not_found", "notes"):
            data[key] = list(data[key])
        return data


class CrawlSession:
    """One collector run in one output folder: store, log, counters, progress, consistency checks.

    Parameters
    ----------
    out : path-like
        The output folder (created if missing).
    refresh : bool
        Forget the checkpoints first.
    """

    COUNTERS = ("requests", "retries", "rate_limit_waits")

    def __init__(self, out: str | os.PathLike[str], refresh: bool = False):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        if refresh:
            CrawlStore.remove(self.out)
        self.store = CrawlStore.open(self.out)
        self.log = CrawlLog(self.out / LOG_NAME)
        self.runner: RequestRunner | None = None
        self.runners: dict[str, RequestRunner] = {}  # counter prefix -> runner ("" the source's own API)
        self.skipped = 0
        self._progress: dict[str, Any] = {"done": 0, "total": 0, "shown": 0.0, "callback": None}
        # A stage running beside the requests (analysed previews) adds its count to the progress line.
        self.progress_note: Callable[[], str] | None = None

    def close(self) -> None:
        self.store.close()
        self.log.close()

    # ----- one folder, one crawl
    def check_same_crawl(self, settings: Mapping[str, str]) -> None:
        """Refuse to mix sources, markets or date limits in one folder (the user must choose --refresh)."""
        stored = {key: self.store.get_meta(key) for key in settings}
        if all(value is None for value in stored.values()) and self.store.get_meta("market") is None:
            with self.store.transaction():
                for key, value in settings.items():
                    self.store.set_meta(key, value)
            return
        for key, value in settings.items():
            # A folder crawled before --source existed holds a Spotify crawl.
            old = stored[key] if stored[key] is not None else ("spotify" if key == "source" else "")
            if old != value:
                raise PopdriversError(
                    f"{self.out} holds a crawl with --{key} {old or '(none)'}, not {value or '(none)'}: rerun with "
                    f"the same --{key} to resume it, add --refresh to start over, or choose another --out folder")

    # ----- counters
    def attach(self, runner: RequestRunner, prefix: str = "") -> None:
        """Count ``runner``'s requests on top of those of earlier runs of this crawl.

        The source's own API has no ``prefix``; another service the crawl asks (ReccoBeats) is counted apart,
        under ``prefix`` ("reccobeats_requests", ...).
        """
        if not prefix:
            self.runner = runner
            runner.on_request = self.report
        self.runners[prefix] = runner
        with self.store.transaction():
            for key in self.COUNTERS:
                self.store.set_meta(f"base_{prefix}{key}", self.store.get_meta(prefix + key, "0"))

    def checkpoint_stats(self) -> None:
        """Persist the request counters with each checkpoint (a killed run still counts its requests)."""
        for prefix, runner in self.runners.items():
            for key in self.COUNTERS:
                base = int(self.store.get_meta(f"base_{prefix}{key}", "0") or 0)
                self.store.set_meta(prefix + key, base + getattr(runner.stats, key))

    def counter(self, key: str) -> int:
        return int(self.store.get_meta(key, "0") or 0)

    # ----- log
    def skip(self, what: str, reason: str, **ids: Any) -> None:
        """Record an item skipped because of a bad reply; it is asked for again by the next run."""
        self.skipped += 1
        self.log({"event": "skipped", "what": what, "reason": reason, **ids})

    # ----- progress
    def start_progress(self, callback: ProgressCallback | None, total: int) -> None:
        self._progress.update(callback=callback, total=total, done=0)
        self.report(force=True)

    def advance(self, done: int) -> None:
        self._progress["done"] = done
        self.report(force=True)

    def report(self, force: bool = False) -> None:
        """Refresh the progress callback; per request at most every 0.2 s (keeps COUNT(*) off the hot path)."""
        progress = self._progress
        if progress["callback"] is None or (not force and time.monotonic() - progress["shown"] < 0.2):
            return
        progress["shown"] = time.monotonic()
        stats = self.runner.stats if self.runner is not None else ApiStats()
        note = f" · {self.progress_note()}" if self.progress_note is not None else ""
        progress["callback"](progress["done"], progress["total"],
                             f"{self.store.count('track'):,} tracks · {stats.requests:,} requests · "
                             f"{stats.retries:,} retries{note}")

    # ----- crawl.json
    def write_summary(self, summary: CrawlSummary, exported: ExportedTables | None = None, **extra: Any) -> None:
        """Write ``crawl.json``: the summary, ``extra`` fields, and how the merged files matched (``exported``)."""
        merges: dict[str, Any] = {}
        if exported is not None:
            merges = {"popularity_merge": exported.popularity_merge.to_dict() if exported.popularity_merge else None,
                      "audio_features_merge": exported.audio_merge.to_dict() if exported.audio_merge else None}
        write_json_atomic(self.out / SUMMARY_NAME, {"collected_at": utc_now(), **summary.to_dict(), **extra, **merges,
                                                    "files": ["track.csv", "audio.csv", "album.csv", "artist.csv"],
                                                    "log": LOG_NAME})


@dataclass
class ExportedTables:
    """The four tables as written, and how merged files matched."""

    tables: dict[str, list[dict[str, Any]]]
    popularity_merge: MergeReport | None
    audio_merge: MergeReport | None
    notes: tuple[str, ...] = ()  # what keeping feature sources apart moved (crawl_merge.keep_sources_apart)


def export_tables(session: CrawlSession, artist_ids: Sequence[str], source: str,
                  own_popularity: Callable[[dict[str, list[dict[str, Any]]]], None],
                  popularity: TrackMatcher | None = None, audio: TrackMatcher | None = None,
                  measured: Callable[[dict[str, list[dict[str, Any]]]], Sequence[str]] | None = None
                  ) -> ExportedTables:
    """Build the tables from the store, set popularity and its source, merge the files, write the CSVs.

    ``own_popularity`` sets ``track_popularity``/``track_popularity_source`` from what the source gave (Spotify's
    value, or the transform of Deezer's rank); a ``popularity`` file then replaces it for every track.
    ``measured`` puts features measured by popdrivers (analysed previews) into the audio rows and returns the
    extra ``audio.csv`` columns; a features file then fills only the tracks still without features. Deezer's bpm
    is then kept apart from a tempo of another source (:func:`~.crawl_merge.keep_sources_apart`).
    """
    tables = session.store.tables(list(artist_ids))
    own_popularity(tables)
    extra_audio = tuple(measured(tables)) if measured is not None else ()
    popularity_merge = merge_popularity(tables, popularity) if popularity is not None else None
    audio_merge = merge_audio_features(tables, audio) if audio is not None else None
    apart, note = keep_sources_apart(tables)
    write_tables(session.out, tables, source, (*extra_audio, *apart))
    return ExportedTables(tables, popularity_merge, audio_merge, (note,) if note else ())


def summarize(session: CrawlSession, exported: ExportedTables, *, source: str, access_level: str, market: str,
              since: str | None, queries: Sequence[str], resolved: Sequence[str], popularity: str,
              audio_features: str, complete: bool, started: float, notes: Sequence[str],
              previews: Mapping[str, Any] | None = None,
              audio_features_service: Mapping[str, Any] | None = None) -> CrawlSummary:
    """The :class:`CrawlSummary` of a run (counts read back from the written tables and the store)."""
    tables = exported.tables
    statuses = {q: session.store.resolution(q) for q in queries}
    with_popularity = [r for r in tables["track.csv"] if r.get("track_popularity") is not None]
    sources = sorted({str(r["track_popularity_source"]) for r in with_popularity if r.get("track_popularity_source")})
    notes = list(notes)
    if exported.popularity_merge is not None:
        popularity = "file"
        notes.append(exported.popularity_merge.describe())
    if exported.audio_merge is not None:
        notes.append(exported.audio_merge.describe())
    notes += exported.notes
    return CrawlSummary(
        out=str(session.out), source=source, access_level=access_level, market=market, since=since,
        artists_requested=len(queries), artists_resolved=len(dict.fromkeys(resolved)),
        artists_ambiguous=tuple(q for q, r in statuses.items() if r and r[0] == "ambiguous"),
        artists_not_found=tuple(q for q, r in statuses.items() if r and r[0] == "not_found"),
        albums=len(tables["album.csv"]), tracks=len(tables["track.csv"]), tracks_with_popularity=len(with_popularity),
        popularity=popularity, popularity_source=", ".join(sources) or None,
        popularity_from_file=exported.popularity_merge.total if exported.popularity_merge else 0,
        # Deezer's bpm alone is not a set of audio features: counted are Spotify's and merged ones.
        tracks_with_audio_features=sum(1 for r in tables["audio.csv"] if r.get("features_source") not in (None,
                                                                                                          "deezer")),
        audio_features_from_file=exported.audio_merge.total if exported.audio_merge else 0,
        audio_features=audio_features, requests=session.counter("requests"), retries=session.counter("retries"),
        rate_limit_waits=session.counter("rate_limit_waits"), skipped_replies=session.skipped, complete=complete,
        elapsed_seconds=round(time.perf_counter() - started, 3), notes=tuple(notes), previews=previews,
        audio_features_service=audio_features_service)


# A long crawl rewrites its tables this often, so a folder read mid-crawl holds what was collected so far.
REWRITE_EVERY_SECONDS = 20.0


class ArtistCrawler(ABC):
    """What every collector's crawl shares: the session's store and log, and how the resolution of a line of the
    artists file is cached, logged and told (a subclass decides the line against its API in ``decide``)."""

    def __init__(self, session: CrawlSession, notify: Callable[[str], None]):
        self.session, self.notify = session, notify
        self.store, self.log = session.store, session.log
        # Items skipped in this run are not asked for again until the next run.
        self.skip_tracks: set[str] = set()
        # Steps run for each artist once its tracks are in: features from another service (ReccoBeats), analysed
        # previews. Each takes the artist id and checkpoints its own work.
        self.feature_steps: list[Callable[[str], None]] = []
        # The artist ids of the lines resolved so far, in order (what the tables are exported for).
        self.resolved: list[str] = []

    # ----- the run: the loop every collector runs
    def crawl(self, queries: Sequence[str], *, export: Callable[[list[str]], Any],
              finish: Callable[[bool], CrawlSummary], progress: ProgressCallback | None) -> CrawlSummary:
        """Resolve each line of the artists file, crawl its artist, rewrite the tables now and then, finish.

        ``export`` rewrites the tables for the artist ids resolved so far; ``finish(complete)`` writes the final
        tables and ``crawl.json`` and returns the summary (it reads :attr:`resolved`). When the API stays
        unavailable the crawl finishes as incomplete (its tables written) and :class:`ApiUnavailable` says a rerun
        resumes.
        """
        session = self.session
        last_write = time.monotonic()
        try:
            session.start_progress(progress, len(queries))
            for done, query in enumerate(queries, start=1):
                artist_id = self.resolve(query)
                if artist_id is not None:
                    self.resolved.append(artist_id)
                    self.crawl_artist(artist_id)
                session.advance(done)
                if time.monotonic() - last_write > REWRITE_EVERY_SECONDS:
                    export(self.resolved)
                    last_write = time.monotonic()
        except ApiUnavailable as exc:
            session.log({"event": "stopped", "reason": str(exc)})
            finish(False)
            raise ApiUnavailable(f"{exc}. What was collected is written to {session.out}; rerun the same command "
                                 "later to resume where it stopped") from None
        summary = finish(True)
        self.log({"event": "finished", "tracks": summary.tracks, "requests": summary.requests,
                  "retries": summary.retries, "skipped": summary.skipped_replies, **self.finished_details(summary)})
        return summary

    def finished_details(self, summary: CrawlSummary) -> dict[str, Any]:
        """What a source adds to the log's "finished" event (Spotify: its access level); nothing by default."""
        return {}

    def resolve(self, query: str) -> str | None:
        """The artist id a line of the artists file names, None when not found or ambiguous.

        Decided once (in this run or an earlier one: an earlier "not found" or "ambiguous" is told again, not
        searched again); a malformed reply is skipped and left undecided, so the next run tries again.
        """
        decided, known_id = self.cached_resolution(query)
        if decided:
            return known_id
        try:
            status, artist_id, detail = self.decide(query)
        except MalformedReply as exc:
            self.session.skip("resolve", str(exc), query=query)
            return None
        except ApiError as exc:
            status, artist_id, detail = "not_found", None, str(exc)
        return self.record_resolution(query, status, artist_id, detail)

    @abstractmethod
    def decide(self, query: str) -> tuple[str, str | None, str | None]:
        """("resolved" | "not_found" | "ambiguous", artist id, detail) for a line not decided before, from the API
        (raises MalformedReply or ApiError)."""

    def cached_resolution(self, query: str) -> tuple[bool, str | None]:
        """(decided in an earlier run, its artist id); an earlier "not found" or "ambiguous" is told again."""
        cached = self.store.resolution(query)
        if cached is None:
            return False, None
        status, artist_id, detail = cached
        if status != "resolved":
            self.tell_resolution(status, query, detail)
        return True, artist_id if status == "resolved" else None

    def record_resolution(self, query: str, status: str, artist_id: str | None, detail: str | None) -> str | None:
        """Keep the decision (so a resumed crawl does not search again), log and tell it; the artist id if found."""
        with self.store.transaction():
            self.store.set_resolution(query, status, artist_id, detail)
            self.session.checkpoint_stats()
        self.log({"event": status, "query": query, "artist_id": artist_id, "detail": detail})
        self.tell_resolution(status, query, detail)
        return artist_id if status == "resolved" else None

    def tell_resolution(self, status: str, query: str, detail: str | None) -> None:
        if status in ("ambiguous", "not_found"):
            verdict = "is ambiguous" if status == "ambiguous" else "was not found"
            self.notify(f"artist '{query}' {verdict}" + (f": {detail}" if detail else ""))

    # ----- one artist: the steps every source runs; a subclass fills in how each talks to its API
    def crawl_artist(self, artist_id: str) -> None:
        """Artist, its album list, each album's tracks, the track details, then whatever the source adds.

        Each step is checkpointed in the store, so a resumed crawl starts at the first step not done; a bad reply
        for the artist or its album list skips the artist (logged) and the crawl goes on.
        """
        state = self.store.artist_state(artist_id)
        try:
            if state is None:
                artist = self.fetch_artist(artist_id)
                with self.store.transaction():
                    self.store.put_artist(artist)
                    self.session.checkpoint_stats()
                state = (0, 0)
            if not state[0]:
                self.list_albums(artist_id)
        except (MalformedReply, ApiError) as exc:
            self.session.skip("artist", str(exc), artist_id=artist_id)
            return
        for album_id in self.store.albums_to_list(artist_id):
            self.list_album_tracks(album_id, artist_id)
        self.fetch_tracks(artist_id)
        self.after_tracks(artist_id)
        for step in self.feature_steps:
            step(artist_id)
        with self.store.transaction():
            self.store.mark_artist_done(artist_id)
            self.session.checkpoint_stats()
        self.log({"event": "artist_done", "artist_id": artist_id})

    @abstractmethod
    def fetch_artist(self, artist_id: str) -> dict[str, Any]:
        """The artist's row for the store (raises MalformedReply or ApiError)."""

    @abstractmethod
    def list_albums(self, artist_id: str) -> None:
        """Store the artist's releases (raises MalformedReply or ApiError when the listing fails)."""

    @abstractmethod
    def list_album_tracks(self, album_id: str, artist_id: str) -> None:
        """Store one release's tracks (a bad reply is skipped and logged inside)."""

    @abstractmethod
    def fetch_tracks(self, artist_id: str) -> None:
        """Store the details of the artist's listed tracks."""

    def after_tracks(self, artist_id: str) -> None:
        """A source's extra step once the tracks are in (Spotify: audio features); nothing by default."""
        return None

    # ----- resolving a name: exact matches among search results
    def exact_name_search(self, query: str, pages: Iterator[list[tuple[str, str]]], link: Callable[[str], str],
                          fix: str) -> tuple[str, str | None, str | None]:
        """("resolved" | "not_found" | "ambiguous", artist id, detail) from pages of (id, name) search results.

        Results come by relevance, so all exact matches (case-insensitive, Unicode-normalised) sit together: once
        one is found, paging goes on only while pages still hold exact matches. Two or more artists with the name
        are ambiguous: none is picked, ``fix`` says what to write in the artists file instead.
        """
        target = normal_text(query, unicode="NFKC", punctuation=True)
        matches: dict[str, str] = {}
        seen = 0
        for page in pages:
            hits = {artist_id: name for artist_id, name in page
                    if normal_text(name, unicode="NFKC", punctuation=True) == target}
            if matches and not hits:
                break
            matches.update(hits)
            seen += len(page)
        if not matches:
            return "not_found", None, f"no artist named exactly '{query}' among {seen} search results"
        if len(matches) > 1:
            links = ", ".join(link(i) for i in matches)
            return "ambiguous", None, (f"{len(matches)} artists are named '{query}' ({links}): none was picked; put "
                                       f"{fix} in the artists file")
        return "resolved", next(iter(matches)), None


# ----- small helpers both collectors use to read artist lists and JSON replies
def artist_queries(artists: str | os.PathLike[str] | Sequence[str]) -> list[str]:
    """The lines a collector resolves: a text file's (:func:`read_artist_list`) or the strings given."""
    queries = list(artists) if not isinstance(artists, str | os.PathLike) else read_artist_list(artists)
    if not queries:
        raise InputError("no artists to collect")
    return queries


def read_artist_list(path: str | os.PathLike[str]) -> list[str]:
    """Artist names/ids/links of a text file, one per line; blank lines and ``#`` comments are ignored."""
    path = Path(path)
    lines = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    queries = list(dict.fromkeys(line for line in lines if line and not line.startswith("#")))
    if not queries:
        raise InputError(f"{path} lists no artists: write one artist name, artist id or artist link per line")
    return queries


def since_date(value: str | date | None) -> str | None:
    """Normalise ``--since`` to YYYY-MM-DD (a bare year means 1 January)."""
    if value is None or value == "":
        return None
    text = value.isoformat() if isinstance(value, date) else str(value).strip()
    try:
        return date.fromisoformat(padded_release(text)).isoformat()
    except ValueError:
        raise InputError(f"--since '{value}' is not a date: use YYYY-MM-DD (or YYYY)") from None


def padded_release(release: str) -> str:
    """Year-only and year-month release dates count from their first day."""
    return {4: release + "-01-01", 7: release + "-01"}.get(len(release), release)
