"""A fake Spotify Web API on a real loopback HTTP server, serving a small deterministic catalogue.

Endpoints (as Spotify shapes them): ``POST /api/token`` (client credentials, Basic auth, rejects a wrong
secret with 400 invalid_client), and under ``/v1``: ``/search`` (type=artist, real offset/limit paging, the
exact name is never the first hit), ``/artists/{id}``, ``/artists/{id}/albums`` (include_groups, paging),
``/albums/{id}/tracks`` (paging), ``/tracks?ids=`` (<= 50) and ``/audio-features?ids=`` (<= 100).

Faults are injected per request path (regex): a status (429 with Retry-After, 500, 403), a slow reply,
malformed JSON, a reply missing fields, a dropped connection, or a gate that holds a request until released
(to kill a crawling process at a known point). Every request is logged for the tests to count.

The catalogue also computes the four tables a correct crawl must produce (:meth:`FakeCatalog.expected`), from
its own data model, so a test can compare a crawl with the server's truth.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pandas as pd

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
FEATURES = ("danceability", "energy", "loudness", "speechiness", "acousticness", "instrumentalness", "liveness",
            "valence", "tempo", "key", "mode", "time_signature")


def spotify_id(key: str) -> str:
    """A deterministic 22-character base62 id."""
    number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:17], "big")
    chars = []
    for _ in range(22):
        number, rest = divmod(number, 62)
        chars.append(BASE62[rest])
    return "".join(chars)


@dataclass
class Artist:
    id: str
    name: str
    genres: list[str]
    popularity: int
    followers: int


@dataclass
class Album:
    id: str
    name: str
    group: str  # album, single, appears_on, compilation
    release_date: str
    precision: str
    artist_ids: list[str]
    track_ids: list[str] = field(default_factory=list)


@dataclass
class Track:
    id: str
    name: str
    album_id: str
    disc_number: int
    track_number: int
    artist_ids: list[str]
    duration_ms: int
    explicit: bool
    popularity: int
    features: dict[str, float] | None
    isrc: str = ""


class FakeCatalog:
    """Artists, albums and tracks, built deterministically from a seed."""

    def __init__(self, seed: int = 0, big_artist_releases: int = 60, long_album_tracks: int = 120,
                 extra_artists: int = 0):
        self.rng = random.Random(seed)
        self.artists: dict[str, Artist] = {}
        self.albums: dict[str, Album] = {}
        self.tracks: dict[str, Track] = {}
        self.discography: dict[str, list[str]] = {}  # artist id -> album ids in the order the API lists them
        self._build(big_artist_releases, long_album_tracks)
        # "Band 00", "Band 01", ...: plain artists with a couple of albums, for end-to-end runs.
        genres = (["pop"], ["hip hop", "rap"], ["rock", "indie rock"], ["edm", "house"], ["country"])
        self.extra_names = [f"Band {i:02d}" for i in range(extra_artists)]
        for i, name in enumerate(self.extra_names):
            band = self.add_artist(f"band{i}", name, genres[i % len(genres)], self.rng.randint(10, 90))
            for j in range(3):
                self.add_album(band, f"band{i}-{j}", "album" if j < 2 else "single", 8 if j < 2 else 2,
                               2012 + (i + 3 * j) % 12)

    # ----- building
    def add_artist(self, key: str, name: str, genres: list[str], popularity: int) -> Artist:
        artist = Artist(spotify_id("artist:" + key), name, genres, popularity, self.rng.randint(10, 5_000_000))
        self.artists[artist.id] = artist
        self.discography[artist.id] = []
        return artist

    def add_album(self, artist: Artist, key: str, group: str, n_tracks: int, year: int,
                  precision: str = "day", featured: Artist | None = None, lead: Artist | None = None) -> Album:
        date = {"day": f"{year}-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}",
                "month": f"{year}-{self.rng.randint(1, 12):02d}", "year": str(year)}[precision]
        owner = lead or artist
        album = Album(spotify_id("album:" + key), f"{artist.name} {group} {key}", group, date, precision, [owner.id])
        self.albums[album.id] = album
        self.discography[artist.id].append(album.id)
        for n in range(1, n_tracks + 1):
            credits = [owner.id]
            if featured is not None and n % 2 == 0:
                credits = [featured.id, owner.id]  # a track led by a guest: the crawled artist is second
            features = None if self.rng.random() < 0.05 else {
                "danceability": round(self.rng.random(), 3), "energy": round(self.rng.random(), 3),
                "loudness": round(self.rng.uniform(-30, 0), 3), "speechiness": round(self.rng.random() * 0.5, 4),
                "acousticness": round(self.rng.random(), 4), "instrumentalness": round(self.rng.random() * 0.2, 5),
                "liveness": round(self.rng.random() * 0.6, 4), "valence": round(self.rng.random(), 3),
                "tempo": round(self.rng.uniform(60, 190), 3), "key": self.rng.randint(0, 11),
                "mode": self.rng.randint(0, 1), "time_signature": self.rng.choice([3, 4, 4, 4, 5])}
            track = Track(spotify_id(f"track:{key}:{n}"), f"Song {n} of {key}", album.id, 1 + (n - 1) // 60,
                          1 + (n - 1) % 60, credits, self.rng.randint(90_000, 420_000), self.rng.random() < 0.3,
                          self.rng.randint(0, 90), features, isrc=f"QZ{spotify_id('isrc:' + key)[:5].upper()}{n:05d}")
            self.tracks[track.id] = track
            album.track_ids.append(track.id)
        return album

    def _build(self, big_artist_releases: int, long_album_tracks: int) -> None:
        # "Nova": the exact name sits behind 60 more popular decoys (page 2 of a 50-per-page search).
        for i in range(60):
            self.add_artist(f"decoy{i}", f"Nova {chr(65 + i % 26)}{i}", ["indie"], 95 - i % 20)
        nova = self.add_artist("nova", "Nova", ["dance pop", "pop"], 40)
        for i in range(big_artist_releases):
            is_album = i % 5 == 0
            self.add_album(nova, f"nova{i}", "album" if is_album else "single", 9 if is_album else 1 + i % 2,
                           2005 + i % 18, precision="year" if i == 7 else "day")
        long_player = self.add_artist("long", "Long Player", ["ambient"], 55)
        self.add_album(long_player, "long-box", "album", long_album_tracks, 2019)
        self.add_album(long_player, "long-single", "single", 1, 2021)
        quiet = self.add_artist("quiet", "The Quiet Ones", ["folk", "indie folk"], 30)
        self.add_album(quiet, "quiet1", "album", 7, 2016, featured=nova)
        self.add_album(quiet, "quiet2", "single", 2, 2022, precision="month")
        self.add_album(quiet, "quiet-feat", "appears_on", 3, 2020, lead=long_player)  # not theirs: excluded
        self.add_album(quiet, "quiet-best", "compilation", 4, 2023)  # compilations are not asked for
        sigur = self.add_artist("sigur", "Sigur Rós", ["icelandic post-rock", "post-rock"], 60)
        self.add_album(sigur, "sigur1", "album", 8, 2008)
        for i in range(2):
            echo = self.add_artist(f"echo{i}", "Echo", ["rock"], 20 + i)  # two artists with the same name
            self.add_album(echo, f"echo{i}", "album", 3, 2010)

    def artist_named(self, name: str) -> Artist:
        return next(a for a in self.artists.values() if a.name == name)

    # ----- JSON shapes
    def _image(self, key: str) -> list[dict[str, Any]]:
        return [{"url": f"https://i.scdn.co/image/{spotify_id('image:' + key)}", "height": 640, "width": 640}]

    def artist_json(self, artist: Artist, full: bool = True) -> dict[str, Any]:
        simple = {"id": artist.id, "name": artist.name, "type": "artist", "uri": f"spotify:artist:{artist.id}",
                  "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist.id}"}}
        if full:
            simple |= {"genres": artist.genres, "popularity": artist.popularity, "images": self._image(artist.id),
                       "followers": {"href": None, "total": artist.followers}}
        return simple

    def album_json(self, album: Album, group: str | None = None) -> dict[str, Any]:
        return {"id": album.id, "name": album.name, "album_type": "compilation" if album.group == "compilation"
                else ("album" if album.group == "album" else "single"), "album_group": group or album.group,
                "release_date": album.release_date, "release_date_precision": album.precision,
                "total_tracks": len(album.track_ids), "images": self._image(album.id),
                "artists": [self.artist_json(self.artists[a], full=False) for a in album.artist_ids],
                "external_urls": {"spotify": f"https://open.spotify.com/album/{album.id}"}, "type": "album",
                "label": "Fake Records", "popularity": 50, "available_markets": ["US", "GB", "DE"]}

    def track_json(self, track: Track, full: bool) -> dict[str, Any]:
        data = {"id": track.id, "name": track.name, "disc_number": track.disc_number,
                "track_number": track.track_number, "duration_ms": track.duration_ms, "explicit": track.explicit,
                "artists": [self.artist_json(self.artists[a], full=False) for a in track.artist_ids],
                "external_urls": {"spotify": f"https://open.spotify.com/track/{track.id}"}, "type": "track",
                "uri": f"spotify:track:{track.id}"}
        if full:
            data |= {"popularity": track.popularity, "album": self.album_json(self.albums[track.album_id]),
                     "external_ids": {"isrc": track.isrc}, "available_markets": ["US", "GB", "DE"]}
        return data

    # ----- truth
    def expected(self, names: list[str], since: str | None = None, audio: bool = True,
                 profile: str = "full") -> dict[str, pd.DataFrame]:
        """The four tables a correct crawl of ``names`` (exact, unambiguous artist names) must write.

        ``profile="development"``: what a Development Mode app gets (no popularity, no followers).
        """
        full = profile == "full"
        artist_rows, album_rows, track_rows, audio_rows = [], {}, {}, {}
        for name in names:
            artist = self.artist_named(name)
            artist_rows.append({"artist_id": artist.id, "artist_name": artist.name,
                                "artist_genre": str(artist.genres),
                                "artist_popularity": artist.popularity if full else None,
                                "artist_followers": artist.followers if full else None,
                                "artist_image": self._image(artist.id)[0]["url"],
                                "artist_homepage": f"https://open.spotify.com/artist/{artist.id}"})
            for album_id in self.discography[artist.id]:
                album = self.albums[album_id]
                padded = (album.release_date + "-01-01")[:10] if album.precision != "day" else album.release_date
                if album.group not in ("album", "single") or (since and padded < since):
                    continue
                album_rows.setdefault(album.id, {
                    "album_id": album.id, "album_name": album.name, "album_release_date": album.release_date,
                    "album_total_tracks": len(album.track_ids), "album_artist_id": album.artist_ids[0],
                    "album_image": self._image(album.id)[0]["url"],
                    "album_homepage": f"https://open.spotify.com/album/{album.id}",
                    "album_type": "album" if album.group == "album" else "single"})
                for track_id in album.track_ids:
                    track = self.tracks[track_id]
                    lead = artist.id if artist.id in track.artist_ids else track.artist_ids[0]
                    track_rows.setdefault(track.id, {
                        "track_id": track.id, "track_name": track.name, "track_artist_id": lead,
                        "track_album_id": album.id, "track_number": track.track_number,
                        "track_popularity": track.popularity if full else None, "track_explicit": track.explicit,
                        "track_homepage": f"https://open.spotify.com/track/{track.id}",
                        "track_disc_number": track.disc_number, "track_isrc": track.isrc,
                        "track_n_artists": len(track.artist_ids),
                        "track_popularity_source": "spotify" if full else None})
                    row: dict[str, Any] = {"track_id": track.id, "track_duration": track.duration_ms}
                    for name_ in FEATURES:
                        row[name_] = (track.features or {}).get(name_) if audio else None
                    row["features_source"] = "spotify" if audio and track.features else None
                    audio_rows.setdefault(track.id, row)
        return {"artist": pd.DataFrame(artist_rows), "album": pd.DataFrame(list(album_rows.values())),
                "track": pd.DataFrame(list(track_rows.values())), "audio": pd.DataFrame(list(audio_rows.values()))}


@dataclass
class Fault:
    """Misbehave on requests whose path+query matches ``pattern``: skip ``after`` matches, then ``times`` hits."""

    pattern: str
    kind: str  # status | slow | malformed | missing | drop | gate
    times: int = 1
    after: int = 0
    status: int = 500
    retry_after: str | None = None
    delay: float = 0.0
    drop_field: str = ""
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    seen: int = 0
    fired: int = 0


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out or was killed mid-reply: nothing to report


# What a Development Mode app no longer gets (Spotify's February 2026 changelog; the March 2026 amendment kept
# external_ids): removed fields per object type, endpoints refused, and the largest search page.
DEVELOPMENT_REMOVED_FIELDS = {"artist": ("popularity", "followers"),
                              "track": ("popularity", "available_markets", "linked_from"),
                              "album": ("popularity", "available_markets", "label", "album_group")}
DEVELOPMENT_REFUSED = ("/tracks", "/albums", "/artists", "/audio-features")  # batch (?ids=) endpoints
DEVELOPMENT_SEARCH_LIMIT = 10
PROFILES = ("full", "development")


def development_shape(body: Any) -> Any:
    """``body`` as a Development Mode app receives it: the removed fields dropped at every depth."""
    if isinstance(body, list):
        return [development_shape(x) for x in body]
    if not isinstance(body, dict):
        return body
    removed = DEVELOPMENT_REMOVED_FIELDS.get(body.get("type"), ())
    return {k: development_shape(v) for k, v in body.items() if k not in removed}


class FakeSpotify:
    """The running server: ``api_base``, ``token_url``, ``faults``, the request ``log``; stop with :meth:`stop`.

    ``profile="full"`` answers like the Web API for an Extended Quota app (and for every app before 2026);
    ``profile="development"`` like it does for a Development Mode app since February/March 2026: no popularity
    or followers, batch endpoints answer 403, search refuses ``limit`` above 10, audio features answer 403.
    """

    def __init__(self, catalog: FakeCatalog, client_id: str = "fake-client", client_secret: str = "fake-secret",
                 audio_forbidden: bool = False, delay: float = 0.0, profile: str = "full"):
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}")
        self.catalog = catalog
        self.profile = profile
        self.client_id, self.client_secret = client_id, client_secret
        self.audio_forbidden = audio_forbidden or profile == "development"
        self.delay = delay  # every reply waits this long (makes a crawl last long enough to be killed)
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, int]] = []
        self.tokens: set[str] = set()
        self._lock = threading.Lock()
        self.httpd = QuietServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.api_base = self.base + "/v1"
        self.token_url = self.base + "/api/token"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def fault(self, pattern: str, kind: str, **kwargs: Any) -> Fault:
        fault = Fault(pattern, kind, **kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def stop(self) -> None:
        for fault in self.faults:
            fault.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def requests_to(self, pattern: str, status: int | None = None) -> int:
        with self._lock:
            return sum(1 for _, path, code in self.log
                       if re.search(pattern, path) and (status is None or code == status))

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.fired < fault.times and re.search(fault.pattern, path):
                    fault.seen += 1
                    if fault.seen > fault.after:
                        fault.fired += 1
                        return fault
        return None

    # ----- request handling
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without NODELAY, Nagle + delayed ACK add ~40 ms each.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None):
                data = raw if raw is not None else json.dumps(body).encode()
                with server._lock:
                    server.log.append((self.command, self.path, status))
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, message: str, headers: dict[str, str] | None = None):
                self._send(status, {"error": {"status": status, "message": message}}, headers)

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                if urlsplit(self.path).path != "/api/token":
                    return self._error(404, "no such endpoint")
                if self._misbehave(server._take_fault(self.path)):
                    return None
                expected = base64.b64encode(f"{server.client_id}:{server.client_secret}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {expected}":
                    return self._send(400, {"error": "invalid_client", "error_description": "Invalid client"})
                if form.get("grant_type") != ["client_credentials"]:
                    return self._send(400, {"error": "unsupported_grant_type"})
                token = f"token-{len(server.tokens)}"
                with server._lock:
                    server.tokens.add(token)
                return self._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

            def _misbehave(self, fault: Fault | None) -> bool:
                """Apply ``fault``; True when the reply has been sent (or the connection dropped)."""
                if server.delay:
                    time.sleep(server.delay)
                if fault is None:
                    return False
                if fault.kind == "gate":
                    fault.reached.set()
                    fault.release.wait(30)
                    return False
                if fault.kind == "slow":
                    time.sleep(fault.delay)
                    return False
                if fault.kind == "status":
                    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
                    self._error(fault.status, "injected fault", headers)
                    return True
                if fault.kind == "malformed":
                    self._send(200, None, raw=b'{"items": [{"id": "trunc')
                    return True
                if fault.kind == "drop":
                    with server._lock:
                        server.log.append((self.command, self.path, 0))
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return True
                return False  # "missing" is applied to the reply body in do_GET

            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                fault = server._take_fault(self.path)
                if self._misbehave(fault):
                    return None
                if self.headers.get("Authorization", "").removeprefix("Bearer ") not in server.tokens:
                    return self._error(401, "The access token expired")
                path = url.path.rstrip("/")
                if not path.startswith("/v1/"):
                    return self._error(404, "no such endpoint")
                try:
                    status, body = server.route(path[3:], query)
                except (KeyError, ValueError) as exc:
                    return self._error(400, f"bad request: {exc}")
                if server.profile == "development":
                    body = development_shape(body)
                if fault is not None and fault.kind == "missing" and status == 200:
                    body = _drop_field(body, fault.drop_field)
                return self._send(status, body)

        return Handler

    def route(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        cat = self.catalog
        limit, offset = int(query.get("limit", 20)), int(query.get("offset", 0))
        if limit > 50 or (path == "/search" and self.profile == "development" and limit > DEVELOPMENT_SEARCH_LIMIT):
            return 400, {"error": {"status": 400, "message": "Invalid limit"}}
        if self.profile == "development" and path in DEVELOPMENT_REFUSED:
            return 403, {"error": {"status": 403, "message": "Forbidden"}}
        if m := re.fullmatch(r"/tracks/([^/]+)", path):
            track = cat.tracks.get(m[1])
            return (200, cat.track_json(track, full=True)) if track else (404, {"error": {
                "status": 404, "message": "Resource not found"}})
        if path == "/search":
            if query.get("type") != "artist":
                return 400, {"error": {"status": 400, "message": "only type=artist is faked"}}
            words = query["q"].replace("artist:", "").replace('"', "").casefold().split()
            hits = sorted((a for a in cat.artists.values() if any(w in a.name.casefold() for w in words)),
                          key=lambda a: (-a.popularity, a.id))
            page = self._page(f"/search?q={query['q']}&type=artist", hits, limit, offset,
                              lambda a: cat.artist_json(a))
            return 200, {"artists": page}
        if m := re.fullmatch(r"/artists/([^/]+)", path):
            artist = cat.artists.get(m[1])
            return (200, cat.artist_json(artist)) if artist else (404, {"error": {"status": 404,
                                                                                  "message": "Resource not found"}})
        if m := re.fullmatch(r"/artists/([^/]+)/albums", path):
            if m[1] not in cat.artists:
                return 404, {"error": {"status": 404, "message": "Resource not found"}}
            groups = query.get("include_groups", "album,single,compilation,appears_on").split(",")
            albums = [cat.albums[a] for a in cat.discography[m[1]]]
            # Spotify lists appears_on albums under the artist with album_group "appears_on".
            chosen = [a for a in albums if a.group in groups]
            return 200, self._page(f"/artists/{m[1]}/albums?include_groups={','.join(groups)}", chosen, limit,
                                   offset, lambda a: cat.album_json(a))
        if m := re.fullmatch(r"/albums/([^/]+)/tracks", path):
            album = cat.albums.get(m[1])
            if album is None:
                return 404, {"error": {"status": 404, "message": "Resource not found"}}
            tracks = [cat.tracks[t] for t in album.track_ids]
            return 200, self._page(f"/albums/{m[1]}/tracks", tracks, limit, offset,
                                   lambda t: cat.track_json(t, full=False))
        if path == "/tracks":
            ids = query["ids"].split(",")
            if len(ids) > 50:
                return 400, {"error": {"status": 400, "message": "Too many ids requested"}}
            return 200, {"tracks": [cat.track_json(cat.tracks[i], full=True) if i in cat.tracks else None
                                    for i in ids]}
        if path == "/audio-features":
            if self.audio_forbidden:
                return 403, {"error": {"status": 403, "message": "Forbidden"}}
            ids = query["ids"].split(",")
            if len(ids) > 100:
                return 400, {"error": {"status": 400, "message": "Too many ids requested"}}
            out = []
            for i in ids:
                track = cat.tracks.get(i)
                if track is None or track.features is None:
                    out.append(None)
                else:
                    out.append({"id": i, "type": "audio_features", "duration_ms": track.duration_ms,
                                **track.features})
            return 200, {"audio_features": out}
        return 404, {"error": {"status": 404, "message": "Service not found"}}

    def _page(self, href: str, items: list[Any], limit: int, offset: int, shape) -> dict[str, Any]:
        chunk = items[offset:offset + limit]
        sep = "&" if "?" in href else "?"

        def link(at: int) -> str:
            return f"{self.api_base}{href}{sep}{urlencode({'offset': at, 'limit': limit})}"

        return {"href": link(offset), "items": [shape(x) for x in chunk], "limit": limit,
                "next": link(offset + limit) if offset + limit < len(items) else None, "offset": offset,
                "previous": link(max(0, offset - limit)) if offset > 0 else None, "total": len(items)}


def _drop_field(body: Any, name: str) -> Any:
    """Remove ``name`` from the first object in the reply that has it (a partial reply)."""
    if isinstance(body, dict):
        if name in body:
            return {k: v for k, v in body.items() if k != name}
        for key, value in body.items():
            changed = _drop_field(value, name)
            if changed is not value:
                return {**body, key: changed}
    if isinstance(body, list):
        for i, value in enumerate(body):
            changed = _drop_field(value, name)
            if changed is not value:
                return [*body[:i], changed, *body[i + 1:]]
    return body


@contextlib.contextmanager
def serve(catalog: FakeCatalog | None = None, **kwargs: Any):
    """Run a :class:`FakeSpotify` for the duration of a ``with`` block."""
    server = FakeSpotify(catalog or FakeCatalog(), **kwargs)
    try:
        yield server
    finally:
        server.stop()


if __name__ == "__main__":  # handy for trying the collector by hand: python tests/fake_spotify.py
    with serve() as fake:
        print(f"POPDRIVERS_SPOTIFY_API_BASE={fake.api_base} POPDRIVERS_SPOTIFY_TOKEN_URL={fake.token_url} "
              f"SPOTIPY_CLIENT_ID={fake.client_id} SPOTIPY_CLIENT_SECRET={fake.client_secret}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
