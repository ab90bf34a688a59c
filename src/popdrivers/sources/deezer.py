"""Deezer collector: the same crawl as :mod:`.spotify`, from Deezer's public API (no credentials).

:func:`collect` resolves each artist by exact name (or a ``deezer.com/artist/ID`` link), then fetches the
artist (``nb_fan`` -> followers), its albums (every page; record types album, single and ep), each album
(genres, size, main artist) and its tracks (every page), and each track (``rank``, ``bpm``, ``gain``,
explicit lyrics, duration, position, disk, ISRC, contributors). It writes the same relational layout as the
Spotify collector, through the same checkpoint store, retry loop, progress and summary (:mod:`.crawl`).

**Popularity.** Deezer's ``rank`` is not Spotify's 0-100 popularity: it is an unbounded play-based score
(roughly 0 to 1,000,000). It is kept as ``deezer_rank`` and a popularity is derived from it by the fixed,
documented transform :func:`rank_to_popularity`; ``popularity_source`` says ``deezer_rank`` on every row.

**Audio.** Deezer's ``bpm`` is the track's estimated tempo in beats per minute, the same quantity as Spotify's
``tempo`` (another estimator): it fills ``tempo`` (0 = not measured, read as missing) with
``features_source = deezer``. Deezer's ``gain`` is a replay-gain style level adjustment in dB, *not* Spotify's
``loudness``: it is kept as ``deezer_gain`` and no canonical column is derived from it.

**Quota.** Deezer allows about 50 requests per 5 seconds per IP and answers an excess with an error object of
code 4 inside an HTTP 200 reply. Requests are paced by a rolling window (:class:`~.api_calls.RequestPacer`); a quota
error is waited out and the same request asked again, so nothing is lost or fetched twice.

**Previews** (``audio=True``, ``popdrivers collect --source deezer --audio``). Each track's 30-second preview is
fetched right after the track reply and analysed by :mod:`popdrivers.audio` in worker processes while the crawl
goes on (:mod:`.previews`): the track then takes tempo, key, mode, loudness, time_signature and popdrivers'
descriptors from its sound, ``features_source = "audio:deezer-preview:<analyser>"``.

The API base is configurable (``api_base`` / ``POPDRIVERS_DEEZER_API_BASE``, a host root without path);
``next`` links are followed exactly as the API gives them.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from popdrivers.errors import InputError
from popdrivers.progress import ProgressCallback
from popdrivers.sources.api_calls import (
    ApiError,
    EventSink,
    HttpApi,
    MalformedReply,
    Retry,
    RetryPolicy,
    as_float,
    as_int,
    as_text,
)
from popdrivers.sources.crawl import (
    ArtistCrawler,
    CrawlSession,
    CrawlSummary,
    ExportedTables,
    artist_queries,
    export_tables,
    padded_release,
    since_date,
    summarize,
)
from popdrivers.sources.crawl_merge import check_audio_features_file, read_audio_features_file, read_popularity_file
from popdrivers.sources.previews import (
    AnalysisQueue,
    PreviewCollector,
    PreviewDownloader,
    apply_previews,
    check_keep_audio,
)

__all__ = ["DEFAULT_API_BASE", "POPULARITY_NOTE", "PREVIEWS_NOTE", "DeezerApi", "collect", "parse_artist_ref",
           "rank_to_popularity", "resolve_api_base"]

DEFAULT_API_BASE = "https://api.deezer.com"
API_BASE_ENV = "POPDRIVERS_DEEZER_API_BASE"
QUOTA_REQUESTS, QUOTA_SECONDS = 50, 5.0  # Deezer's published limit per IP
# The pacer's window is a quarter second longer than Deezer's: the server counts a request when it arrives,
# later than the client sent it, so pacing at exactly 50 per 5 s meets the quota error now and then.
PACING_MARGIN_SECONDS = 0.25
PAGE = 50  # items asked per page of search results, artist albums and album tracks
SEARCH_MAX_RESULTS = 300  # stop looking for an exact name after this many search results
RELEASE_TYPES = {"album": "album", "single": "single", "ep": "ep"}  # Deezer record_type -> canonical album_type
RANK_CEILING = 1_000_000  # about the rank of the most played tracks: maps to popularity 100
QUOTA_ERROR, SERVICE_BUSY, NO_DATA = 4, 700, 800  # Deezer error codes (inside HTTP 200 replies)
POPULARITY_NOTE = (
    "popularity of this Deezer crawl is derived from Deezer's rank, not Spotify popularity: popularity = "
    "round(100 * log10(1 + rank) / log10(1 + 1,000,000)), clipped to 0..100 (monotone, the same for every crawl). "
    "deezer_rank is kept beside it and popularity_source says deezer_rank; effects in popularity points are "
    "not comparable with a Spotify dataset's. bpm fills tempo (features_source deezer); gain is kept as "
    "deezer_gain (a level adjustment, not Spotify's loudness).")

PREVIEWS_NOTE = (
    "With --audio each track's 30-second Deezer preview is analysed on this machine by popdrivers.audio: tempo, "
    "key, mode, loudness and time_signature on Spotify's scales plus popdrivers' own descriptors, with "
    "features_source audio:deezer-preview:<analyser> (a track with an analysed preview does not keep Deezer's "
    "bpm). The links are not stored, nor the audio unless --keep-audio DIR; tracks without an analysed preview keep "
    "Deezer's bpm apart as deezer_bpm, not as tempo (features_source deezer), and nothing else.")

_ARTIST_LINK = re.compile(r"^https?://(?:www\.)?deezer\.com/(?:[a-z]{2}(?:-[a-z]{2})?/)?artist/(\d+)(?:[/?#].*)?$")
_ARTIST_URI = re.compile(r"^deezer:artist:(\d+)$")


def rank_to_popularity(rank: int | float | None) -> int | None:
    """Deezer's rank mapped onto 0..100: ``round(100 * log10(1 + rank) / log10(1 + RANK_CEILING))``, clipped.

    Logarithmic because ranks span five orders of magnitude (a few hundred to about a million); fixed (not
    fitted to the crawl) so one track gets the same value in every crawl. Rank 999 -> 50, 999,999 -> 100.
    """
    if rank is None or (isinstance(rank, float) and math.isnan(rank)) or rank < 0:
        return None
    return int(min(100, max(0, round(100 * math.log10(1 + rank) / math.log10(1 + RANK_CEILING)))))


def resolve_api_base(api_base: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The API host root: explicit value, else ``POPDRIVERS_DEEZER_API_BASE``, else Deezer's own."""
    environ = os.environ if environ is None else environ
    base = (api_base or environ.get(API_BASE_ENV) or DEFAULT_API_BASE).rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"Deezer API base '{base}' is not an http(s) URL (e.g. {DEFAULT_API_BASE})")
    if parts.path not in ("", "/") or parts.query:
        raise InputError(f"Deezer API base '{base}' must be a host root without a path (e.g. {DEFAULT_API_BASE})")
    return base


def parse_artist_ref(line: str) -> tuple[str, str | None]:
    """``("link", id)`` for ``https://www.deezer.com/artist/ID`` or ``deezer:artist:ID``, else ``("name", None)``."""
    text = line.strip()
    if m := _ARTIST_LINK.match(text) or _ARTIST_URI.match(text):
        return "link", m[1]
    return "name", None


class DeezerApi(HttpApi):
    """Plain HTTP (``requests``) to Deezer's public API under the shared retry loop and a quota pacer.

    deezer-python is not used: its client fixes the host in its constructor and its paginated lists rebuild
    ``next`` links against it and hide page boundaries, so a quota error on page k could only be retried by
    starting over, and pages could not be checkpointed.

    Parameters as for :class:`~popdrivers.sources.api_calls.HttpApi`; ``api_base`` defaults to Deezer's host and
    ``quota`` to Deezer's published quota (paced with a margin).
    """

    def __init__(self, api_base: str = DEFAULT_API_BASE, *, policy: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 on_event: EventSink | None = None, quota: tuple[int, float] = (QUOTA_REQUESTS, QUOTA_SECONDS)):
        super().__init__("Deezer API", api_base, policy=policy, sleep=sleep, clock=clock, on_event=on_event,
                         quota=(quota[0], quota[1] + PACING_MARGIN_SECONDS))

    def get(self, what: str, path_or_url: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One JSON object from ``path_or_url`` (a path under the API base, or a ``next`` link as given)."""
        absolute = path_or_url.startswith(("http://", "https://"))
        url = path_or_url if absolute else f"{self.api_base}/{path_or_url.lstrip('/')}"
        return self.runner.call(what, self._attempt, url, None if absolute else params)

    def _attempt(self, url: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
        with self.connection_retried():
            reply = self.http.get(url, params=params, timeout=self.policy.timeout)
        self.check_status(reply, lambda r: r.text[:200])
        try:
            data = reply.json()
        except ValueError:
            raise MalformedReply("reply is not valid JSON") from None
        if not isinstance(data, dict):
            raise MalformedReply("reply is not a JSON object")
        error = data.get("error")
        if error:
            code = as_int(error.get("code")) if isinstance(error, dict) else None
            message = str(error.get("message", "")) if isinstance(error, dict) else str(error)
            if code == QUOTA_ERROR:
                raise Retry(f"Deezer quota exceeded (error code 4: {message})", rate_limited=True)
            if code == SERVICE_BUSY:
                raise Retry(f"Deezer service busy (error code 700: {message})")
            raise ApiError(404 if code == NO_DATA else 400, f"Deezer error code {code}: {message}")
        return data


def _page(reply: Mapping[str, Any]) -> tuple[list[Any], str | None, int | None]:
    data = reply.get("data")
    if not isinstance(data, list):
        raise MalformedReply("reply has no data list")
    next_url = reply.get("next")
    return data, next_url if isinstance(next_url, str) and next_url else None, as_int(reply.get("total"))


def _id(value: Any) -> str | None:
    number = as_int(value)
    return str(number) if number is not None else as_text(value)


class _Crawler(ArtistCrawler):
    """One run of :func:`collect` against Deezer."""

    def __init__(self, api: DeezerApi, session: CrawlSession, since: str | None, notify: Callable[[str], None]):
        super().__init__(session, notify)
        self.api, self.since = api, since
        self.previews: PreviewCollector | None = None  # set by collect(audio=True)

    def fresh_preview_link(self, track_id: str) -> str | None:
        """The track's current preview link (the one seen earlier has expired or was refused)."""
        return as_text(self.api.get(f"track {track_id} (fresh preview link)", f"track/{track_id}").get("preview"))

    def after_tracks(self, artist_id: str) -> None:
        # Tracks fetched by an earlier run (stopped, or run without --audio) whose preview is not decided yet.
        if self.previews is not None:
            self.previews.resume(artist_id)

    # ----- paging
    def _all_pages(self, what: str, path: str, params: Mapping[str, Any], skip_kind: str,
                   context: Mapping[str, Any], limit_items: int | None = None) -> tuple[list[Any], bool]:
        """Every item of a listing, following ``next`` links as given; whether every page arrived."""
        items: list[Any] = []
        url: str | None = path
        first = True
        while url is not None:
            try:
                reply = self.api.get(f"{what} from item {len(items)}", url, params if first else None)
                data, url, _ = _page(reply)
            except MalformedReply as exc:
                # The position of the next page is unknown without this page's next link: stop, rerun later.
                self.session.skip(skip_kind, str(exc), **context, offset=len(items))
                return items, False
            first = False
            items.extend(data)
            if not data or (limit_items is not None and len(items) >= limit_items):
                break
        return items, True

    # ----- resolving a line of the artists file
    def decide(self, query: str) -> tuple[str, str | None, str | None]:
        _kind, artist_id = parse_artist_ref(query)
        if artist_id is None:
            return self._search(query)
        try:
            artist = self._parse_artist(self.api.get(f"artist {artist_id}", f"artist/{artist_id}"))
        except ApiError as exc:
            return "not_found", None, str(exc)
        with self.store.transaction():
            self.store.put_artist(artist)
            self.session.checkpoint_stats()
        return "resolved", artist["artist_id"], None

    def _search(self, query: str) -> tuple[str, str | None, str | None]:
        """Exact-name match among search results (every page until matches stop); two or more: ambiguous."""
        return self.exact_name_search(query, self._search_pages(query), lambda i: f"https://www.deezer.com/artist/{i}",
                                      "the link of the one you mean")

    def _search_pages(self, query: str) -> Iterator[list[tuple[str, str]]]:
        url: str | None = "search/artist"
        seen = 0
        while url is not None and seen < SEARCH_MAX_RESULTS:
            reply = self.api.get(f"search '{query}' from result {seen}", url,
                                 {"q": query, "limit": PAGE} if seen == 0 else None)
            data, url, _ = _page(reply)
            yield [(_id(a.get("id")), str(a.get("name", ""))) for a in data if isinstance(a, dict) and _id(a.get("id"))]
            seen += len(data)
            if not data:
                return

    # ----- one artist (the steps: ArtistCrawler.crawl_artist)
    def fetch_artist(self, artist_id: str) -> dict[str, Any]:
        return self._parse_artist(self.api.get(f"artist {artist_id}", f"artist/{artist_id}"))

    @staticmethod
    def _parse_artist(reply: Mapping[str, Any]) -> dict[str, Any]:
        artist_id, name = _id(reply.get("id")), as_text(reply.get("name"))
        if artist_id is None or name is None:
            raise MalformedReply("artist reply lacks id or name")
        return {"artist_id": artist_id, "name": name, "genres": [], "popularity": None,
                "followers": as_int(reply.get("nb_fan")),
                "image": as_text(reply.get("picture_xl")) or as_text(reply.get("picture")),
                "homepage": as_text(reply.get("link")) or f"https://www.deezer.com/artist/{artist_id}"}

    def list_albums(self, artist_id: str) -> None:
        items, complete = self._all_pages(f"albums of {artist_id}", f"artist/{artist_id}/albums", {"limit": PAGE},
                                          "album page", {"artist_id": artist_id})
        albums: dict[str, dict[str, Any]] = {}
        for item in items:
            if not isinstance(item, dict) or _id(item.get("id")) is None:
                self.session.skip("album", "album entry lacks an id", artist_id=artist_id)
                continue
            album_type = RELEASE_TYPES.get(str(item.get("record_type", "")).lower())
            release = as_text(item.get("release_date"))
            if album_type is None:  # compilations and other record types are not the artist's releases
                continue
            if release is None:
                self.session.skip("album", "album lacks release_date", album_id=_id(item["id"]))
                continue
            if self.since is not None and padded_release(release) < self.since:
                continue
            album_id = _id(item["id"])
            albums.setdefault(album_id, {  # type: ignore[arg-type]
                "album_id": album_id, "name": as_text(item.get("title")), "release_date": release,
                "total_tracks": None, "artist_id": artist_id, "album_type": album_type,
                "image": as_text(item.get("cover_xl")) or as_text(item.get("cover")),
                "homepage": as_text(item.get("link")) or f"https://www.deezer.com/album/{album_id}"})
        with self.store.transaction():
            self.store.put_albums(artist_id, list(albums.values()), complete)
            self.session.checkpoint_stats()

    def list_album_tracks(self, album_id: str, artist_id: str) -> None:
        """The album itself (genres, size, main artist), then its tracks (every page): one checkpoint."""
        try:
            album = self.api.get(f"album {album_id}", f"album/{album_id}")
        except (MalformedReply, ApiError) as exc:
            self.session.skip("album", str(exc), album_id=album_id)
            return
        main = album.get("artist")
        main_id = _id(main.get("id")) if isinstance(main, dict) else None
        if main_id is not None and main_id != artist_id:
            # Listed under the artist but led by someone else (an appearance): not the artist's own release.
            with self.store.transaction():
                self.store.drop_album(artist_id, album_id)
                self.session.checkpoint_stats()
            self.log({"event": "album_not_own", "album_id": album_id, "artist_id": artist_id, "main": main_id})
            return
        genres_block = album.get("genres")
        genres = [g.get("name") for g in (genres_block.get("data") if isinstance(genres_block, dict) else None) or []
                  if isinstance(g, dict) and as_text(g.get("name"))]
        items, complete = self._all_pages(f"tracks of album {album_id}", f"album/{album_id}/tracks", {"limit": PAGE},
                                          "album tracks", {"album_id": album_id})
        stubs = []
        for item in items:
            track_id = _id(item.get("id")) if isinstance(item, dict) else None
            if track_id is None:
                self.session.skip("track", "album track entry lacks an id", album_id=album_id)
                continue
            lead = item.get("artist")
            lead_id = _id(lead.get("id")) if isinstance(lead, dict) else None
            stubs.append({"track_id": track_id, "album_id": album_id,
                          "disc_number": as_int(item.get("disk_number")) or 1,
                          "track_number": as_int(item.get("track_position")),
                          "artist_id": artist_id if lead_id in (None, artist_id) else lead_id,
                          "artist_name": as_text(lead.get("name")) if isinstance(lead, dict) else None})
        with self.store.transaction():
            self.store.update_album(album_id, genres=genres, total_tracks=as_int(album.get("nb_tracks")),
                                    artist_id=main_id or artist_id)
            self.store.put_album_tracks(album_id, stubs, complete)
            self.session.checkpoint_stats()

    def fetch_tracks(self, artist_id: str) -> None:
        for track_id in [t for t in self.store.tracks_to_fetch(artist_id) if t not in self.skip_tracks]:
            try:
                reply = self.api.get(f"track {track_id}", f"track/{track_id}")
                track, audio = self._parse_track(reply, track_id)
            except (MalformedReply, ApiError) as exc:
                self.session.skip("track", str(exc), track_id=track_id)
                self.skip_tracks.add(track_id)
                continue
            with self.store.transaction():
                self.store.put_tracks([track])
                self.store.put_audio([audio])
                self.session.checkpoint_stats()
            if self.previews is not None:  # right after the reply: the link expires within minutes
                self.previews.track_fetched(track_id, as_text(reply.get("preview")))

    @staticmethod
    def _parse_track(reply: Mapping[str, Any], track_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        duration, rank = as_int(reply.get("duration")), as_int(reply.get("rank"))
        explicit = reply.get("explicit_lyrics")
        missing = [name for name, ok in (("rank", rank is not None), ("duration", duration is not None),
                                         ("explicit_lyrics", isinstance(explicit, bool))) if not ok]
        if missing:
            raise MalformedReply(f"track object lacks {', '.join(missing)}")
        contributors = reply.get("contributors")
        credited = {_id(c.get("id")) for c in contributors if isinstance(c, dict)} - {None} \
            if isinstance(contributors, list) else set()
        bpm, gain = as_float(reply.get("bpm")), as_float(reply.get("gain"))
        tempo = bpm if bpm is not None and bpm > 0 else None  # Deezer writes 0 when it has no estimate
        track = {"track_id": track_id, "name": as_text(reply.get("title")), "popularity": None,
                 "explicit": int(explicit), "duration_ms": duration * 1000,  # type: ignore[operator]
                 "homepage": as_text(reply.get("link")) or f"https://www.deezer.com/track/{track_id}",
                 "isrc": as_text(reply.get("isrc")), "n_artists": len(credited) or None, "rank": rank}
        audio = {"track_id": track_id, "available": 1, "tempo": tempo, "gain": gain,
                 "source": "deezer" if tempo is not None else None}
        return track, audio


def _deezer_popularity(tables: dict[str, list[dict[str, Any]]]) -> None:
    for row in tables["track.csv"]:
        row["track_popularity"] = rank_to_popularity(row.get("track_deezer_rank"))
        row["track_popularity_source"] = "deezer_rank" if row["track_popularity"] is not None else None


def collect(
    artists: str | os.PathLike[str] | Sequence[str],
    out: str | os.PathLike[str],
    *,
    since: str | date | None = None,
    popularity_file: str | os.PathLike[str] | None = None,
    audio_features_file: str | os.PathLike[str] | None = None,
    refresh: bool = False,
    api_base: str | None = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    quota: tuple[int, float] = (QUOTA_REQUESTS, QUOTA_SECONDS),
    progress: ProgressCallback | None = None,
    notify: Callable[[str], None] | None = None,
    audio: bool = False,
    keep_audio: str | os.PathLike[str] | None = None,
    analysis_workers: int | None = None,
) -> CrawlSummary:
    """Crawl artists from Deezer's public API into the relational layout in ``out`` (resumable).

    Parameters
    ----------
    artists : path-like or sequence of str
        A text file with one artist name or ``https://www.deezer.com/artist/ID`` link per line, or the strings.
    out : path-like
        Output folder; created if missing. Holding a previous Deezer crawl, it is resumed.
    since : str or date, optional
        Keep only releases on or after this date (YYYY-MM-DD).
    popularity_file : path-like, optional
        Spotify popularity to use instead of the rank-derived one (see :func:`.spotify.collect`): every track
        then takes the file's value or none, so the table never mixes the two scales.
    audio_features_file : path-like, optional
        Audio features joined on ISRC or normalised artist + title (Deezer track ids are not Spotify's).
    refresh : bool
        Forget the checkpoints in ``out`` and fetch everything again.
    api_base : str, optional
        Host root; default ``POPDRIVERS_DEEZER_API_BASE`` else ``https://api.deezer.com``.
    policy : RetryPolicy, optional
    sleep, clock : callable
        Every wait and the pacer's time (injectable for tests).
    quota : (int, float)
        Requests allowed per seconds (default Deezer's 50 per 5 s).
    progress : ProgressCallback, optional
    notify : callable, optional
        Plain-language notices (ambiguous or missing artists).
    audio : bool
        Fetch each track's 30-second preview right after its reply and analyse it with :mod:`popdrivers.audio`
        in worker processes while the crawl goes on (:mod:`.previews`); the measured features replace Deezer's
        ``bpm`` for that track, with ``features_source = "audio:deezer-preview:<analyser>"``. Links are never
        stored; a preview analysed is never fetched again.
    keep_audio : path-like, optional
        Keep the downloaded previews in this folder (``<track_id>.mp3``); by default they are deleted once
        analysed.
    analysis_workers : int, optional
        Worker processes analysing previews (default: one per core).

    Returns
    -------
    CrawlSummary

    Raises
    ------
    ApiUnavailable
        Retries exhausted; what was collected is written and a rerun resumes.
    """
    started = time.perf_counter()
    queries = artist_queries(artists)
    since = since_date(since)
    base = resolve_api_base(api_base)
    popularity = read_popularity_file(popularity_file) if popularity_file else None
    audio_file = read_audio_features_file(audio_features_file) if audio_features_file else None
    if keep_audio is not None and not audio:
        raise InputError("--keep-audio keeps the previews --audio downloads: add --audio")
    keep = check_keep_audio(keep_audio, out)
    notify = notify or (lambda message: None)
    session = CrawlSession(out, refresh)
    log = session.log
    previews: PreviewCollector | None = None
    try:
        session.check_same_crawl({"source": "deezer", "market": "", "since": since or ""})
        check_audio_features_file(audio_file, audio or any(o["status"] == "analysed"
                                                           for o in session.store.preview_outcomes().values()))
        api = DeezerApi(base, policy=policy, sleep=sleep, clock=clock, on_event=log, quota=quota)
        session.attach(api.runner)
        crawler = _Crawler(api, session, since, notify)
        if audio:
            previews = PreviewCollector(session, crawler.fresh_preview_link, keep_audio=keep,
                                        analyser=AnalysisQueue(analysis_workers),
                                        downloader=PreviewDownloader(policy, sleep, log))
            crawler.previews = previews
            analysed = session.store.db.execute("SELECT COUNT(*) FROM preview WHERE status = 'analysed'")
            base_analysed = analysed.fetchone()[0]
            session.progress_note = lambda: f"{base_analysed + previews.analysed_now:,} previews analysed"
        log({"event": "start", "source": "deezer", "artists": len(queries), "since": since, "refresh": refresh,
             "api_base": base, "resumed": session.store.count("resolution") > 0, "audio": audio,
             "analysis_workers": previews.analyser.jobs if previews else None})

        def export(ids: Sequence[str]) -> ExportedTables:
            outcomes = session.store.preview_outcomes()
            return export_tables(session, ids, "deezer", _deezer_popularity, popularity, audio_file,
                                 measured=(lambda tables: apply_previews(tables, outcomes)) if outcomes else None)

        def finish(complete: bool) -> CrawlSummary:
            notes = [POPULARITY_NOTE]
            if previews is not None:
                previews.finish()  # what is in flight is analysed and committed before the tables are written
            with session.store.transaction():
                session.checkpoint_stats()
            exported = export(crawler.resolved)
            report = None
            if previews is not None:
                report = previews.report([row["track_id"] for row in exported.tables["track.csv"]])
                notes.append(report.describe() + ". " + PREVIEWS_NOTE)
                log({"event": "previews", **report.to_dict()})
            summary = summarize(
                session, exported, source="deezer", access_level="public", market="", since=since, queries=queries,
                resolved=crawler.resolved, popularity="deezer_rank",
                audio_features="measured from previews" if audio else "not offered (bpm and gain only)",
                complete=complete, started=started, notes=notes, previews=report.to_dict() if report else None)
            session.write_summary(summary, exported, api_base=base, popularity_transform=POPULARITY_NOTE,
                                  kept_audio=str(keep) if keep is not None else None)
            return summary

        return crawler.crawl(queries, export=export, finish=finish, progress=progress)
    finally:
        if previews is not None:  # after finish() nothing is in flight; after an error, downloads are dropped
            previews.close(wait=False)
        session.close()
