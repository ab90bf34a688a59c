"""Spotify Web API collector: from a list of artist names (or ids) to the relational crawl layout.

:func:`collect` resolves each artist, then fetches its details, its albums and singles (every page), each
album's tracks (every page), the full track objects (popularity, explicit, ISRC) and the audio features. It
writes into ``out``:

- ``track.csv``, ``audio.csv``, ``album.csv``, ``artist.csv``: the layout of the ``catalog-2022`` dataset plus
  release-structure and provenance columns (what :func:`popdrivers.read_tracks` reads), rewritten atomically
  after artists and at the end;
- ``crawl.json``: when, for which market, the access level, where popularity came from, counts;
- ``crawl_log.jsonl``: one JSON line per event (resolved, ambiguous, not found, retry, skipped reply, 403);
- ``crawl.sqlite``: the checkpoints that let a killed crawl resume (see :mod:`.crawl_store`).

**Access levels (2026).** Since 11 Feb 2026 (new apps) and 9 Mar 2026 (existing ones) a Development Mode app
gets no ``popularity`` on tracks, albums and artists and no artist ``followers``; Spotify refuses its batch
requests (``GET /tracks?ids=``) and search pages of more than 10 results; audio features answer 403 since
27 Nov 2024. The collector learns this from its first replies (fields absent, 403 on a batch, 400 "Invalid
limit"), says so once, and switches: one track per request, pages of 10. Extended Quota apps keep the batch
path (50 tracks per request, 100 audio features per request). A Development Mode crawl completes with empty
popularity, recorded in ``crawl.json``; ``--popularity FILE`` fills it.

Every step is checkpointed, so rerunning the same command after a crash continues where it stopped; a step
skipped because of a malformed reply is tried again on the next run. ``refresh=True`` starts over.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any

from popdrivers.errors import CredentialsError, InputError
from popdrivers.progress import ProgressCallback
from popdrivers.sources.api_calls import ApiError, MalformedReply, RetryPolicy, as_float, as_int, as_text
from popdrivers.sources.crawl import (
    ArtistCrawler,
    CrawlSession,
    CrawlSummary,
    ExportedTables,
    artist_queries,
    export_tables,
    padded_release,
    read_artist_list,
    since_date,
    summarize,
)
from popdrivers.sources.crawl_merge import read_audio_features_file, read_popularity_file
from popdrivers.sources.crawl_store import AUDIO_FEATURE_COLUMNS, INTEGER_FEATURES
from popdrivers.sources.reccobeats import FEATURES_SOURCE as RECCOBEATS
from popdrivers.sources.reccobeats import LookupStep, ReccoBeatsApi
from popdrivers.sources.reccobeats import resolve_api_base as resolve_reccobeats_base
from popdrivers.sources.spotify_client import Credentials, SpotifyApi, load_credentials, resolve_endpoints

__all__ = ["AUDIO_FORBIDDEN_MESSAGE", "DEVELOPMENT_MODE_MESSAGE", "CrawlSummary", "collect", "parse_artist_ref",
           "read_artist_list"]

PAGE = 50  # the most an Extended Quota app gets per page of search results, albums and album tracks
DEV_PAGE = 10  # the most a Development Mode app may ask for (search: since Feb 2026)
TRACK_BATCH = 50  # /tracks?ids= accepts at most 50 ids
AUDIO_BATCH = 100  # /audio-features?ids= accepts at most 100 ids
SEARCH_MAX_OFFSET = 1000  # Spotify refuses search offsets beyond this
AUDIO_FORBIDDEN_MESSAGE = (
    "Spotify answered 403 Forbidden to audio-features: applications created after 27 Nov 2024 are not "
    "allowed to read audio features. Stopped asking; everything else is still collected (audio.csv keeps the "
    "durations, its audio-feature cells are empty). Merge audio features from a dataset file with "
    "--audio-features FILE (joined on track id, ISRC, or artist + title), or look them up in ReccoBeats with "
    "--audio-features reccobeats.")
DEVELOPMENT_MODE_MESSAGE = (
    "Spotify Development Mode: this app gets no popularity (tracks, albums, artists) and no artist followers, "
    "and Spotify refuses its batch requests (several tracks at once) and search pages of more than 10 results. "
    "Spotify changed this for every Development Mode app on 11 Feb 2026 (new apps) and 9 Mar 2026 (existing "
    "apps). Still collected: release dates, album type and size, track and disc numbers, explicit flags, "
    "durations, credited artists, ISRCs and artist genres, one track per request. Popularity stays empty: the "
    "folder is usable for prediction, not for train or drivers. Options: an Extended Quota app (for registered "
    "companies with a large audience), --popularity FILE (a dataset or a CSV track_id,popularity or "
    "isrc,popularity; rerunning with it makes no new requests), or --source deezer (open, no credentials).")
BATCH_REFUSED_EVENT = "batch_refused"

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


def _image(obj: Mapping[str, Any]) -> str | None:
    images = obj.get("images")
    if isinstance(images, list) and images and isinstance(images[0], dict):
        return as_text(images[0].get("url"))
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
    return page["items"], page.get("next"), as_int(page.get("total"))


def _refuses_limit(exc: ApiError) -> bool:
    return exc.status == 400 and "limit" in exc.message.lower()


class _Crawler(ArtistCrawler):
    """One run of :func:`collect` (state shared by the steps)."""

    def __init__(self, api: SpotifyApi, session: CrawlSession, market: str, since: str | None,
                 notify: Callable[[str], None]):
        super().__init__(session, notify)
        self.api, self.market, self.since = api, market, since
        self.audio_forbidden = self.store.get_meta("audio_features") == "forbidden"
        self.told_development = False
        if self.development_mode:
            self._tell_development()

    # ----- what this app may do, learnt from the first replies and kept in the store
    @property
    def fields_removed(self) -> bool:
        return self.store.get_meta("fields_removed") == "yes"

    @property
    def batch_refused(self) -> bool:
        return self.store.get_meta("batch_tracks") == "refused"

    @property
    def development_mode(self) -> bool:
        return self.fields_removed or self.batch_refused or self.store.get_meta("page_limited") is not None

    @property
    def access_level(self) -> str:
        if self.development_mode:
            return "development_mode"
        return "extended_quota" if self.store.get_meta("batch_tracks") == "ok" else "unknown"

    def _learn(self, key: str, value: str, event: Mapping[str, Any]) -> None:
        if self.store.get_meta(key) == value:
            return
        with self.store.transaction():
            self.store.set_meta(key, value)
            self.session.checkpoint_stats()
        self.log({"event": "access", key: value, **event})
        if self.development_mode:
            self._tell_development()

    def _tell_development(self) -> None:
        if not self.told_development:
            self.told_development = True
            self.log({"event": "development_mode", "message": DEVELOPMENT_MODE_MESSAGE})
            self.notify(DEVELOPMENT_MODE_MESSAGE)

    def page_size(self, endpoint: str) -> int:
        return int(self.store.get_meta(f"page_{endpoint}", str(PAGE)) or PAGE)

    def _paged_call(self, endpoint: str, what: str, fn: Callable[..., Any], *args: Any, offset: int,
                    **kwargs: Any) -> tuple[Any, int]:
        """One page; a 400 "Invalid limit" at 50 switches this endpoint to pages of 10 (remembered)."""
        limit = self.page_size(endpoint)
        try:
            return self.api.call(f"{what} offset {offset}", fn, *args, limit=limit, offset=offset, **kwargs), limit
        except ApiError as exc:
            if not (_refuses_limit(exc) and limit > DEV_PAGE):
                raise
            with self.store.transaction():
                self.store.set_meta(f"page_{endpoint}", DEV_PAGE)
            self._learn("page_limited", endpoint, {"status": 400, "limit": limit, "now": DEV_PAGE})
            return self.api.call(f"{what} offset {offset}", fn, *args, limit=DEV_PAGE, offset=offset,
                                 **kwargs), DEV_PAGE

    # ----- resolving a line of the artists file
    def finished_details(self, summary: CrawlSummary) -> dict[str, Any]:
        return {"access_level": summary.access_level, "popularity": summary.popularity}

    def decide(self, query: str) -> tuple[str, str | None, str | None]:
        kind, artist_id = parse_artist_ref(query)
        if kind == "invalid":
            return "not_found", None, "not a Spotify artist id, artist link or artist URI"
        if artist_id is not None:
            try:
                artist = self._parse_artist(self.api.call(f"artist {artist_id}", self.api.sp.artist, artist_id))
            except ApiError as exc:
                if kind != "id" or exc.status not in (400, 404):
                    raise
                # 22 letters that are not an id: treat the line as a name (below)
            else:
                with self.store.transaction():
                    self.store.put_artist(artist)
                    self.session.checkpoint_stats()
                return "resolved", artist["artist_id"], None
        if kind in ("name", "id"):
            return self._search(query)
        return "not_found", None, None

    def _search(self, query: str) -> tuple[str, str | None, str | None]:
        """Page through artist search results until the exact name (case-insensitive) shows up."""
        return self.exact_name_search(query, self._search_pages(query), lambda i: i,
                                      "the id (or open.spotify.com link) of the one you mean")

    def _search_pages(self, query: str) -> Iterator[list[tuple[str, str]]]:
        offset = 0
        while offset < SEARCH_MAX_OFFSET:
            reply, _ = self._paged_call("search", f"search '{query}'", self.api.sp.search, q=query, type="artist",
                                        offset=offset, market=self.market)
            items, next_url, _ = _paging(reply, "artists")
            yield [(a["id"], str(a.get("name", ""))) for a in items if isinstance(a, dict) and as_text(a.get("id"))]
            if not next_url or not items:
                return
            offset += len(items)

    # ----- one artist (the steps: ArtistCrawler.crawl_artist)
    def fetch_artist(self, artist_id: str) -> dict[str, Any]:
        return self._parse_artist(self.api.call(f"artist {artist_id}", self.api.sp.artist, artist_id))

    def after_tracks(self, artist_id: str) -> None:
        if not self.audio_forbidden:
            self._fetch_audio(artist_id)

    def _parse_artist(self, reply: Any) -> dict[str, Any]:
        if not isinstance(reply, dict) or not as_text(reply.get("id")) or not as_text(reply.get("name")):
            raise MalformedReply("artist reply lacks id or name")
        if "popularity" not in reply and "followers" not in reply:
            # Both gone from an artist object: Spotify's Development Mode (Feb 2026), not a partial reply.
            self._learn("fields_removed", "yes", {"what": "artist popularity and followers",
                                                  "artist_id": reply["id"]})
        genres = reply.get("genres")
        followers = reply.get("followers")
        return {"artist_id": reply["id"], "name": reply["name"],
                "genres": [g for g in genres if isinstance(g, str)] if isinstance(genres, list) else [],
                "popularity": as_int(reply.get("popularity")),
                "followers": as_int(followers.get("total")) if isinstance(followers, dict) else None,
                "image": _image(reply), "homepage": _homepage(reply, "artist", reply["id"])}

    def _paged_items(self, endpoint: str, what: str, fn: Callable[..., Any], *args: Any, skip_kind: str,
                     skip_errors: tuple[type[Exception], ...], context: Mapping[str, Any],
                     **kwargs: Any) -> tuple[list[Any], bool]:
        """Every item of a paged listing, and whether every page arrived (a bad page is skipped and logged)."""
        collected: list[Any] = []
        complete, offset, total = True, 0, None
        while True:
            limit = self.page_size(endpoint)
            try:
                reply, limit = self._paged_call(endpoint, what, fn, *args, offset=offset, **kwargs)
                items, next_url, total = _paging(reply)
            except skip_errors as exc:
                self.session.skip(skip_kind, str(exc), **context, offset=offset)
                complete = False
                if total is None or offset + limit >= total:
                    break
                offset += limit
                continue
            collected.extend(items)
            if not next_url or not items:
                break
            offset += len(items)
        return collected, complete

    def list_albums(self, artist_id: str) -> None:
        items, complete = self._paged_items(
            "albums", f"albums of {artist_id}", self.api.sp.artist_albums, artist_id, include_groups="album,single",
            country=self.market, skip_kind="album page", skip_errors=(MalformedReply,),
            context={"artist_id": artist_id})
        albums: dict[str, dict[str, Any]] = {}
        for item in items:
            album = self._parse_album(item, artist_id)
            if album is not None:
                albums.setdefault(album["album_id"], album)
        with self.store.transaction():
            self.store.put_albums(artist_id, list(albums.values()), complete)
            self.session.checkpoint_stats()

    def _parse_album(self, item: Any, artist_id: str) -> dict[str, Any] | None:
        if not isinstance(item, dict) or not as_text(item.get("id")):
            self.session.skip("album", "album entry lacks an id", artist_id=artist_id)
            return None
        # Spotify tags each entry with the group it was listed under (Development Mode apps no longer get the
        # tag; include_groups=album,single already keeps appearances out): keep only the artist's own releases.
        if item.get("album_group", "album") not in ("album", "single"):
            return None
        release = as_text(item.get("release_date"))
        if release is None:
            self.session.skip("album", "album lacks release_date", album_id=item["id"])
            return None
        if self.since is not None and padded_release(release) < self.since:
            return None
        artists = item.get("artists")
        lead = artists[0].get("id") if isinstance(artists, list) and artists and isinstance(artists[0], dict) else None
        album_type = as_text(item.get("album_type"))
        return {"album_id": item["id"], "name": as_text(item.get("name")), "release_date": release,
                "total_tracks": as_int(item.get("total_tracks")), "artist_id": as_text(lead) or artist_id,
                "image": _image(item), "homepage": _homepage(item, "album", item["id"]),
                "album_type": album_type.lower() if album_type else None}

    def list_album_tracks(self, album_id: str, artist_id: str) -> None:
        items, complete = self._paged_items(
            "album_tracks", f"tracks of album {album_id}", self.api.sp.album_tracks, album_id, market=self.market,
            skip_kind="album tracks", skip_errors=(MalformedReply, ApiError), context={"album_id": album_id})
        stubs = [stub for stub in (self._parse_stub(item, album_id, artist_id) for item in items) if stub is not None]
        with self.store.transaction():
            self.store.put_album_tracks(album_id, stubs, complete)
            self.session.checkpoint_stats()

    def _parse_stub(self, item: Any, album_id: str, artist_id: str) -> dict[str, Any] | None:
        if not isinstance(item, dict) or not as_text(item.get("id")):
            self.session.skip("track", "album track entry lacks an id", album_id=album_id)
            return None
        credited = [a for a in item.get("artists") or [] if isinstance(a, dict)]
        ids = [a.get("id") for a in credited]
        # The crawled artist when credited (so its followers and genres join), else the track's lead artist.
        lead = artist_id if artist_id in ids or not ids else ids[0]
        lead_name = next((as_text(a.get("name")) for a in credited if a.get("id") == lead), None)
        return {"track_id": item["id"], "album_id": album_id, "disc_number": as_int(item.get("disc_number")) or 1,
                "track_number": as_int(item.get("track_number")), "artist_id": lead, "artist_name": lead_name,
                "n_artists": len(credited) or None}

    def fetch_tracks(self, artist_id: str) -> None:
        pending = [t for t in self.store.tracks_to_fetch(artist_id) if t not in self.skip_tracks]
        start = 0
        while start < len(pending) and not self.batch_refused:
            batch = pending[start:start + TRACK_BATCH]
            try:
                reply = self.api.call(f"{len(batch)} tracks from {batch[0]}", self.api.sp.tracks, batch,
                                      market=self.market)
                items = reply.get("tracks") if isinstance(reply, dict) else None
                if not isinstance(items, list):
                    raise MalformedReply("reply has no tracks list")
            except ApiError as exc:
                if exc.status == 403:  # Development Mode (Feb 2026): several-tracks requests are refused
                    self._learn("batch_tracks", "refused", {"status": 403, "endpoint": "GET /tracks?ids="})
                    break
                self._skip_tracks("tracks", str(exc), batch)
                start += TRACK_BATCH
                continue
            except MalformedReply as exc:
                self._skip_tracks("tracks", str(exc), batch)
                start += TRACK_BATCH
                continue
            if self.store.get_meta("batch_tracks") != "ok":
                self._learn("batch_tracks", "ok", {"endpoint": "GET /tracks?ids="})
            # With a market, Spotify may relink a track to another id; linked_from holds the id we asked for.
            by_id = {_asked_id(item): item for item in items if isinstance(item, dict)}
            self._store_tracks([(track_id, by_id.get(track_id)) for track_id in batch])
            start += TRACK_BATCH
        for track_id in pending[start:]:  # one track per request (batch refused)
            try:
                item = self.api.call(f"track {track_id}", self.api.sp.track, track_id, market=self.market)
            except ApiError as exc:
                if exc.status != 404:
                    self._skip_tracks("track", str(exc), [track_id])
                    continue
                item = None
            except MalformedReply as exc:
                self._skip_tracks("track", str(exc), [track_id])
                continue
            self._store_tracks([(track_id, item)])

    def _skip_tracks(self, what: str, reason: str, track_ids: Sequence[str]) -> None:
        self.session.skip(what, reason, **({"track_ids": list(track_ids)} if len(track_ids) > 1
                                           else {"track_id": track_ids[0]}))
        self.skip_tracks.update(track_ids)

    def _store_tracks(self, replies: Sequence[tuple[str, Any]]) -> None:
        rows = []
        for track_id, item in replies:
            row, reason = self._parse_track(item, track_id)
            if row is None:
                self.session.skip("track", reason, track_id=track_id)
                self.skip_tracks.add(track_id)
            else:
                rows.append(row)
        with self.store.transaction():
            self.store.put_tracks(rows)
            self.session.checkpoint_stats()

    def _parse_track(self, item: Any, track_id: str) -> tuple[dict[str, Any] | None, str]:
        if not isinstance(item, dict):
            return None, "Spotify returned no track object for this id (not available)"
        required = [("explicit", isinstance(item.get("explicit"), bool)),
                    ("duration_ms", as_int(item.get("duration_ms")) is not None)]
        if not self.fields_removed:  # an Extended Quota reply without popularity is a partial reply
            required.insert(0, ("popularity", as_int(item.get("popularity")) is not None))
        missing = [name for name, ok in required if not ok]
        if missing:
            return None, f"track object lacks {', '.join(missing)}"
        external = item.get("external_ids")
        artists = item.get("artists")
        return {"track_id": track_id, "name": as_text(item.get("name")), "popularity": as_int(item.get("popularity")),
                "explicit": int(item["explicit"]), "duration_ms": as_int(item["duration_ms"]),
                "homepage": _homepage(item, "track", track_id),
                "isrc": as_text(external.get("isrc")) if isinstance(external, dict) else None,
                "n_artists": len(artists) if isinstance(artists, list) and artists else None}, ""

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
                self._skip_tracks("audio features", str(exc), batch)
                continue
            except MalformedReply as exc:
                self._skip_tracks("audio features", str(exc), batch)
                continue
            rows = []
            for position, track_id in enumerate(batch):
                entry = reply[position] if position < len(reply) else None
                if isinstance(entry, dict) and entry.get("id") not in (None, track_id):
                    entry = next((e for e in reply if isinstance(e, dict) and e.get("id") == track_id), None)
                rows.append(self._parse_audio(entry, track_id))
            with self.store.transaction():
                self.store.put_audio(rows)
                self.session.checkpoint_stats()

    def _parse_audio(self, entry: Any, track_id: str) -> dict[str, Any]:
        if not isinstance(entry, dict):  # Spotify has no features for this track: remember, do not ask again
            return {"track_id": track_id, "available": 0}
        row: dict[str, Any] = {"track_id": track_id, "available": 1, "source": "spotify"}
        missing = []
        for name in AUDIO_FEATURE_COLUMNS:
            value = as_int(entry.get(name)) if name in INTEGER_FEATURES else as_float(entry.get(name))
            if value is None:
                missing.append(name)
            row[name] = value
        if missing:
            self.session.skip("audio feature values", f"audio features lack {', '.join(missing)} (left empty)",
                              track_id=track_id)
        return row

    def _forbid_audio(self) -> None:
        self.audio_forbidden = True
        with self.store.transaction():
            self.store.set_meta("audio_features", "forbidden")
            self.session.checkpoint_stats()
        self.log({"event": "audio_features_forbidden", "status": 403, "message": AUDIO_FORBIDDEN_MESSAGE})
        self.notify(AUDIO_FORBIDDEN_MESSAGE)


def _service_base(service: str | None, api_base: str | None) -> str | None:
    """The host root of the features service asked for (only ReccoBeats is known), or None."""
    if service is None:
        return None
    if service.strip().lower() != RECCOBEATS:
        raise InputError(f"--audio-features service '{service}' is not known: use '{RECCOBEATS}' or a dataset file")
    return resolve_reccobeats_base(api_base)


def reccobeats_note(service: Mapping[str, Any]) -> str:
    """One line on what ReccoBeats gave (for the summary's notes)."""
    stopped = (f"; ReccoBeats stopped answering ({service['unavailable']}): it was not asked again in this run, "
               "rerun the same command later to look up the rest" if service.get("unavailable") else "")
    return (f"audio features from ReccoBeats (a third-party database, looked up by Spotify track id; "
            f"features_source = reccobeats): {service['found']:,} of {service['asked']:,} tracks asked found, "
            f"{service['unknown']:,} unknown to ReccoBeats (left empty), {service['skipped']:,} skipped for a bad "
            f"reply (asked again by the next run); ReccoBeats gives no time_signature{stopped}")


def _spotify_popularity(tables: dict[str, list[dict[str, Any]]]) -> None:
    for row in tables["track.csv"]:
        row["track_popularity_source"] = "spotify" if row.get("track_popularity") is not None else None


def collect(
    artists: str | os.PathLike[str] | Sequence[str],
    out: str | os.PathLike[str],
    *,
    market: str = "US",
    since: str | date | None = None,
    popularity_file: str | os.PathLike[str] | None = None,
    audio_features_file: str | os.PathLike[str] | None = None,
    refresh: bool = False,
    credentials: Credentials | None = None,
    api_base: str | None = None,
    token_url: str | None = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: ProgressCallback | None = None,
    notify: Callable[[str], None] | None = None,
    audio_features_service: str | None = None,
    service_api_base: str | None = None,
    clock: Callable[[], float] = time.monotonic,
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
    popularity_file : path-like, optional
        Popularity (and artist followers) from a dataset :func:`popdrivers.read_tracks` reads, or a CSV with
        header ``track_id,popularity`` or ``isrc,popularity``; joined on track id, then ISRC, then artist +
        title + duration. It replaces the crawl's own popularity (a Development Mode app has none).
    audio_features_file : path-like, optional
        A dataset file in any format :func:`popdrivers.read_tracks` reads; its audio features fill the tracks
        the API gave none (e.g. after a 403), joined on track id, then ISRC, then artist + title.
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
        Receives plain-language notices (Development Mode, 403 on audio features, ambiguous or missing artists).
    audio_features_service : {"reccobeats"}, optional
        Look up the features of tracks Spotify gave none (403 since Nov 2024) in this service by Spotify track id
        (:mod:`.reccobeats`; ``features_source = reccobeats``; ids it does not know are reported).
    service_api_base : str, optional
        The service's host root (default ``POPDRIVERS_RECCOBEATS_API_BASE`` else ``https://api.reccobeats.com``).
    clock : callable
        Time for the service's request pacer (injectable for tests, with ``sleep``).

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
    queries = artist_queries(artists)
    market = market.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", market):
        raise InputError(f"--market '{market}' is not a two-letter country code (e.g. US, GB, DE)")
    since = since_date(since)
    base, token = resolve_endpoints(api_base, token_url)
    credentials = credentials or load_credentials()
    popularity = read_popularity_file(popularity_file) if popularity_file else None
    audio = read_audio_features_file(audio_features_file) if audio_features_file else None
    service_base = _service_base(audio_features_service, service_api_base)
    notify = notify or (lambda message: None)
    session = CrawlSession(out, refresh)
    log = session.log
    try:
        session.check_same_crawl({"source": "spotify", "market": market, "since": since or ""})
        api = SpotifyApi(credentials, api_base=base, token_url=token, policy=policy, sleep=sleep, on_event=log)
        session.attach(api.runner)
        crawler = _Crawler(api, session, market, since, notify)
        lookup = None
        if service_base is not None:
            lookup = LookupStep(ReccoBeatsApi(service_base, policy=policy, sleep=sleep, clock=clock, on_event=log),
                                session, skip=crawler.skip_tracks)
            crawler.feature_steps.append(lookup)
        log({"event": "start", "source": "spotify", "artists": len(queries), "market": market, "since": since,
             "refresh": refresh, "api_base": base, "resumed": session.store.count("resolution") > 0,
             "audio_features_service": audio_features_service and service_base})
        def export(ids: Sequence[str]) -> ExportedTables:
            return export_tables(session, ids, "spotify", _spotify_popularity, popularity, audio)

        def finish(complete: bool) -> CrawlSummary:
            with session.store.transaction():
                session.checkpoint_stats()
            exported = export(crawler.resolved)
            development = crawler.development_mode
            notes = [DEVELOPMENT_MODE_MESSAGE] if development else []
            if crawler.audio_forbidden:
                notes.append(AUDIO_FORBIDDEN_MESSAGE)
            service = lookup.summary() if lookup is not None else None
            if service is not None:
                notes.append(reccobeats_note(service))
            summary = summarize(
                session, exported, source="spotify", access_level=crawler.access_level, market=market, since=since,
                queries=queries, resolved=crawler.resolved, popularity="unavailable" if development else "spotify",
                audio_features="forbidden" if crawler.audio_forbidden else "available", complete=complete,
                started=started, notes=notes, audio_features_service=service)
            session.write_summary(summary, exported, api_base=base)
            return summary

        try:
            return crawler.crawl(queries, export=export, finish=finish, progress=progress)
        except CredentialsError as exc:
            log({"event": "credentials_rejected", "reason": str(exc)})
            raise
    finally:
        session.close()
