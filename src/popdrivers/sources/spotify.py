"""Spotify Web API collector: from a list of artist names (or ids) to the relational crawl layout.

:func:`collect` resolves each artist, then fetches its details, its albums and singles (every page), each
album's tracks (every page), the full track objects (popularity, explicit) 50 at a time and the audio features
100 at a time. It writes into ``out``:

- ``track.csv``, ``audio.csv``, ``album.csv``, ``artist.csv``: the layout of the ``catalog-2022`` dataset
  (what :func:`popdrivers.read_tracks` reads), rewritten atomically after artists and at the end;
- ``crawl.json``: when, for which market, how many artists/tracks, whether audio features were available;
- ``crawl_log.jsonl``: one JSON line per event (resolved, ambiguous, not found, retry, skipped reply, 403);
- ``crawl.sqlite``: the checkpoints that let a killed crawl resume (see :mod:`.spotify_store`).

Every step is checkpointed, so rerunning the same command after a crash continues where it stopped; a step
skipped because of a malformed reply is tried again on the next run. ``refresh=True`` starts over.
"""

from __future__ import annotations

import json
import os
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from popdrivers.artifacts import utc_now, write_json_atomic
from popdrivers.errors import CredentialsError, PopdriversError
from popdrivers.progress import ProgressCallback
from popdrivers.sources.spotify_client import (
    ApiError,
    ApiUnavailable,
    Credentials,
    MalformedReply,
    RetryPolicy,
    SpotifyApi,
    load_credentials,
    resolve_endpoints,
)
from popdrivers.sources.spotify_store import (
    AUDIO_FEATURE_COLUMNS,
    INTEGER_FEATURES,
    STORE_NAME,
    CrawlStore,
    write_tables,
)

__all__ = ["CrawlSummary", "collect", "parse_artist_ref", "read_artist_list", "AUDIO_FORBIDDEN_MESSAGE"]

LOG_NAME = "crawl_log.jsonl"
SUMMARY_NAME = "crawl.json"
PAGE = 50  # the most Spotify returns per page of search results, albums and album tracks
TRACK_BATCH = 50  # /tracks?ids= accepts at most 50 ids
AUDIO_BATCH = 100  # /audio-features?ids= accepts at most 100 ids
SEARCH_MAX_OFFSET = 1000  # Spotify refuses search offsets beyond this
REWRITE_EVERY_SECONDS = 20.0  # rewrite the CSVs after an artist at most this often (they grow with the crawl)
AUDIO_FORBIDDEN_MESSAGE = (
    "Spotify answered 403 Forbidden to audio-features: applications created after 27 Nov 2024 are not "
    "allowed to read audio features. Stopped asking; everything else is still collected (audio.csv keeps the "
    "durations, its audio-feature cells are empty). Merge audio features from a dataset file with "
    "--audio-features FILE (joined on track id).")

_BASE62 = r"[0-9A-Za-z]{22}"
_ARTIST_URI = re.compile(rf"^spotify:artist:({_BASE62})$")
_ARTIST_URL = re.compile(rf"^https?://open\.spotify\.com/(?:intl-[\w-]+/)?artist/({_BASE62})(?:[/?#].*)?$")
_BARE_ID = re.compile(rf"^{_BASE62}$")


def parse_artist_ref(line: str) -> tuple[str, str | None]:
    """Classify one line of the artists file.

    Returns
    -------
    (kind, artist_id)
        ``("uri", id)``, ``("url", id)``, ``("id", id)`` (22 base62 characters; could also be a name, so a
        failed lookup falls back to a name search), ``("invalid", None)`` for another Spotify link, or
        ``("name", None)``.
    """
    text = line.strip()
    if m := _ARTIST_URI.match(text):
        return "uri", m[1]
    if m := _ARTIST_URL.match(text):
        return "url", m[1]
    if _BARE_ID.match(text):
        return "id", text
    if text.startswith(("spotify:", "http://", "https://")):
        return "invalid", None
    return "name", None


def read_artist_list(path: str | os.PathLike[str]) -> list[str]:
    """Artist names/ids/links of a text file, one per line; blank lines and ``#`` comments are ignored."""
    path = Path(path)
    lines = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    queries = list(dict.fromkeys(line for line in lines if line and not line.startswith("#")))
    if not queries:
        raise ValueError(f"{path} lists no artists: write one artist name, Spotify artist id or link per line")
    return queries


def _normal_name(name: Any) -> str:
    return " ".join(unicodedata.normalize("NFKC", str(name)).casefold().split())


def _since(value: str | date | None) -> str | None:
    """Normalise ``--since`` to YYYY-MM-DD (a bare year means 1 January)."""
    if value is None or value == "":
        return None
    text = value.isoformat() if isinstance(value, date) else str(value).strip()
    try:
        return date.fromisoformat(_padded(text)).isoformat()
    except ValueError:
        raise ValueError(f"--since '{value}' is not a date: use YYYY-MM-DD (or YYYY)") from None


def _padded(release: str) -> str:
    # Year-only and year-month release dates count from their first day.
    return {4: release + "-01-01", 7: release + "-01"}.get(len(release), release)


@dataclass(frozen=True)
class CrawlSummary:
    """What one :func:`collect` run produced (also written to ``crawl.json``)."""

    out: str
    market: str
    since: str | None
    artists_requested: int
    artists_resolved: int
    artists_ambiguous: tuple[str, ...]
    artists_not_found: tuple[str, ...]
    albums: int
    tracks: int
    tracks_with_audio_features: int
    audio_features_from_file: int
    audio_features: str  # "available" | "forbidden"
    requests: int
    retries: int
    rate_limit_waits: int
    skipped_replies: int
    complete: bool
    elapsed_seconds: float
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("artists_ambiguous", "artists_not_found", "notes"):
            data[key] = list(data[key])
        return data


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


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if float(value).is_integer() else None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _image(obj: Mapping[str, Any]) -> str | None:
    images = obj.get("images")
    if isinstance(images, list) and images and isinstance(images[0], dict):
        return _text(images[0].get("url"))
    return None


def _homepage(obj: Mapping[str, Any], kind: str, item_id: str) -> str:
    urls = obj.get("external_urls")
    url = urls.get("spotify") if isinstance(urls, dict) else None
    return url if isinstance(url, str) and url else f"https://open.spotify.com/{kind}/{item_id}"


def _asked_id(item: Mapping[str, Any]) -> Any:
    linked = item.get("linked_from")
    return (linked.get("id") if isinstance(linked, dict) else None) or item.get("id")


def _paging(reply: Any, key: str | None = None) -> tuple[list[Any], str | None, int | None]:
    """``(items, next, total)`` of a paging object; MalformedReply when it is not one."""
    page = reply.get(key) if key and isinstance(reply, dict) else reply
    if not isinstance(page, dict) or not isinstance(page.get("items"), list):
        raise MalformedReply(f"reply has no {key + '.' if key else ''}items list")
    return page["items"], page.get("next"), _int(page.get("total"))


class _Crawler:
    """One run of :func:`collect` (state shared by the steps)."""

    def __init__(self, api: SpotifyApi, store: CrawlStore, log: CrawlLog, market: str, since: str | None,
                 notify: Callable[[str], None]):
        self.api, self.store, self.log, self.market, self.since, self.notify = api, store, log, market, since, notify
        self.skipped = 0
        # Items skipped in this run are not asked for again until the next run.
        self.skip_tracks: set[str] = set()
        self.audio_forbidden = store.get_meta("audio_features") == "forbidden"

    def skip(self, what: str, reason: str, **ids: Any) -> None:
        self.skipped += 1
        self.log({"event": "skipped", "what": what, "reason": reason, **ids})

    def checkpoint_stats(self) -> None:
        """Persist the request counters with each checkpoint (a killed run still counts its requests)."""
        for key in ("requests", "retries", "rate_limit_waits"):
            base = int(self.store.get_meta(f"base_{key}", "0") or 0)
            self.store.set_meta(key, base + getattr(self.api.stats, key))

    # ----- resolving a line of the artists file
    def resolve(self, query: str) -> str | None:
        cached = self.store.resolution(query)
        if cached is not None:
            if cached[0] != "resolved":  # decided in an earlier run: say it again, do not search again
                self._tell(cached[0], query, cached[2])
            return cached[1] if cached[0] == "resolved" else None
        kind, artist_id = parse_artist_ref(query)
        status, detail = "not_found", None
        try:
            if kind == "invalid":
                status, detail = "not_found", "not a Spotify artist id, artist link or artist URI"
            elif artist_id is not None:
                try:
                    reply = self.api.call(f"artist {artist_id}", self.api.sp.artist, artist_id)
                    artist = self._parse_artist(reply)
                    with self.store.transaction():
                        self.store.put_artist(artist)
                        self.checkpoint_stats()
                    status, artist_id = "resolved", artist["artist_id"]
                except ApiError as exc:
                    if kind != "id" or exc.status not in (400, 404):
                        raise
                    artist_id = None  # 22 letters that are not an id: treat the line as a name
            if status != "resolved" and kind in ("name", "id"):
                status, artist_id, detail = self._search(query)
        except MalformedReply as exc:
            self.skip("resolve", str(exc), query=query)
            return None  # not cached: the next run tries again
        except ApiError as exc:
            status, artist_id, detail = "not_found", None, str(exc)
        with self.store.transaction():
            self.store.set_resolution(query, status, artist_id, detail)
            self.checkpoint_stats()
        self.log({"event": status, "query": query, "artist_id": artist_id, "detail": detail})
        self._tell(status, query, detail)
        return artist_id if status == "resolved" else None

    def _tell(self, status: str, query: str, detail: str | None) -> None:
        if status in ("ambiguous", "not_found"):
            verdict = "is ambiguous" if status == "ambiguous" else "was not found"
            self.notify(f"artist '{query}' {verdict}" + (f": {detail}" if detail else ""))

    def _search(self, query: str) -> tuple[str, str | None, str | None]:
        """Page through artist search results until the exact name (case-insensitive) shows up.

        Results are ordered by relevance, so all exact matches sit together: once found, paging continues only
        while pages still hold exact matches. Two or more different artists with the name: ambiguous.
        """
        target = _normal_name(query)
        matches: dict[str, str] = {}
        offset = seen = 0
        while offset < SEARCH_MAX_OFFSET:
            reply = self.api.call(f"search '{query}' offset {offset}", self.api.sp.search, q=query, type="artist",
                                  limit=PAGE, offset=offset, market=self.market)
            items, next_url, _ = _paging(reply, "artists")
            hits = {a["id"]: a.get("name") for a in items
                    if isinstance(a, dict) and _text(a.get("id")) and _normal_name(a.get("name", "")) == target}
            if matches and not hits:
                break
            matches.update(hits)
            seen += len(items)
            if not next_url or not items:
                break
            offset += len(items)
        if not matches:
            return "not_found", None, f"no artist named exactly '{query}' among {seen} search results"
        if len(matches) > 1:
            ids = ", ".join(matches)
            return "ambiguous", None, (f"{len(matches)} artists are named '{query}' ({ids}): none was picked; put "
                                       "the id (or open.spotify.com link) of the one you mean in the artists file")
        return "resolved", next(iter(matches)), None

    # ----- one artist
    def crawl_artist(self, artist_id: str) -> None:
        state = self.store.artist_state(artist_id)
        try:
            if state is None:
                artist = self._parse_artist(self.api.call(f"artist {artist_id}", self.api.sp.artist, artist_id))
                with self.store.transaction():
                    self.store.put_artist(artist)
                    self.checkpoint_stats()
                state = (0, 0)
            if not state[0]:
                self._list_albums(artist_id)
        except MalformedReply as exc:
            self.skip("artist", str(exc), artist_id=artist_id)
            return
        except ApiError as exc:
            self.skip("artist", str(exc), artist_id=artist_id)
            return
        for album_id in self.store.albums_to_list(artist_id):
            self._list_album_tracks(album_id, artist_id)
        self._fetch_tracks(artist_id)
        if not self.audio_forbidden:
            self._fetch_audio(artist_id)
        with self.store.transaction():
            self.store.mark_artist_done(artist_id)
            self.checkpoint_stats()
        self.log({"event": "artist_done", "artist_id": artist_id})

    def _parse_artist(self, reply: Any) -> dict[str, Any]:
        if not isinstance(reply, dict) or not _text(reply.get("id")) or not _text(reply.get("name")):
            raise MalformedReply("artist reply lacks id or name")
        genres = reply.get("genres")
        followers = reply.get("followers")
        return {"artist_id": reply["id"], "name": reply["name"],
                "genres": [g for g in genres if isinstance(g, str)] if isinstance(genres, list) else [],
                "popularity": _int(reply.get("popularity")),
                "followers": _int(followers.get("total")) if isinstance(followers, dict) else None,
                "image": _image(reply), "homepage": _homepage(reply, "artist", reply["id"])}

    def _paged_items(self, what: str, fn: Callable[..., Any], *args: Any, skip_kind: str,
                     skip_errors: tuple[type[Exception], ...], context: Mapping[str, Any],
                     **kwargs: Any) -> tuple[list[Any], bool]:
        """Every item of a paged listing, and whether every page arrived (a bad page is skipped and logged)."""
        collected: list[Any] = []
        complete, offset, total = True, 0, None
        while True:
            try:
                reply = self.api.call(f"{what} offset {offset}", fn, *args, limit=PAGE, offset=offset, **kwargs)
                items, next_url, total = _paging(reply)
            except skip_errors as exc:
                self.skip(skip_kind, str(exc), **context, offset=offset)
                complete = False
                if total is None or offset + PAGE >= total:
                    break
                offset += PAGE
                continue
            collected.extend(items)
            if not next_url or not items:
                break
            offset += len(items)
        return collected, complete

    def _list_albums(self, artist_id: str) -> None:
        items, complete = self._paged_items(
            f"albums of {artist_id}", self.api.sp.artist_albums, artist_id, include_groups="album,single",
            country=self.market, skip_kind="album page", skip_errors=(MalformedReply,),
            context={"artist_id": artist_id})
        albums: dict[str, dict[str, Any]] = {}
        for item in items:
            album = self._parse_album(item, artist_id)
            if album is not None:
                albums.setdefault(album["album_id"], album)
        with self.store.transaction():
            self.store.put_albums(artist_id, list(albums.values()), complete)
            self.checkpoint_stats()

    def _parse_album(self, item: Any, artist_id: str) -> dict[str, Any] | None:
        if not isinstance(item, dict) or not _text(item.get("id")):
            self.skip("album", "album entry lacks an id", artist_id=artist_id)
            return None
        # Spotify tags each entry with the group it was listed under; keep only the artist's own releases.
        if item.get("album_group", "album") not in ("album", "single"):
            return None
        release = _text(item.get("release_date"))
        if release is None:
            self.skip("album", "album lacks release_date", album_id=item["id"])
            return None
        if self.since is not None and _padded(release) < self.since:
            return None
        artists = item.get("artists")
        lead = artists[0].get("id") if isinstance(artists, list) and artists and isinstance(artists[0], dict) else None
        return {"album_id": item["id"], "name": _text(item.get("name")), "release_date": release,
                "total_tracks": _int(item.get("total_tracks")), "artist_id": _text(lead) or artist_id,
                "image": _image(item), "homepage": _homepage(item, "album", item["id"])}

    def _list_album_tracks(self, album_id: str, artist_id: str) -> None:
        items, complete = self._paged_items(
            f"tracks of album {album_id}", self.api.sp.album_tracks, album_id, market=self.market,
            skip_kind="album tracks", skip_errors=(MalformedReply, ApiError), context={"album_id": album_id})
        stubs = [stub for stub in (self._parse_stub(item, album_id, artist_id) for item in items) if stub is not None]
        with self.store.transaction():
            self.store.put_album_tracks(album_id, stubs, complete)
            self.checkpoint_stats()

    def _parse_stub(self, item: Any, album_id: str, artist_id: str) -> dict[str, Any] | None:
        if not isinstance(item, dict) or not _text(item.get("id")):
            self.skip("track", "album track entry lacks an id", album_id=album_id)
            return None
        credited = [a.get("id") for a in item.get("artists") or [] if isinstance(a, dict)]
        # The crawled artist when credited (so its followers and genres join), else the track's lead artist.
        lead = artist_id if artist_id in credited or not credited else credited[0]
        return {"track_id": item["id"], "album_id": album_id, "disc_number": _int(item.get("disc_number")) or 1,
                "track_number": _int(item.get("track_number")), "artist_id": lead}

    def _fetch_tracks(self, artist_id: str) -> None:
        pending = [t for t in self.store.tracks_to_fetch(artist_id) if t not in self.skip_tracks]
        for start in range(0, len(pending), TRACK_BATCH):
            batch = pending[start:start + TRACK_BATCH]
            rows = []
            try:
                reply = self.api.call(f"{len(batch)} tracks from {batch[0]}", self.api.sp.tracks, batch,
                                      market=self.market)
                items = reply.get("tracks") if isinstance(reply, dict) else None
                if not isinstance(items, list):
                    raise MalformedReply("reply has no tracks list")
            except (MalformedReply, ApiError) as exc:
                self.skip("tracks", str(exc), track_ids=batch)
                self.skip_tracks.update(batch)
                continue
            # With a market, Spotify may relink a track to another id; linked_from holds the id we asked for.
            by_id = {_asked_id(item): item for item in items if isinstance(item, dict)}
            for track_id in batch:
                row, reason = self._parse_track(by_id.get(track_id), track_id)
                if row is None:
                    self.skip("track", reason, track_id=track_id)
                    self.skip_tracks.add(track_id)
                else:
                    rows.append(row)
            with self.store.transaction():
                self.store.put_tracks(rows)
                self.checkpoint_stats()

    @staticmethod
    def _parse_track(item: Any, track_id: str) -> tuple[dict[str, Any] | None, str]:
        if item is None:
            return None, "Spotify returned no track object for this id (not available)"
        missing = [k for k, ok in (("popularity", _int(item.get("popularity")) is not None),
                                   ("explicit", isinstance(item.get("explicit"), bool)),
                                   ("duration_ms", _int(item.get("duration_ms")) is not None)) if not ok]
        if missing:
            return None, f"track object lacks {', '.join(missing)}"
        return {"track_id": track_id, "name": _text(item.get("name")), "popularity": _int(item["popularity"]),
                "explicit": int(item["explicit"]), "duration_ms": _int(item["duration_ms"]),
                "homepage": _homepage(item, "track", track_id)}, ""

    def _fetch_audio(self, artist_id: str) -> None:
        pending = [t for t in self.store.audio_to_fetch(artist_id) if t not in self.skip_tracks]
        for start in range(0, len(pending), AUDIO_BATCH):
            batch = pending[start:start + AUDIO_BATCH]
            try:
                reply = self.api.call(f"audio features of {len(batch)} tracks from {batch[0]}",
                                      self.api.sp.audio_features, batch)
                if not isinstance(reply, list):
                    raise MalformedReply("reply has no audio_features list")
            except ApiError as exc:
                if exc.status == 403:
                    self._forbid_audio()
                    return
                self.skip("audio features", str(exc), track_ids=batch)
                self.skip_tracks.update(batch)
                continue
            except MalformedReply as exc:
                self.skip("audio features", str(exc), track_ids=batch)
                self.skip_tracks.update(batch)
                continue
            rows = []
            for position, track_id in enumerate(batch):
                entry = reply[position] if position < len(reply) else None
                if isinstance(entry, dict) and entry.get("id") not in (None, track_id):
                    entry = next((e for e in reply if isinstance(e, dict) and e.get("id") == track_id), None)
                rows.append(self._parse_audio(entry, track_id))
            with self.store.transaction():
                self.store.put_audio(rows)
                self.checkpoint_stats()

    def _parse_audio(self, entry: Any, track_id: str) -> dict[str, Any]:
        if not isinstance(entry, dict):  # Spotify has no features for this track: remember, do not ask again
            return {"track_id": track_id, "available": 0}
        row: dict[str, Any] = {"track_id": track_id, "available": 1}
        missing = []
        for name in AUDIO_FEATURE_COLUMNS:
            value = _int(entry.get(name)) if name in INTEGER_FEATURES else _num(entry.get(name))
            if value is None:
                missing.append(name)
            row[name] = value
        if missing:
            self.skip("audio feature values", f"audio features lack {', '.join(missing)} (left empty)",
                      track_id=track_id)
        return row

    def _forbid_audio(self) -> None:
        self.audio_forbidden = True
        with self.store.transaction():
            self.store.set_meta("audio_features", "forbidden")
            self.checkpoint_stats()
        self.log({"event": "audio_features_forbidden", "status": 403, "message": AUDIO_FORBIDDEN_MESSAGE})
        self.notify(AUDIO_FORBIDDEN_MESSAGE)


def _read_audio_file(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Audio features of a dataset file (any format ``read_tracks`` reads), keyed by track id."""
    import math

    from popdrivers.sources.files import read_tracks

    df = read_tracks(path, require_popularity=False)  # only the audio features are used
    present = [c for c in AUDIO_FEATURE_COLUMNS if c in df.columns]
    if "track_id" not in df.columns or not present:
        raise PopdriversError(f"--audio-features {path}: the file has no track ids or no audio features to merge")
    out: dict[str, dict[str, Any]] = {}
    for record in df[["track_id", *present]].drop_duplicates("track_id").to_dict("records"):
        values: dict[str, Any] = {}
        for name in present:
            value = record[name]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            try:
                values[name] = int(value) if name in INTEGER_FEATURES else float(value)
            except (TypeError, ValueError):
                continue
        if values:
            out[str(record["track_id"])] = values
    return out


def collect(
    artists: str | os.PathLike[str] | Sequence[str],
    out: str | os.PathLike[str],
    *,
    market: str = "US",
    since: str | date | None = None,
    audio_features_file: str | os.PathLike[str] | None = None,
    refresh: bool = False,
    credentials: Credentials | None = None,
    api_base: str | None = None,
    token_url: str | None = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: ProgressCallback | None = None,
    notify: Callable[[str], None] | None = None,
) -> CrawlSummary:
    """Crawl artists from the Spotify Web API into the relational layout in ``out`` (resumable).

    Parameters
    ----------
    artists : path-like or sequence of str
        A text file with one artist name, Spotify artist id, ``open.spotify.com/artist/...`` link or
        ``spotify:artist:...`` URI per line, or those strings directly.
    out : path-like
        Output folder; created if missing. Holding a previous crawl, it is resumed.
    market : str
        ISO country code the catalogue is read for (availability, popularity).
    since : str or date, optional
        Keep only releases on or after this date (YYYY-MM-DD; a year-only release counts as 1 January).
    audio_features_file : path-like, optional
        A dataset file in any format :func:`popdrivers.read_tracks` reads; its audio features fill the ones
        the API did not give (e.g. after a 403), joined on track id.
    refresh : bool
        Forget the checkpoints in ``out`` and fetch everything again.
    credentials : Credentials, optional
        Default: :func:`~popdrivers.sources.spotify_client.load_credentials` (environment, then ``./.env``).
    api_base, token_url : str, optional
        Default: ``POPDRIVERS_SPOTIFY_API_BASE`` / ``POPDRIVERS_SPOTIFY_TOKEN_URL``, else Spotify's own.
    policy : RetryPolicy, optional
        Retry limits, backoff and timeouts.
    sleep : callable
        Used for every wait (injectable for tests).
    progress : ProgressCallback, optional
        Called with (artists done, artists total, "tracks · requests · retries").
    notify : callable, optional
        Receives plain-language notices (403 on audio features, ambiguous or missing artists).

    Returns
    -------
    CrawlSummary

    Raises
    ------
    CredentialsError
        Credentials missing or rejected by the token endpoint.
    ApiUnavailable
        Retries exhausted (rate limited too long, server down); what was collected is written and a rerun
        of the same command resumes.
    """
    started = time.perf_counter()
    queries = list(artists) if not isinstance(artists, str | os.PathLike) else read_artist_list(artists)
    if not queries:
        raise ValueError("no artists to collect")
    market = market.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", market):
        raise ValueError(f"--market '{market}' is not a two-letter country code (e.g. US, GB, DE)")
    since = _since(since)
    base, token = resolve_endpoints(api_base, token_url)
    credentials = credentials or load_credentials()
    extra_audio = _read_audio_file(audio_features_file) if audio_features_file else {}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if refresh:
        for suffix in ("", "-journal", "-wal", "-shm"):
            (out / (STORE_NAME + suffix)).unlink(missing_ok=True)
    store = CrawlStore(out / STORE_NAME)
    log = CrawlLog(out / LOG_NAME)
    notify = notify or (lambda message: None)
    try:
        _check_same_crawl(store, out, market, since)
        api = SpotifyApi(credentials, api_base=base, token_url=token, policy=policy, sleep=sleep, on_event=log)
        crawler = _Crawler(api, store, log, market, since, notify)
        with store.transaction():
            for key in ("requests", "retries", "rate_limit_waits"):
                store.set_meta(f"base_{key}", store.get_meta(key, "0"))
        log({"event": "start", "artists": len(queries), "market": market, "since": since, "refresh": refresh,
             "api_base": base, "resumed": store.count("resolution") > 0})
        complete = False
        resolved: list[str] = []
        last_write = time.monotonic()

        position = {"done": 0, "shown": 0.0}

        def report(force: bool = False) -> None:
            # Called per request too; refreshing at most every 0.2 s keeps COUNT(*) off the hot path.
            if progress is None or (not force and time.monotonic() - position["shown"] < 0.2):
                return
            position["shown"] = time.monotonic()
            stats = api.stats
            progress(position["done"], len(queries), f"{store.count('track'):,} tracks · {stats.requests:,} "
                                                     f"requests · {stats.retries:,} retries")

        api.on_request = report
        try:
            report(force=True)
            for done, query in enumerate(queries, start=1):
                artist_id = crawler.resolve(query)
                if artist_id is not None:
                    resolved.append(artist_id)
                    crawler.crawl_artist(artist_id)
                position["done"] = done
                report(force=True)
                if time.monotonic() - last_write > REWRITE_EVERY_SECONDS:
                    _write_outputs(store, out, resolved, extra_audio)
                    last_write = time.monotonic()
            complete = True
        except ApiUnavailable as exc:
            log({"event": "stopped", "reason": str(exc)})
            _finish(store, out, queries, resolved, extra_audio, crawler, api, market, since, started, False, base)
            raise ApiUnavailable(f"{exc}. What was collected is written to {out}; rerun the same command later to "
                                 "resume where it stopped") from None
        except CredentialsError as exc:
            log({"event": "credentials_rejected", "reason": str(exc)})
            raise
        summary = _finish(store, out, queries, resolved, extra_audio, crawler, api, market, since, started,
                          complete, base)
        log({"event": "finished", "tracks": summary.tracks, "requests": summary.requests,
             "retries": summary.retries, "skipped": summary.skipped_replies})
        return summary
    finally:
        store.close()
        log.close()


def _check_same_crawl(store: CrawlStore, out: Path, market: str, since: str | None) -> None:
    """A folder holds one crawl: refuse to mix markets or date limits (the user must choose --refresh)."""
    stored = {"market": store.get_meta("market"), "since": store.get_meta("since")}
    wanted = {"market": market, "since": since or ""}
    if stored["market"] is None:
        with store.transaction():
            for key, value in wanted.items():
                store.set_meta(key, value)
        return
    for key, value in wanted.items():
        if (stored[key] or "") != value:
            raise PopdriversError(f"{out} holds a crawl with --{key} {stored[key] or '(none)'}, not {value or '(none)'}"
                                  f": rerun with the same --{key} to resume it, add --refresh to start over, or "
                                  "choose another --out folder")


def _write_outputs(store: CrawlStore, out: Path, artist_ids: Iterable[str],
                   extra_audio: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    tables = store.tables(list(artist_ids), extra_audio)
    write_tables(out, tables)
    return tables


def _finish(store: CrawlStore, out: Path, queries: Sequence[str], resolved: Sequence[str],
            extra_audio: Mapping[str, Mapping[str, Any]], crawler: _Crawler, api: SpotifyApi, market: str,
            since: str | None, started: float, complete: bool, api_base: str) -> CrawlSummary:
    with store.transaction():
        crawler.checkpoint_stats()
    tables = _write_outputs(store, out, resolved, extra_audio)
    statuses = {q: store.resolution(q) for q in queries}
    ambiguous = tuple(q for q, r in statuses.items() if r and r[0] == "ambiguous")
    not_found = tuple(q for q, r in statuses.items() if r and r[0] == "not_found")
    with_audio = sum(1 for row in tables["audio.csv"] if any(v is not None for v in row[2:]))
    notes = []
    if crawler.audio_forbidden:
        notes.append(AUDIO_FORBIDDEN_MESSAGE)
    if tables["_from_file"]:
        notes.append(f"audio features of {tables['_from_file']:,} tracks merged from the --audio-features file")
    summary = CrawlSummary(
        out=str(out), market=market, since=since, artists_requested=len(queries),
        artists_resolved=len(dict.fromkeys(resolved)), artists_ambiguous=ambiguous, artists_not_found=not_found,
        albums=len(tables["album.csv"]), tracks=len(tables["track.csv"]), tracks_with_audio_features=with_audio,
        audio_features_from_file=tables["_from_file"],
        audio_features="forbidden" if crawler.audio_forbidden else "available",
        requests=int(store.get_meta("requests", "0") or 0), retries=int(store.get_meta("retries", "0") or 0),
        rate_limit_waits=int(store.get_meta("rate_limit_waits", "0") or 0), skipped_replies=crawler.skipped,
        complete=complete, elapsed_seconds=round(time.perf_counter() - started, 3), notes=tuple(notes))
    write_json_atomic(out / SUMMARY_NAME, {"collected_at": utc_now(), **summary.to_dict(), "api_base": api_base,
                                           "files": ["track.csv", "audio.csv", "album.csv", "artist.csv"],
                                           "log": LOG_NAME})
    return summary
