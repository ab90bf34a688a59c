"""A fake Deezer public API on a real loopback HTTP server, serving a small deterministic catalogue.

Endpoints (shaped as Deezer shapes them, no credentials): ``/search/artist`` , ``/artist/{id}``,
``/artist/{id}/albums``, ``/album/{id}``, ``/album/{id}/tracks`` and ``/track/{id}``. Listings page with
``index``/``limit`` and answer ``{"data": [...], "total": N, "next": URL}``; every ``next`` link carries a
``sig`` the server checks, so a client that builds its own page URLs instead of following ``next`` as given
gets an error. Unknown ids answer HTTP 200 with ``{"error": {"code": 800, "message": "no data"}}``.

The quota is real: more than ``quota`` requests within ``window`` seconds of ``clock`` answer HTTP 200 with
Deezer's quota error (``code 4``). Pass a :class:`FakeClock` shared with the client to make that deterministic.
Faults (status, malformed JSON, quota error, dropped connection, gate) are injected per request path.

**Previews.** ``/track/{id}`` carries a ``preview`` link, as Deezer's does: a signed CDN URL that expires
(``/preview/{id}.mp3?hdnea=exp=...~acl=...~hmac=...``, checked against ``clock``; expired or forged links answer
403, or ``expired_status``). The server answers it with a real, decodable MP3 made on the spot (numpy signal,
encoded by soundfile's libsndfile): a click track at a known tempo over a sustained chord in a known key
(:meth:`DeezerCatalog.preview_truth`). About one track in eight has no preview (``"preview": ""``, as Deezer
writes it) and one in twenty serves bytes that are not audio. Preview downloads come from Deezer's CDN, another
host: they are not counted against the API quota. :meth:`FakeDeezer.stale_links` makes the next links issued for
a track already expired.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import math
import random
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pandas as pd
from fake_spotify import Fault, QuietServer

PREVIEW_TEMPI = (90.0, 100.0, 110.0, 120.0, 128.0, 140.0)  # click tracks the tempo estimators find reliably
PREVIEW_KEYS = ((0, 1), (7, 1), (9, 0), (2, 1), (4, 0), (5, 1))  # (pitch class, mode) of each preview's chord
PREVIEW_SAMPLE_RATE = 22050
_LINK_SECRET = b"fake-deezer-cdn"
QUOTA_ERROR = {"error": {"type": "Exception", "message": "Quota limit exceeded", "code": 4}}
NO_DATA = {"error": {"type": "DataException", "message": "no data", "code": 800}}
RANK_CEILING = 1_000_000


def expected_popularity(rank: int) -> int:
    """The documented transform (docs/collect.md), restated here independently of the collector."""
    return int(min(100, max(0, round(100 * math.log10(1 + rank) / math.log10(1 + RANK_CEILING)))))


class FakeClock:
    """Time that moves only when someone sleeps (shared by the client's pacer and the server's quota)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += max(0.0, seconds)


@dataclass
class DArtist:
    id: int
    name: str
    nb_fan: int


@dataclass
class DAlbum:
    id: int
    title: str
    record_type: str  # album, single, ep, compile
    release_date: str
    artist_id: int  # main artist
    genres: list[str]
    track_ids: list[int] = field(default_factory=list)


@dataclass
class DTrack:
    id: int
    title: str
    album_id: int
    disk_number: int
    track_position: int
    artist_id: int
    contributor_ids: list[int]
    duration: int  # seconds
    explicit: bool
    rank: int
    bpm: float
    gain: float
    isrc: str


class DeezerCatalog:
    """Artists, albums and tracks, built deterministically from a seed."""

    def __init__(self, seed: int = 0, extra_artists: int = 0):
        self.rng = random.Random(seed)
        self.artists: dict[int, DArtist] = {}
        self.albums: dict[int, DAlbum] = {}
        self.tracks: dict[int, DTrack] = {}
        self.discography: dict[int, list[int]] = {}  # artist id -> album ids as the API lists them
        self._next_id = 100
        self._build()
        self.extra_names = [f"Band {i:02d}" for i in range(extra_artists)]
        genres = (["Pop"], ["Rap/Hip Hop"], ["Rock", "Alternative"], ["Dance", "Electro"], ["Country"])
        for i, name in enumerate(self.extra_names):
            band = self.add_artist(name, self.rng.randint(100, 2_000_000))
            for j in range(3):
                self.add_album(band, "album" if j < 2 else "single", 8 if j < 2 else 2, 2012 + (i + 3 * j) % 12,
                               genres[i % len(genres)])

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id * 7919 % 10_000_019

    def add_artist(self, name: str, nb_fan: int) -> DArtist:
        artist = DArtist(self._new_id(), name, nb_fan)
        self.artists[artist.id] = artist
        self.discography[artist.id] = []
        return artist

    def add_album(self, artist: DArtist, record_type: str, n_tracks: int, year: int, genres: list[str],
                  lead: DArtist | None = None, guest: DArtist | None = None) -> DAlbum:
        owner = lead or artist
        date = f"{year}-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}"
        album = DAlbum(self._new_id(), f"{owner.name} {record_type} {len(self.albums)}", record_type, date,
                       owner.id, genres)
        self.albums[album.id] = album
        self.discography[artist.id].append(album.id)
        for n in range(1, n_tracks + 1):
            credits = [owner.id] + ([guest.id] if guest is not None and n % 2 == 0 else [])
            track = DTrack(self._new_id(), f"Song {n} of {album.title}", album.id, 1 + (n - 1) // 60,
                           1 + (n - 1) % 60, owner.id, credits, self.rng.randint(90, 420), self.rng.random() < 0.3,
                           self.rng.choice([0, 850, 12_000, 150_000, 480_000, 999_999]) + self.rng.randint(0, 800),
                           0.0 if self.rng.random() < 0.1 else round(self.rng.uniform(60, 190), 1),
                           round(self.rng.uniform(-16, -2), 1), f"FR{album.id % 1000:03d}{n:07d}")
            self.tracks[track.id] = track
            album.track_ids.append(track.id)
        return album

    def _build(self) -> None:
        for i in range(60):  # more popular near-namesakes: the exact "Nova" sits on the 2nd page of 50
            self.add_artist(f"Nova {chr(65 + i % 26)}{i}", 9_000_000 - i)
        nova = self.add_artist("Nova", 40_000)
        kinds = ("album", "single", "ep", "single", "single")
        for i in range(60):
            kind = kinds[i % 5]
            self.add_album(nova, kind, {"album": 9, "single": 1 + i % 2, "ep": 4}[kind], 2005 + i % 18, ["Pop"])
        long_player = self.add_artist("Long Player", 55_000)
        self.add_album(long_player, "album", 120, 2019, ["Ambient"])  # 120 tracks: 3 pages, 2 disks
        quiet = self.add_artist("The Quiet Ones", 3_000)
        self.add_album(quiet, "album", 7, 2016, ["Folk", "Indie"], guest=nova)
        self.add_album(quiet, "single", 2, 2022, ["Folk"])
        self.add_album(quiet, "album", 3, 2020, ["Ambient"], lead=long_player)  # listed, led by another: dropped
        self.add_album(quiet, "compile", 4, 2023, ["Folk"])  # a compilation: not asked for
        sigur = self.add_artist("Sigur Rós", 600_000)
        self.add_album(sigur, "album", 8, 2008, ["Alternative"])
        for i in range(2):
            echo = self.add_artist("Echo", 1_000 + i)  # two artists with the same name
            self.add_album(echo, "album", 3, 2010, ["Rock"])

    def artist_named(self, name: str) -> DArtist:
        return next(a for a in self.artists.values() if a.name == name)

    # ----- previews (decided from the track id, so the rest of the catalogue is what it was before previews)
    @staticmethod
    def preview_kind(track_id: int) -> str:
        """``"audio"`` (a decodable MP3), ``"none"`` (Deezer gives no preview) or ``"broken"`` (bytes, not audio)."""
        digest = int(hashlib.sha256(f"preview:{track_id}".encode()).hexdigest()[:8], 16)
        if digest % 8 == 0:
            return "none"
        return "broken" if digest % 20 == 1 else "audio"

    @staticmethod
    def preview_truth(track_id: int) -> dict[str, float]:
        """What the preview of ``track_id`` is made of: its click tempo (BPM), chord key and mode."""
        variant = track_id % len(PREVIEW_TEMPI)
        key, mode = PREVIEW_KEYS[(track_id // len(PREVIEW_TEMPI)) % len(PREVIEW_KEYS)]
        return {"tempo": PREVIEW_TEMPI[variant], "key": key, "mode": mode}

    # ----- JSON shapes
    def artist_json(self, artist: DArtist, base: str) -> dict[str, Any]:
        return {"id": artist.id, "name": artist.name, "link": f"https://www.deezer.com/artist/{artist.id}",
                "picture": f"{base}/artist/{artist.id}/image", "picture_xl": f"https://pics.example/a{artist.id}-xl",
                "nb_album": len(self.discography.get(artist.id, [])), "nb_fan": artist.nb_fan, "radio": True,
                "tracklist": f"{base}/artist/{artist.id}/top?limit=50", "type": "artist"}

    def album_summary(self, album: DAlbum) -> dict[str, Any]:
        return {"id": album.id, "title": album.title, "link": f"https://www.deezer.com/album/{album.id}",
                "cover": f"https://pics.example/c{album.id}", "cover_xl": f"https://pics.example/c{album.id}-xl",
                "genre_id": 132, "fans": 10, "release_date": album.release_date, "record_type": album.record_type,
                "explicit_lyrics": False, "type": "album"}

    def album_json(self, album: DAlbum, base: str) -> dict[str, Any]:
        artist = self.artists[album.artist_id]
        return {**self.album_summary(album), "upc": f"0{album.id:011d}", "label": "Fake Records",
                "nb_tracks": len(album.track_ids), "duration": sum(self.tracks[t].duration for t in album.track_ids),
                "genres": {"data": [{"id": 100 + i, "name": g, "type": "genre"} for i, g in enumerate(album.genres)]},
                "artist": {"id": artist.id, "name": artist.name, "type": "artist"},
                "tracklist": f"{base}/album/{album.id}/tracks"}

    def track_summary(self, track: DTrack) -> dict[str, Any]:
        artist = self.artists[track.artist_id]
        return {"id": track.id, "readable": True, "title": track.title, "title_short": track.title,
                "isrc": track.isrc, "link": f"https://www.deezer.com/track/{track.id}", "duration": track.duration,
                "track_position": track.track_position, "disk_number": track.disk_number, "rank": track.rank,
                "explicit_lyrics": track.explicit, "artist": {"id": artist.id, "name": artist.name, "type": "artist"},
                "type": "track"}

    def track_json(self, track: DTrack, preview: str = "") -> dict[str, Any]:
        album = self.albums[track.album_id]
        return {**self.track_summary(track), "preview": preview, "release_date": album.release_date,
                "bpm": track.bpm,
                "gain": track.gain, "available_countries": ["FR", "US"],
                "contributors": [{"id": a, "name": self.artists[a].name, "type": "artist",
                                  "role": "Main" if a == track.artist_id else "Featured"}
                                 for a in track.contributor_ids],
                "album": {"id": album.id, "title": album.title, "type": "album"}}

    # ----- truth
    def expected(self, names: list[str], since: str | None = None) -> dict[str, pd.DataFrame]:
        """The four tables a correct Deezer crawl of ``names`` (exact, unambiguous names) must write."""
        artist_rows, album_rows, track_rows, audio_rows = [], {}, {}, {}
        for name in names:
            artist = self.artist_named(name)
            artist_rows.append({"artist_id": str(artist.id), "artist_name": artist.name, "artist_genre": "[]",
                                "artist_popularity": None, "artist_followers": artist.nb_fan,
                                "artist_image": f"https://pics.example/a{artist.id}-xl",
                                "artist_homepage": f"https://www.deezer.com/artist/{artist.id}"})
            for album_id in self.discography[artist.id]:
                album = self.albums[album_id]
                if album.record_type == "compile" or album.artist_id != artist.id or (
                        since and album.release_date < since):
                    continue
                album_rows.setdefault(album.id, {
                    "album_id": str(album.id), "album_name": album.title, "album_release_date": album.release_date,
                    "album_total_tracks": len(album.track_ids), "album_artist_id": str(album.artist_id),
                    "album_image": f"https://pics.example/c{album.id}-xl",
                    "album_homepage": f"https://www.deezer.com/album/{album.id}", "album_type": album.record_type,
                    "album_genre": album.genres[0], "album_genres": json.dumps(album.genres)})
                for track_id in album.track_ids:
                    track = self.tracks[track_id]
                    track_rows.setdefault(track.id, {
                        "track_id": str(track.id), "track_name": track.title, "track_artist_id": str(artist.id),
                        "track_album_id": str(album.id), "track_number": track.track_position,
                        "track_popularity": expected_popularity(track.rank), "track_explicit": track.explicit,
                        "track_homepage": f"https://www.deezer.com/track/{track.id}",
                        "track_disc_number": track.disk_number, "track_isrc": track.isrc,
                        "track_n_artists": len(track.contributor_ids), "track_popularity_source": "deezer_rank",
                        "track_deezer_rank": track.rank})
                    row: dict[str, Any] = {"track_id": str(track.id), "track_duration": track.duration * 1000}
                    for feature in ("danceability", "energy", "loudness", "speechiness", "acousticness",
                                    "instrumentalness", "liveness", "valence", "tempo", "key", "mode",
                                    "time_signature"):
                        row[feature] = None
                    row["tempo"] = track.bpm if track.bpm > 0 else None
                    row["features_source"] = "deezer" if track.bpm > 0 else None
                    row["deezer_gain"] = track.gain
                    audio_rows.setdefault(track.id, row)
        return {"artist": pd.DataFrame(artist_rows), "album": pd.DataFrame(list(album_rows.values())),
                "track": pd.DataFrame(list(track_rows.values())), "audio": pd.DataFrame(list(audio_rows.values()))}


def _sig(path: str, index: int) -> str:
    return hashlib.sha256(f"{path}:{index}".encode()).hexdigest()[:10]


class FakeDeezer:
    """The running server: ``api_base`` (a host root), ``faults``, the request ``log``; stop with :meth:`stop`."""

    def __init__(self, catalog: DeezerCatalog, clock=time.monotonic, quota: int = 50, window: float = 5.0,
                 delay: float = 0.0, preview_seconds: float = 4.0, preview_ttl: float = 600.0,
                 expired_status: int = 403):
        self.catalog, self.clock, self.quota, self.window, self.delay = catalog, clock, quota, window, delay
        self.preview_seconds, self.preview_ttl, self.expired_status = preview_seconds, preview_ttl, expired_status
        self._stale: dict[int, int] = {}  # track id -> links still to issue already expired
        self._clips: dict[tuple[float, int, int], bytes] = {}
        self.faults: list[Fault] = []
        self.log: list[tuple[str, int, str]] = []  # (path+query, HTTP status, "ok" | "quota" | "error" | fault)
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()
        self.httpd = QuietServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.api_base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
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

    # ----- previews
    def stale_links(self, track_id: int, times: int = 1) -> None:
        """The next ``times`` preview links issued for ``track_id`` are already expired when the client gets them."""
        with self._lock:
            self._stale[track_id] = self._stale.get(track_id, 0) + times

    def preview_link(self, track_id: int) -> str:
        """A signed link to the track's preview, valid ``preview_ttl`` seconds of ``clock`` (like Deezer's hdnea)."""
        with self._lock:
            stale = self._stale.get(track_id, 0)
            if stale:
                self._stale[track_id] = stale - 1
        expires = self.clock() + (-1.0 if stale else self.preview_ttl)
        acl = f"/preview/{track_id}.mp3"
        token = f"exp={expires:.3f}~acl={acl}"
        signature = hmac.new(_LINK_SECRET, token.encode(), hashlib.sha256).hexdigest()[:20]
        return f"{self.api_base}{acl}?hdnea={token}~hmac={signature}"

    def preview_bytes(self, track_id: int) -> bytes:
        """The preview file: a real MP3 (cached per tempo, key and mode), or, for a broken one, not audio."""
        if self.catalog.preview_kind(track_id) == "broken":
            return b"<html><body>503 upstream preview unavailable</body></html>" * 20
        truth = self.catalog.preview_truth(track_id)
        key = (truth["tempo"], truth["key"], truth["mode"])
        with self._lock:
            clip = self._clips.get(key)
        if clip is None:
            clip = preview_mp3(*key, seconds=self.preview_seconds)
            with self._lock:
                self._clips[key] = clip
        return clip

    def _check_link(self, path: str, query: dict[str, str]) -> int | None:
        """None for a valid unexpired link to an existing preview, else the HTTP status the CDN answers."""
        m = re.fullmatch(r"/preview/(\d+)\.mp3", path)
        if m is None or int(m[1]) not in self.catalog.tracks:
            return 404
        token, _, signature = query.get("hdnea", "").rpartition("~hmac=")
        fields = dict(part.split("=", 1) for part in token.split("~") if "=" in part)
        good = hmac.new(_LINK_SECRET, token.encode(), hashlib.sha256).hexdigest()[:20]
        if not hmac.compare_digest(signature, good) or fields.get("acl") != path:
            return 403
        if float(fields.get("exp", 0)) < self.clock():
            return self.expired_status
        if self.catalog.preview_kind(int(m[1])) == "none":
            return 404
        return None

    def requests_to(self, pattern: str, outcome: str | None = None) -> int:
        with self._lock:
            return sum(1 for path, _, what in self.log if re.search(pattern, path)
                       and (outcome is None or what == outcome))

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.fired < fault.times and re.search(fault.pattern, path):
                    fault.seen += 1
                    if fault.seen > fault.after:
                        fault.fired += 1
                        return fault
        return None

    def _over_quota(self) -> bool:
        """Count this request in the rolling window; True when it is one too many."""
        with self._lock:
            now = self.clock()
            while self._recent and self._recent[0] <= now - self.window:
                self._recent.popleft()
            self._recent.append(now)
            return len(self._recent) > self.quota

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, outcome: str, raw: bytes | None = None,
                      content_type: str = "application/json; charset=utf-8") -> None:
                data = raw if raw is not None else json.dumps(body).encode()
                with server._lock:
                    server.log.append((self.path, status, outcome))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                if server.delay:
                    time.sleep(server.delay)
                fault = server._take_fault(self.path)
                if self.path.startswith("/preview/"):
                    return self._preview(fault)
                over = server._over_quota()
                if fault is not None:
                    if fault.kind == "gate":
                        fault.reached.set()
                        fault.release.wait(30)
                    elif fault.kind == "status":
                        return self._send(fault.status, {"error": {"code": fault.status}}, "fault")
                    elif fault.kind == "malformed":
                        return self._send(200, None, "fault", raw=b'{"data": [{"id": 12')
                    elif fault.kind == "quota":
                        return self._send(200, QUOTA_ERROR, "quota")
                    elif fault.kind == "drop":
                        with server._lock:
                            server.log.append((self.path, 0, "fault"))
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return None
                if over:
                    return self._send(200, QUOTA_ERROR, "quota")
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                try:
                    body = server.route(url.path.rstrip("/"), query)
                except (KeyError, ValueError) as exc:
                    body = {"error": {"type": "ParameterException", "message": f"bad parameter: {exc}",
                                      "code": 500}}
                if fault is not None and fault.kind == "missing" and isinstance(body, dict):
                    body = {k: v for k, v in body.items() if k != fault.drop_field}
                return self._send(200, body, "error" if "error" in body else "ok")

            def _preview(self, fault: Fault | None) -> None:
                """The CDN: outside the API quota; its own faults (status, drop, gate, truncated body)."""
                if fault is not None:
                    if fault.kind == "gate":
                        fault.reached.set()
                        fault.release.wait(30)
                    elif fault.kind == "status":
                        return self._send(fault.status, None, "fault", raw=b"", content_type="text/plain")
                    elif fault.kind == "drop":
                        with server._lock:
                            server.log.append((self.path, 0, "fault"))
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return None
                url = urlsplit(self.path)
                refused = server._check_link(url.path, {k: v[0] for k, v in parse_qs(url.query).items()})
                if refused is not None:
                    return self._send(refused, None, "refused", raw=b"", content_type="text/plain")
                track_id = int(url.path.rsplit("/", 1)[1].split(".")[0])
                return self._send(200, None, "preview", raw=server.preview_bytes(track_id), content_type="audio/mpeg")

        return Handler

    def route(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        cat, base = self.catalog, self.api_base
        index, limit = int(query.get("index", 0)), int(query.get("limit", 25))
        if index and query.get("sig") != _sig(path, index):
            return {"error": {"type": "ParameterException", "message": "page not from a next link", "code": 500}}
        if path == "/search/artist":
            words = query["q"].casefold().split()
            hits = sorted((a for a in cat.artists.values() if any(w in a.name.casefold() for w in words)),
                          key=lambda a: (-a.nb_fan, a.id))
            return self._page(path, query, hits, index, limit, lambda a: cat.artist_json(a, base))
        if m := re.fullmatch(r"/artist/(\d+)", path):
            artist = cat.artists.get(int(m[1]))
            return cat.artist_json(artist, base) if artist else NO_DATA
        if m := re.fullmatch(r"/artist/(\d+)/albums", path):
            if int(m[1]) not in cat.artists:
                return NO_DATA
            albums = [cat.albums[a] for a in cat.discography[int(m[1])]]
            return self._page(path, query, albums, index, limit, cat.album_summary)
        if m := re.fullmatch(r"/album/(\d+)", path):
            album = cat.albums.get(int(m[1]))
            return cat.album_json(album, base) if album else NO_DATA
        if m := re.fullmatch(r"/album/(\d+)/tracks", path):
            album = cat.albums.get(int(m[1]))
            if album is None:
                return NO_DATA
            return self._page(path, query, [cat.tracks[t] for t in album.track_ids], index, limit,
                              cat.track_summary)
        if m := re.fullmatch(r"/track/(\d+)", path):
            track = cat.tracks.get(int(m[1]))
            if track is None:
                return NO_DATA
            has_preview = cat.preview_kind(track.id) != "none"
            return cat.track_json(track, self.preview_link(track.id) if has_preview else "")
        return {"error": {"type": "DataException", "message": "no data", "code": 800}}

    def _page(self, path: str, query: dict[str, str], items: list[Any], index: int, limit: int,
              shape) -> dict[str, Any]:
        chunk = items[index:index + limit]
        body: dict[str, Any] = {"data": [shape(x) for x in chunk], "total": len(items)}
        keep = {k: v for k, v in query.items() if k not in ("index", "sig")}
        if index + limit < len(items):
            at = index + limit
            body["next"] = f"{self.api_base}{path}?{urlencode({**keep, 'index': at, 'sig': _sig(path, at)})}"
        if index > 0:
            at = max(0, index - limit)
            body["prev"] = f"{self.api_base}{path}?{urlencode({**keep, 'index': at, 'sig': _sig(path, at)})}"
        return body


def preview_mp3(tempo: float, key: int, mode: int, seconds: float = 4.0,
                sample_rate: int = 44100) -> bytes:
    """An MP3 of ``seconds``: clicks on every beat at ``tempo`` (accented downbeats of 4/4) over a sustained
    triad on pitch class ``key`` (``mode`` 1 major, 0 minor), encoded by soundfile (libsndfile's MP3 writer)."""
    import numpy as np
    import soundfile

    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    root = 48 + key  # MIDI note in the octave below middle C
    chord = np.zeros(n)
    for note in (root, root + (4 if mode else 3), root + 7, root + 12):
        freq = 440.0 * 2 ** ((note - 69) / 12)
        chord += sum(np.sin(2 * np.pi * h * freq * t) / h for h in (1, 2, 3))
    signal = 0.08 * chord
    click_t = np.arange(int(0.03 * sample_rate)) / sample_rate
    click = np.sin(2 * np.pi * 1200 * click_t) * np.exp(-click_t / 0.005)
    beat = 0
    while (start := int(round(beat * 60.0 / tempo * sample_rate))) < n:
        end = min(n, start + click.size)
        signal[start:end] += (0.9 if beat % 4 == 0 else 0.5) * click[: end - start]
        beat += 1
    buffer = io.BytesIO()
    soundfile.write(buffer, (signal / max(1.0, np.abs(signal).max())).astype("float32"), sample_rate,
                    format="MP3")
    return buffer.getvalue()


@contextlib.contextmanager
def serve(catalog: DeezerCatalog | None = None, **kwargs: Any):
    """Run a :class:`FakeDeezer` for the duration of a ``with`` block."""
    server = FakeDeezer(catalog or DeezerCatalog(), **kwargs)
    try:
        yield server
    finally:
        server.stop()


if __name__ == "__main__":  # try the collector by hand: python tests/fake_deezer.py
    with serve() as fake:
        print(f"POPDRIVERS_DEEZER_API_BASE={fake.api_base}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
