"""ReccoBeats as a feature source: Spotify-style audio features by Spotify track id, and (opt-in) for an audio file.

ReccoBeats (https://reccobeats.com) is a free music database with no API key. What this module relies on, from
its documentation (read November 2026; docs/collect.md lists the pages):

- ``GET /v1/audio-features?ids=ID,ID,...`` (ids comma-separated or repeated) takes ReccoBeats ids or **Spotify
  track ids** and answers ``{"content": [...]}``: one object per track it knows, with ``id`` (its own UUID, not
  the id asked for), ``href`` (``https://open.spotify.com/track/<Spotify id>``: the only link back to the request),
  acousticness, danceability, energy, instrumentalness, key, liveness, loudness, mode, speechiness, tempo,
  valence. No ``time_signature``. Ids it does not know are **left out** of ``content`` (no null placeholder), so
  rows are matched on ``href``, never on position. At most **40 ids** per request (more answers 400
  ``size must be between 1 and 40``).
- ``POST /v1/analysis/audio-features`` takes an uploaded file (multipart/form-data, field ``audioFile``; MP3,
  OGG/Vorbis, WAV, AIFF/AIFC; at most **5 MB**; only the first **30 seconds** are analysed) and answers the nine
  0-1 / dB / BPM features above without key and mode.
- Rate limits are internal and unpublished: an excess answers **429 with Retry-After**. popdrivers paces itself
  at :data:`QUOTA` (2 requests per second, its own choice) and waits out ``Retry-After``.
- Status codes: 200, 400 (malformed or invalid parameters), 403, 429, 500.

Lookups fill ``features_source = "reccobeats"``; an uploaded file's features are ``"reccobeats:upload"`` (values a
service computed from 30 seconds of a recording: another family than its catalogue's, never mixed silently).

**A user's audio never leaves the machine unless they ask.** :func:`analyze_file` sends nothing unless called
with ``consent=True``; :data:`UPLOAD_WARNING` says where the file goes. The CLI asks for ``--service
reccobeats`` and prints the warning; the app asks before it calls this.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from popdrivers import registry
from popdrivers.errors import ApiUnavailable, ConsentRequired, InputError, PopdriversError
from popdrivers.sources.api_calls import ApiError, EventSink, HttpApi, MalformedReply, RetryPolicy, as_float, as_int

__all__ = ["BATCH", "DEFAULT_API_BASE", "FEATURES_SOURCE", "LOOKUP_FEATURES", "UPLOAD_FEATURES", "UPLOAD_MAX_BYTES",
           "UPLOAD_SOURCE", "UPLOAD_WARNING", "ConsentRequired", "Lookup", "LookupStep", "ReccoBeatsApi",
           "UploadAnalysis", "analyze_file", "analyze_files", "resolve_api_base", "spotify_id_from_href",
           "upload_warning"]

DEFAULT_API_BASE = "https://api.reccobeats.com"
API_BASE_ENV = "POPDRIVERS_RECCOBEATS_API_BASE"
LOOKUP_PATH = "/v1/audio-features"
UPLOAD_PATH = "/v1/analysis/audio-features"
BATCH = 40  # ids per lookup: the API refuses more ("size must be between 1 and 40")
UPLOAD_MAX_BYTES = 5 * 1024 * 1024
UPLOAD_ANALYSED_SECONDS = 30
QUOTA = (10, 5.0)  # popdrivers' own pace (ReccoBeats publishes no figure): 2 requests per second
FEATURES_SOURCE = "reccobeats"
UPLOAD_SOURCE = "reccobeats:upload"
LOOKUP_FEATURES = ("danceability", "energy", "loudness", "speechiness", "acousticness", "instrumentalness",
                   "liveness", "valence", "tempo", "key", "mode")
UPLOAD_FEATURES = tuple(f for f in LOOKUP_FEATURES if f not in ("key", "mode"))
INTEGER_FEATURES = ("key", "mode")
_SPOTIFY_TRACK = re.compile(r"^https?://open\.spotify\.com/(?:intl-[a-z-]+/)?track/([0-9A-Za-z]{22})(?:[/?#].*)?$")
# What a file's first bytes say it is (ReccoBeats takes these formats; nothing else is sent).
_FORMATS = (("MP3", lambda b: b[:3] == b"ID3" or (len(b) > 1 and b[0] == 0xFF and b[1] & 0xE0 == 0xE0)),
            ("OGG", lambda b: b[:4] == b"OggS"),
            ("WAV", lambda b: b[:4] in (b"RIFF", b"RIFX") and b[8:12] == b"WAVE"),
            ("AIFF", lambda b: b[:4] == b"FORM" and b[8:12] in (b"AIFF", b"AIFC")))


def upload_warning(api_base: str = DEFAULT_API_BASE) -> str:
    """The plain warning shown before a file is sent: that it leaves the machine, where to, and what is kept."""
    return (f"This sends the audio file to ReccoBeats, a third-party service ({api_base.rstrip('/')}{UPLOAD_PATH}): "
            "the recording leaves this machine and popdrivers cannot take it back or control what ReccoBeats keeps. "
            f"ReccoBeats analyses its first {UPLOAD_ANALYSED_SECONDS} seconds (files up to 5 MB). Without "
            "--service reccobeats (or the app's consent) nothing is sent: popdrivers analyses audio on this machine.")


UPLOAD_WARNING = upload_warning()


def resolve_api_base(api_base: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The API host root: explicit value, else ``POPDRIVERS_RECCOBEATS_API_BASE``, else ReccoBeats' own."""
    environ = os.environ if environ is None else environ
    base = (api_base or environ.get(API_BASE_ENV) or DEFAULT_API_BASE).rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query:
        raise InputError(f"ReccoBeats API base '{base}' is not an http(s) host root without a path (e.g. "
                         f"{DEFAULT_API_BASE})")
    return base


def spotify_id_from_href(href: Any) -> str | None:
    """The Spotify track id of a ReccoBeats ``href`` (``https://open.spotify.com/track/<id>``), else None."""
    match = _SPOTIFY_TRACK.match(href) if isinstance(href, str) else None
    return match[1] if match else None


def _checked_features(entry: Mapping[str, Any], names: Sequence[str]) -> tuple[dict[str, float | int], list[str]]:
    """The named features of a reply object, each checked against the registry's range; and what was wrong."""
    values: dict[str, float | int] = {}
    problems: list[str] = []
    for name in names:
        raw = entry.get(name)
        value = as_int(raw) if name in INTEGER_FEATURES else as_float(raw)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            problems.append(f"{name} is {raw!r}, not a number")
            continue
        spec = registry.spec(name)
        if (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high):
            problems.append(f"{name} {value} is outside {spec.low}..{spec.high}")
            continue
        values[name] = value
    return values, problems


@dataclass(frozen=True)
class Lookup:
    """What one lookup request answered for the ids it asked.

    Attributes
    ----------
    found : dict
        Spotify track id -> its features (the names of :data:`LOOKUP_FEATURES`).
    unknown : tuple of str
        Ids asked that the reply left out (ReccoBeats has no features for them).
    malformed : dict
        Spotify track id -> why its object was unusable (skipped; a rerun asks again).
    """

    found: dict[str, dict[str, float | int]]
    unknown: tuple[str, ...]
    malformed: dict[str, str] = field(default_factory=dict)


class ReccoBeatsApi(HttpApi):
    """Plain HTTP (``requests``) to the ReccoBeats API under the shared retry loop and a pacer.

    Parameters as for :class:`~popdrivers.sources.api_calls.HttpApi`; ``api_base`` defaults to ReccoBeats' host and
    ``quota`` to popdrivers' own pace (:data:`QUOTA`).
    """

    def __init__(self, api_base: str = DEFAULT_API_BASE, *, policy: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 on_event: EventSink | None = None, quota: tuple[int, float] = QUOTA):
        super().__init__("ReccoBeats API", api_base, policy=policy, sleep=sleep, clock=clock, on_event=on_event,
                         quota=quota)

    # ----- one HTTP exchange
    def _check(self, reply: requests.Response) -> Any:
        self.check_status(reply, _error_message)
        try:
            return reply.json()
        except ValueError:
            raise MalformedReply("reply is not valid JSON") from None

    def _get(self, url: str, params: Mapping[str, Any]) -> Any:
        with self.connection_retried():
            reply = self.http.get(url, params=params, headers={"Accept": "application/json"},
                                  timeout=self.policy.timeout)
        return self._check(reply)

    def _post_file(self, url: str, name: str, data: bytes) -> Any:
        with self.connection_retried():
            reply = self.http.post(url, files={"audioFile": (name, data, "application/octet-stream")},
                                   headers={"Accept": "application/json"}, timeout=max(self.policy.timeout, 60.0))
        return self._check(reply)

    # ----- endpoints
    def audio_features(self, spotify_ids: Sequence[str]) -> Lookup:
        """Features of up to :data:`BATCH` Spotify track ids (one request).

        Raises
        ------
        MalformedReply
            The reply is not ``{"content": [...]}`` (the batch is skipped; a rerun asks again).
        ApiError
            A 4xx refusal (e.g. 400 for a batch the API will not take).
        ApiUnavailable
            Retries exhausted (429 beyond the policy, 5xx, no connection).
        """
        ids = list(dict.fromkeys(spotify_ids))
        if not 1 <= len(ids) <= BATCH:
            raise ValueError(f"a ReccoBeats lookup takes 1 to {BATCH} ids, not {len(ids)}")
        reply = self.runner.call(f"ReccoBeats audio features of {len(ids)} tracks from {ids[0]}", self._get,
                                 f"{self.api_base}{LOOKUP_PATH}", {"ids": ",".join(ids)})
        content = reply.get("content") if isinstance(reply, dict) else None
        if not isinstance(content, list):
            raise MalformedReply("reply has no content list")
        asked = set(ids)
        found: dict[str, dict[str, float | int]] = {}
        malformed: dict[str, str] = {}
        for entry in content:
            track_id = spotify_id_from_href(entry.get("href")) if isinstance(entry, dict) else None
            if track_id not in asked:
                continue  # no href to match, or a track not asked for: cannot be attributed to a request
            values, problems = _checked_features(entry, LOOKUP_FEATURES)  # type: ignore[arg-type]
            if problems:
                malformed[track_id] = "; ".join(problems)  # type: ignore[index]
            else:
                found[track_id] = values  # type: ignore[index]
        unknown = tuple(i for i in ids if i not in found and i not in malformed)
        return Lookup(found, unknown, malformed)

    def analyze_upload(self, name: str, data: bytes) -> dict[str, float | int]:
        """The nine features ReccoBeats computes for an uploaded file (its first 30 seconds).

        Raises
        ------
        ApiError
            A refusal (400: format, size or a missing file field).
        MalformedReply
            A 200 reply without the features.
        ApiUnavailable
            Retries exhausted.
        """
        reply = self.runner.call(f"ReccoBeats analysis of {name}", self._post_file, f"{self.api_base}{UPLOAD_PATH}",
                                 name, data)
        if not isinstance(reply, dict):
            raise MalformedReply("reply is not a JSON object")
        values, problems = _checked_features(reply, UPLOAD_FEATURES)
        if problems:
            raise MalformedReply("; ".join(problems))
        return values


def _error_message(reply: requests.Response) -> str:
    """The message of an error reply (``{"status": ..., "errors": [{"message": ...}]}`` or text), shortened."""
    try:
        body = reply.json()
    except ValueError:
        return reply.text[:200]
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            messages = [str(e.get("message")) for e in errors if isinstance(e, dict) and e.get("message")]
            if messages:
                return "; ".join(messages)[:200]
        for key in ("message", "error"):
            if isinstance(body.get(key), str):
                return body[key][:200]
    return str(body)[:200]


def batches(ids: Iterable[str], size: int = BATCH) -> Iterable[list[str]]:
    """``ids`` in lists of at most ``size`` (the order kept, repeats dropped)."""
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), size):
        yield unique[start:start + size]


# ----- one file, opt-in
@dataclass(frozen=True)
class UploadAnalysis:
    """ReccoBeats' features for one uploaded file.

    Attributes
    ----------
    file : str
        The path analysed.
    features : dict
        The names of :data:`UPLOAD_FEATURES`.
    sent_bytes : int
        How much left the machine.
    destination : str
        The URL it was sent to.
    """

    file: str
    features: dict[str, float | int]
    sent_bytes: int
    destination: str

    def to_row(self) -> dict[str, Any]:
        """One canonical track row: ``file``, ``track_name`` (the file name), the features, their source."""
        return {"file": self.file, "track_id": f"file:{Path(self.file).name}", "track_name": Path(self.file).stem,
                **self.features, "features_source": UPLOAD_SOURCE}


def sniff_format(data: bytes) -> str | None:
    """'MP3', 'OGG', 'WAV' or 'AIFF' from a file's first bytes, else None."""
    return next((name for name, test in _FORMATS if test(data[:16])), None)


def check_upload(path: str | os.PathLike[str]) -> tuple[Path, bytes]:
    """The file's bytes if ReccoBeats can take it; else :class:`InputError` naming the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    size = path.stat().st_size
    if size > UPLOAD_MAX_BYTES:
        raise InputError(f"{path}: {size / 1e6:.1f} MB is more than ReccoBeats takes (5 MB): it analyses only the "
                         f"first {UPLOAD_ANALYSED_SECONDS} s, so send a 30-second excerpt (e.g. ffmpeg -t 30)")
    if size == 0:
        raise InputError(f"{path}: the file is empty")
    data = path.read_bytes()
    if sniff_format(data) is None:
        raise InputError(f"{path}: not an MP3, OGG/Vorbis, WAV or AIFF file (ReccoBeats takes only those): convert "
                         "it first, or analyse it on this machine with `popdrivers analyze` (no --service)")
    return path, data


def analyze_file(path: str | os.PathLike[str], *, consent: bool, api_base: str | None = None,
                 policy: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 notify: Callable[[str], None] | None = None) -> UploadAnalysis:
    """Send one audio file to ReccoBeats and return the features it computes (opt-in: the audio leaves the machine).

    Parameters
    ----------
    path : path-like
        MP3, OGG/Vorbis, WAV or AIFF, at most 5 MB (ReccoBeats analyses its first 30 s).
    consent : bool
        Must be True: the user asked for the file to be sent (the CLI's ``--service reccobeats``, the app's
        confirmation). False sends nothing and raises :class:`ConsentRequired`.
    api_base : str, optional
        Host root; default ``POPDRIVERS_RECCOBEATS_API_BASE`` else ``https://api.reccobeats.com``.
    policy : RetryPolicy, optional
    sleep : callable
        Every wait (429 Retry-After, backoff); injectable for tests.
    notify : callable, optional
        Receives :func:`upload_warning` before anything is sent.

    Returns
    -------
    UploadAnalysis

    Raises
    ------
    ConsentRequired
        ``consent`` is not True (nothing was sent).
    InputError
        The file is missing, empty, too large or not a format ReccoBeats takes (nothing was sent), or
        ReccoBeats refused it (400).
    ApiUnavailable
        ReccoBeats kept answering 429 or 5xx, or could not be reached.
    """
    base = resolve_api_base(api_base)
    if consent is not True:
        raise ConsentRequired(f"{os.fspath(path)} was not sent: sending audio to ReccoBeats needs the user's consent "
                              "(--service reccobeats, or the app's confirmation). " + upload_warning(base))
    path, data = check_upload(path)
    if notify is not None:
        notify(upload_warning(base))
    api = ReccoBeatsApi(base, policy=policy, sleep=sleep)
    try:
        features = api.analyze_upload(path.name, data)
    except ApiError as exc:
        raise InputError(f"{path}: ReccoBeats refused the file ({exc})") from None
    except MalformedReply as exc:
        raise PopdriversError(f"{path}: ReccoBeats' reply has no usable features ({exc}); try again later") from None
    return UploadAnalysis(str(path), features, len(data), f"{base}{UPLOAD_PATH}")


def analyze_files(paths: Sequence[str | os.PathLike[str]], *, consent: bool, api_base: str | None = None,
                  policy: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                  notify: Callable[[str], None] | None = None
                  ) -> tuple[list[UploadAnalysis], list[tuple[str, str]]]:
    """Send each named file to ReccoBeats (opt-in); a file it cannot take is listed with its reason, the rest go on.

    Only files are taken, never folders: sending a whole folder by mistake would send a library. The warning
    (:func:`upload_warning`) goes to ``notify`` once, before the first file is sent; nothing is sent without
    ``consent=True``. When ReccoBeats stays unreachable or rate limited for one file, the remaining files are not
    sent (each is listed as a failure saying so).

    Returns
    -------
    (analyses, failures)
        The analysed files in the order given, and ``(file, reason)`` for each one not analysed.

    Raises
    ------
    ConsentRequired
        ``consent`` is not True (nothing was sent).
    InputError
        A folder was named (nothing was sent).
    """
    base = resolve_api_base(api_base)
    if consent is not True:
        raise ConsentRequired("nothing was sent: sending audio to ReccoBeats needs the user's consent (--service "
                              "reccobeats, or the app's confirmation). " + upload_warning(base))
    folders = [os.fspath(p) for p in paths if Path(p).is_dir()]
    if folders:
        raise InputError(f"{folders[0]} is a folder: with --service reccobeats name each file to send (a folder "
                         "could send a whole library); nothing was sent")
    if notify is not None:
        notify(upload_warning(base))
    analyses: list[UploadAnalysis] = []
    failures: list[tuple[str, str]] = []
    for position, path in enumerate(paths):
        name = os.fspath(path)
        try:
            analyses.append(analyze_file(path, consent=True, api_base=base, policy=policy, sleep=sleep))
        except ApiUnavailable as exc:  # the service is down or keeps refusing: stop sending
            failures.append((name, str(exc)))
            failures += [(os.fspath(p), "not sent: ReccoBeats was unavailable for an earlier file")
                         for p in paths[position + 1:]]
            break
        except PopdriversError as exc:
            failures.append((name, str(exc).removeprefix(f"{name}: ")))
    return analyses, failures


# ----- a crawl step: features for the tracks a Spotify crawl has none for
class LookupStep:
    """For each crawled artist: its tracks without features, looked up in ReccoBeats in batches of :data:`BATCH`.

    Used by ``popdrivers collect --audio-features reccobeats`` (Spotify crawls: ReccoBeats takes Spotify track
    ids). Each batch's answer commits in one checkpoint, in the crawl's audio table: a found track gets its
    features (``features_source = reccobeats``), an id the reply leaves out is recorded as unknown to ReccoBeats
    (reported, not asked again by a rerun); an object with unusable values, or a malformed or refused reply, is
    logged and skipped (asked again by the next run). Tracks with Spotify's own features are never asked. When
    ReccoBeats stays unavailable (retries exhausted) it is not asked again in this run, and the crawl goes on.

    Parameters
    ----------
    api : ReccoBeatsApi
    session : CrawlSession
        The crawl's store, log and counters (requests counted under ``reccobeats_``).
    skip : set of str, optional
        Tracks the crawl's own steps skipped in this run (their own features are asked again by the next run,
        so they are not looked up now).
    """

    SERVICE = FEATURES_SOURCE
    PREFIX = "reccobeats_"

    def __init__(self, api: ReccoBeatsApi, session: Any, skip: set[str] | None = None):
        self.api, self.session = api, session
        self.store, self.log = session.store, session.log
        self.skipped: set[str] = set()
        self.crawl_skipped = skip if skip is not None else set()
        self.unavailable: str | None = None  # why ReccoBeats stopped being asked in this run
        session.attach(api.runner, self.PREFIX)

    def __call__(self, artist_id: str) -> None:
        if self.unavailable is not None:
            return
        pending = [t for t in dict.fromkeys(self.store.audio_to_fill(artist_id, self.SERVICE))
                   if t not in self.skipped and t not in self.crawl_skipped]
        for batch in batches(pending):
            try:
                lookup = self.api.audio_features(batch)
            except ApiUnavailable as exc:
                # A third-party service down does not stop the crawl: it is not asked again in this run, and
                # the next run asks about the tracks it left.
                self.unavailable = str(exc)
                self.log({"event": "reccobeats_unavailable", "reason": self.unavailable})
                return
            except (MalformedReply, ApiError) as exc:
                self.session.skip("reccobeats features", f"ReccoBeats: {exc}", track_ids=batch)
                self.skipped.update(batch)
                continue
            for track_id, reason in lookup.malformed.items():
                self.session.skip("reccobeats features", f"ReccoBeats: {reason}", track_id=track_id)
                self.skipped.add(track_id)
            rows = [{"track_id": t, "available": 1, "source": self.SERVICE, **f} for t, f in lookup.found.items()]
            rows += [{"track_id": t, "available": 0, "source": self.SERVICE} for t in lookup.unknown]
            with self.store.transaction():
                self.store.put_audio(rows)
                for key, n in (("found", len(lookup.found)), ("unknown", len(lookup.unknown))):
                    self.store.set_meta(self.PREFIX + key, self.session.counter(self.PREFIX + key) + n)
                self.session.checkpoint_stats()
            if lookup.unknown:
                self.log({"event": "reccobeats_unknown", "track_ids": list(lookup.unknown)})

    def summary(self) -> dict[str, Any]:
        """What ReccoBeats gave this crawl (counts over all its runs, for crawl.json and the CLI)."""
        found, unknown = (self.session.counter(self.PREFIX + k) for k in ("found", "unknown"))
        return {"service": self.SERVICE, "asked": found + unknown, "found": found, "unknown": unknown,
                "skipped": len(self.skipped), "requests": self.session.counter(self.PREFIX + "requests"),
                "rate_limit_waits": self.session.counter(self.PREFIX + "rate_limit_waits"),
                "unavailable": self.unavailable}
