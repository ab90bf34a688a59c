"""A fake ReccoBeats API on a real loopback HTTP server, built from ReccoBeats' documentation.

What it does, and where that comes from (docs/collect.md, "Sources", lists the pages):

- ``GET /v1/audio-features?ids=...`` (comma-separated or repeated ``ids``; ReccoBeats or Spotify track ids):
  ``{"content": [...]}`` with one object per *known* track, in no particular order (the double shuffles them):
  ``id`` (a ReccoBeats UUID), ``href`` (``https://open.spotify.com/track/<Spotify id>``), ``isrc`` and the eleven
  features (no ``time_signature``). Unknown ids are left out, no placeholder. 0 or more than 40 ids answer 400
  ``{"status": 4004, "errors": [{"message": "size must be between 1 and 40"}]}`` (the shape a client reported).
- ``POST /v1/analysis/audio-features`` (multipart/form-data, field ``audioFile``; MP3, OGG, WAV, AIFF; at most
  5 MB): the nine features without key and mode. A missing field, a file over 5 MB or another format answers 400
  in the same error shape (the documentation gives the limits, not the error bodies: the double's assumption).
- Rate limit: ReccoBeats publishes no figure, only that an excess answers 429 with ``Retry-After``. The double
  allows ``limit`` requests per ``window`` seconds of ``clock`` and answers the excess 429 with the seconds left.

Faults (a status with optional Retry-After, malformed JSON, an entry with an out-of-range value or without
``href``, a dropped connection) are injected per request path, as in tests/fake_spotify.py. Every request and
every uploaded file (name, size, sha256) is logged, so a test can tell exactly what left the client.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import hashlib
import json
import math
import random
import re
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fake_spotify import FakeCatalog, Fault, QuietServer

MAX_IDS = 40
MAX_UPLOAD = 5 * 1024 * 1024
LOOKUP_FEATURES = ("acousticness", "danceability", "energy", "instrumentalness", "key", "liveness", "loudness",
                   "mode", "speechiness", "tempo", "valence")
UPLOAD_FEATURES = tuple(f for f in LOOKUP_FEATURES if f not in ("key", "mode"))
FORMATS = {b"ID3": "mp3", b"OggS": "ogg", b"RIFF": "wav", b"FORM": "aiff"}


def _error(message: str, status: int = 4004) -> dict[str, Any]:
    return {"status": status, "errors": [{"message": message}]}


def _unit(seed: str) -> float:
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:6], "big") / 2 ** 48


def features_for(key: str, names: tuple[str, ...] = LOOKUP_FEATURES) -> dict[str, float | int]:
    """ReccoBeats' own (deterministic, made-up) values for a track or a file: not the Spotify catalogue's."""
    values: dict[str, float | int] = {}
    for name in names:
        u = _unit(f"{key}:{name}")
        if name == "key":
            values[name] = int(u * 12)
        elif name == "mode":
            values[name] = int(u < 0.6)
        elif name == "loudness":
            values[name] = round(-20 + 18 * u, 4)
        elif name == "tempo":
            values[name] = round(70 + 110 * u, 4)
        else:
            values[name] = round(u, 4)
    return values


@dataclass
class RTrack:
    reccobeats_id: str
    spotify_id: str
    isrc: str
    features: dict[str, float | int]


class ReccoBeatsCatalog:
    """The tracks ReccoBeats knows: a deterministic share of a fake Spotify catalogue's, keyed by Spotify id."""

    def __init__(self, spotify: FakeCatalog | None = None, known_share: float = 0.8, seed: int = 0,
                 spotify_ids: list[str] | None = None):
        rng = random.Random(seed)
        ids = list(spotify.tracks) if spotify is not None else list(spotify_ids or [])
        self.tracks: dict[str, RTrack] = {}
        for spotify_id in ids:
            if rng.random() < known_share:
                isrc = spotify.tracks[spotify_id].isrc if spotify is not None else ""
                self.tracks[spotify_id] = RTrack(str(uuid.UUID(int=rng.getrandbits(128), version=4)), spotify_id,
                                                 isrc, features_for(spotify_id))

    def entry(self, track: RTrack) -> dict[str, Any]:
        return {"id": track.reccobeats_id, "href": f"https://open.spotify.com/track/{track.spotify_id}",
                "isrc": track.isrc or None, **track.features}


class FakeReccoBeats:
    """The running server: ``api_base`` (a host root), ``faults``, the request ``log``, the ``uploads``."""

    def __init__(self, catalog: ReccoBeatsCatalog, clock=time.monotonic, limit: int = 30, window: float = 10.0):
        self.catalog, self.clock, self.limit, self.window = catalog, clock, limit, window
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, int]] = []  # (method, path+query, status)
        self.uploads: list[dict[str, Any]] = []  # name, size, sha256 of every file received
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()
        self._shuffle = random.Random(1)
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
        self.httpd.shutdown()
        self.httpd.server_close()

    def requests_to(self, pattern: str, status: int | None = None) -> int:
        with self._lock:
            return sum(1 for _, path, code in self.log if re.search(pattern, path)
                       and (status is None or code == status))

    def ids_asked(self) -> list[list[str]]:
        """The ids of every lookup that got an answer, request by request."""
        with self._lock:
            paths = [path for method, path, code in self.log if method == "GET" and code == 200]
        return [_ids(parse_qs(urlsplit(p).query)) for p in paths]

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.fired < fault.times and re.search(fault.pattern, path):
                    fault.seen += 1
                    if fault.seen > fault.after:
                        fault.fired += 1
                        return fault
        return None

    def _wait_left(self) -> float | None:
        """Count this request in the rolling window; the seconds until it would fit when it is one too many."""
        with self._lock:
            now = self.clock()
            while self._recent and self._recent[0] <= now - self.window:
                self._recent.popleft()
            if len(self._recent) >= self.limit:
                return self._recent[0] + self.window - now
            self._recent.append(now)
            return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None,
                      raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(body).encode()
                with server._lock:
                    server.log.append((self.command, self.path, status))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _misbehave(self, fault: Fault | None) -> bool:
                """Apply a fault that replaces the reply; True when it was sent (or the connection dropped)."""
                if fault is None or fault.kind in ("bad_entry", "no_href"):
                    return False
                if fault.kind == "status":
                    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
                    self._send(fault.status, _error("injected fault", fault.status), headers)
                elif fault.kind == "malformed":
                    self._send(200, None, raw=b'{"content": [{"id": "trunc')
                elif fault.kind == "drop":
                    with server._lock:
                        server.log.append((self.command, self.path, 0))
                    self.close_connection = True
                    self.connection.shutdown(2)
                return True

            def _rate_limited(self) -> bool:
                left = server._wait_left()
                if left is None:
                    return False
                self._send(429, _error("Too many requests", 429), {"Retry-After": str(max(1, math.ceil(left)))})
                return True

            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                fault = server._take_fault(self.path)
                if self._misbehave(fault) or self._rate_limited():
                    return None
                url = urlsplit(self.path)
                if url.path.rstrip("/") != "/v1/audio-features":
                    return self._send(404, _error("Not found", 404))
                ids = _ids(parse_qs(url.query))
                if not 1 <= len(ids) <= MAX_IDS:
                    return self._send(400, _error(f"size must be between 1 and {MAX_IDS}"))
                content = [server.catalog.entry(server.catalog.tracks[i]) for i in ids if i in server.catalog.tracks]
                with server._lock:
                    server._shuffle.shuffle(content)  # rows must be matched on href, not position
                if content and fault is not None and fault.kind == "bad_entry":
                    content[0] = {**content[0], "energy": 7.5}
                if content and fault is not None and fault.kind == "no_href":
                    content[0] = {k: v for k, v in content[0].items() if k != "href"}
                return self._send(200, {"content": content})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                upload = _multipart_file(self.headers.get("Content-Type", ""), body, "audioFile")
                if upload is not None:  # received, whatever the answer: it has left the client
                    with server._lock:
                        server.uploads.append({"name": upload[0], "size": len(upload[1]),
                                               "sha256": hashlib.sha256(upload[1]).hexdigest()})
                fault = server._take_fault(self.path)
                if self._misbehave(fault) or self._rate_limited():
                    return None
                if urlsplit(self.path).path.rstrip("/") != "/v1/analysis/audio-features":
                    return self._send(404, _error("Not found", 404))
                if upload is None:
                    return self._send(400, _error("Required part 'audioFile' is not present."))
                name, data = upload
                if len(data) > MAX_UPLOAD:
                    return self._send(400, _error("Maximum upload size exceeded (5MB)"))
                if not any(data.startswith(magic) for magic in FORMATS):
                    return self._send(400, _error("Unsupported audio format"))
                return self._send(200, features_for(hashlib.sha256(data).hexdigest(), UPLOAD_FEATURES))

        return Handler


def _ids(query: dict[str, list[str]]) -> list[str]:
    """Ids of a query: repeated ``ids`` parameters and comma-separated values both count (the docs allow both)."""
    return [i for value in query.get("ids", []) for i in value.split(",") if i]


def _multipart_file(content_type: str, body: bytes, field: str) -> tuple[str, bytes] | None:
    """(file name, bytes) of the form field ``field`` of a multipart/form-data body, else None."""
    if not content_type.startswith("multipart/form-data"):
        return None
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == field:
            return part.get_filename() or "", part.get_payload(decode=True) or b""
    return None


@contextlib.contextmanager
def serve(catalog: ReccoBeatsCatalog, **kwargs: Any):
    """Run a :class:`FakeReccoBeats` for the duration of a ``with`` block."""
    server = FakeReccoBeats(catalog, **kwargs)
    try:
        yield server
    finally:
        server.stop()


if __name__ == "__main__":  # try it by hand: python tests/fake_reccobeats.py
    with serve(ReccoBeatsCatalog(FakeCatalog())) as fake:
        print(f"POPDRIVERS_RECCOBEATS_API_BASE={fake.api_base}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
