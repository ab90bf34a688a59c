"""Audio files -> canonical track rows: the library side of ``popdrivers analyze``.

:func:`analyze_file` analyses one file, :func:`analyze_files` a batch on a pool of worker processes (one per
core by default) with a per-file time limit and a memory limit per worker; a batch never stops for one bad file:
every failure comes back as an :class:`AudioFailure` with its reason. Results can be kept in a cache file keyed by
the sha256 of each file's content, so a rerun over a large folder analyses only what is new; the cache is
rewritten atomically every few seconds, so a killed run resumes where it was.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from popdrivers.artifacts import sha256_file
from popdrivers.audio.descriptors import DESCRIPTOR_NAMES
from popdrivers.errors import AudioError
from popdrivers.progress import ProgressCallback, null_progress

AUDIO_SUFFIXES = (".mp3", ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".mp4", ".aif",
                  ".aiff", ".wma", ".webm")
# What is analysed of a long file: its first MAX_SECONDS (duration_ms still gives the whole length).
MAX_SECONDS = 600.0
TIMEOUT_SECONDS = 180.0
MEMORY_LIMIT_BYTES = 4 * 2**30
CACHE_FORMAT = 1
# Changes whenever an algorithm or parameter changes what is measured: cached results of another version are redone.
ANALYSIS_VERSION = "2"
CACHE_SAVE_INTERVAL = 5.0


def features_source() -> str:
    """``audio:popdrivers-essentia-<version>``: the ``features_source`` of every analysed row."""
    from popdrivers.audio._extract import extractor_version

    return f"audio:{extractor_version()}"


@dataclass(frozen=True)
class AudioAnalysis:
    """What popdrivers measured from one audio file.

    Physical quantities are on Spotify's scales and names (``tempo`` BPM, ``key`` 0-11 or -1, ``mode`` 1/0,
    ``loudness`` integrated LUFS, ``time_signature`` beats per bar, ``duration_ms``); ``descriptors`` are
    popdrivers' own measures (:data:`popdrivers.audio.DESCRIPTORS`).
    """

    file: str
    sha256: str
    track_name: str
    artist_name: str | None
    album_name: str | None
    tempo: float | None
    key: int
    mode: int
    loudness: float | None
    time_signature: int
    duration_ms: int | None
    descriptors: tuple[tuple[str, float | None], ...]
    analysed_seconds: float
    notes: tuple[str, ...] = ()
    features_source: str = ""
    codec: str = ""
    estimates: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def track_id(self) -> str:
        """``audio:`` + the first 16 hex digits of the content's sha256: stable however the file is named."""
        return f"audio:{self.sha256[:16]}"

    def to_row(self) -> dict[str, Any]:
        """One canonical track row (column names of :mod:`popdrivers.schema`).

        What the sound cannot tell (followers, genre, release date, explicit) is there and empty (unknown), so
        that a model trained with those columns scores the row as it is; fill them in to inform the model.
        """
        row: dict[str, Any] = {
            "track_id": self.track_id, "track_name": self.track_name, "artist_name": self.artist_name,
            "album_name": self.album_name, "release_date": None, "explicit": None, "artist_followers": None,
            "genre": None, "tempo": self.tempo, "key": self.key, "mode": self.mode,
            "loudness": self.loudness, "time_signature": self.time_signature, "duration_ms": self.duration_ms,
        }
        row.update(dict(self.descriptors))
        row.update({"analysed_seconds": self.analysed_seconds, "analysis_notes": "; ".join(self.notes) or None,
                    "features_source": self.features_source, "file": self.file})
        return row

    def to_result(self) -> dict[str, Any]:
        """The worker's result dict this analysis was built from (what the cache keeps; see :meth:`from_result`)."""
        return {"title": self.track_name, "artist": self.artist_name, "album": self.album_name, "tempo": self.tempo,
                "key": self.key, "mode": self.mode, "loudness": self.loudness, "time_signature": self.time_signature,
                "duration_ms": self.duration_ms, **dict(self.descriptors), "analysed_seconds": self.analysed_seconds,
                "notes": list(self.notes), "codec": self.codec, "estimates": self.estimates}

    @classmethod
    def from_result(cls, path: str | os.PathLike[str], sha256: str, result: dict[str, Any],
                    source: str) -> AudioAnalysis:
        """Build from a worker's result dict (or a cached one)."""
        path = Path(path)
        title, artist = result.get("title"), result.get("artist")
        if title is None and artist is None and " - " in path.stem:
            # No tags: a file named "Artist - Title.mp3" says both.
            artist, title = (part.strip() or None for part in path.stem.split(" - ", 1))
        return cls(
            file=str(path), sha256=sha256, track_name=title or path.stem, artist_name=artist,
            album_name=result.get("album"), tempo=result.get("tempo"),
            key=int(result["key"]), mode=int(result["mode"]), loudness=result.get("loudness"),
            time_signature=int(result["time_signature"]), duration_ms=result.get("duration_ms"),
            descriptors=tuple((name, result.get(name)) for name in DESCRIPTOR_NAMES),
            analysed_seconds=float(result["analysed_seconds"]), notes=tuple(result.get("notes") or ()),
            features_source=source, codec=str(result.get("codec", "")), estimates=dict(result.get("estimates") or {}))


@dataclass(frozen=True)
class AudioFailure:
    """A file that could not be analysed and why (the reason says what to do where something can be done)."""

    file: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


def find_audio_files(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[AudioFailure]]:
    """Files to analyse: each named file as given, each folder searched recursively for audio suffixes.

    Returns the files (sorted within a folder, duplicates removed) and the paths that do not exist.
    Hidden files and folders (starting with '.') are skipped in folders.
    """
    found: list[Path] = []
    missing: list[AudioFailure] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            candidates = sorted(
                p for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts))
        elif path.is_file():
            candidates = [path]
        else:
            missing.append(AudioFailure(str(path), "no such file or folder"))
            continue
        for candidate in candidates:
            resolved = candidate.resolve()
            if resolved not in seen:
                seen.add(resolved)
                found.append(candidate)
    return found, missing


class AnalysisCache:
    """Results by content hash, in a JSON file rewritten atomically (at most every few seconds, and on close).

    Entries are used only when they were made by the same extractor with the same settings.
    """

    def __init__(self, path: str | os.PathLike[str] | None, *, source: str, settings: dict[str, Any]):
        self.path = Path(path) if path is not None else None
        self.source = source
        self.settings = settings
        self.entries: dict[str, dict[str, Any]] = {}
        self._dirty = False
        self._saved_at = time.monotonic()
        if self.path is not None and self.path.is_file():
            try:
                stored = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                stored = {}  # a damaged cache is only lost time: it is rebuilt
            if (isinstance(stored, dict) and stored.get("format") == CACHE_FORMAT
                    and stored.get("features_source") == source and stored.get("settings") == settings):
                self.entries = dict(stored.get("results") or {})

    def get(self, sha256: str) -> dict[str, Any] | None:
        return self.entries.get(sha256)

    def put(self, sha256: str, result: dict[str, Any]) -> None:
        self.entries[sha256] = result
        self._dirty = True
        if time.monotonic() - self._saved_at >= CACHE_SAVE_INTERVAL:
            self.save()

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        from popdrivers.artifacts import write_text_atomic

        payload = {"format": CACHE_FORMAT, "features_source": self.source, "settings": self.settings,
                   "results": self.entries}
        write_text_atomic(self.path, json.dumps(payload, separators=(",", ":")))
        self._dirty = False
        self._saved_at = time.monotonic()


def default_jobs() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class AnalysisStream:
    """Analyse files as they arrive, on long-lived workers: :meth:`submit` never blocks, :meth:`results` collects.

    For a crawler that downloads previews one by one: the same time and memory limits and worker replacement as
    :func:`analyze_files` (which is built on it); workers start lazily, up to ``jobs``, and stop on
    :meth:`close` (or leaving the ``with`` block).

    Parameters
    ----------
    jobs
        Worker processes (default: one per core).
    max_seconds, timeout, memory_limit
        As for :func:`analyze_files`.

    Examples
    --------
    >>> with AnalysisStream() as stream:                    # doctest: +SKIP
    ...     stream.submit("track-1", "preview-1.mp3")
    ...     for key, outcome in stream.results(timeout=None):
    ...         print(key, outcome)                         # an AudioAnalysis or an AudioFailure
    """

    def __init__(self, *, jobs: int | None = None, max_seconds: float = MAX_SECONDS, timeout: float = TIMEOUT_SECONDS,
                 memory_limit: int = MEMORY_LIMIT_BYTES):
        from popdrivers.audio._pool import WorkerPool

        self.source = features_source()
        self._pool = WorkerPool(jobs or default_jobs(), timeout=timeout, memory_limit=memory_limit,
                                max_seconds=max_seconds)
        self._done: list[tuple[Any, AudioAnalysis | AudioFailure]] = []

    def __enter__(self) -> AnalysisStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker (what is still pending is dropped)."""
        self._pool.close()

    @property
    def pending(self) -> int:
        """Submitted and not yet returned by :meth:`results`."""
        return self._pool.pending + len(self._done)

    def submit(self, key: Any, path: str | os.PathLike[str], *, sha256: str | None = None) -> None:
        """Queue ``path`` under ``key`` (any hashable); never blocks. ``sha256``: its content hash, if known."""
        path = Path(path)
        if sha256 is None:
            try:
                sha256 = sha256_file(path)
            except OSError as exc:
                self._done.append((key, AudioFailure(str(path), _unreadable(exc))))
                return
        self._pool.submit((key, path, sha256), str(path.resolve()))

    def results(self, timeout: float | None = 0) -> list[tuple[Any, AudioAnalysis | AudioFailure]]:
        """``(key, AudioAnalysis or AudioFailure)`` of what finished; waits up to ``timeout`` seconds for one
        (None: until one finishes; returns at once when nothing is pending)."""
        done, self._done = self._done, []
        if self._pool.pending:
            for outcome in self._pool.poll(0 if done else timeout):
                key, path, digest = outcome.item
                if outcome.result is not None:
                    done.append((key, AudioAnalysis.from_result(path, digest, outcome.result, self.source)))
                else:
                    done.append((key, AudioFailure(str(path), outcome.reason or "analysis failed")))
        return done


def _unreadable(exc: OSError) -> str:
    return f"cannot read the file ({exc.strerror or exc})"


def analyze_files(
    paths: Sequence[str | os.PathLike[str]], *, jobs: int | None = None, cache: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None, max_seconds: float = MAX_SECONDS, timeout: float = TIMEOUT_SECONDS,
    memory_limit: int = MEMORY_LIMIT_BYTES,
) -> tuple[Any, list[AudioFailure]]:
    """Analyse audio files (folders searched recursively) on a pool of worker processes.

    Parameters
    ----------
    paths
        Files and folders. A named file is tried whatever its suffix; in folders, files with an audio suffix
        (:data:`AUDIO_SUFFIXES`).
    jobs
        Worker processes (default: one per core).
    cache
        JSON file of earlier results by content hash (created if missing): files already analysed with the
        same extractor and settings are not analysed again. None: no cache.
    progress
        ``(done, total, message)`` callback.
    max_seconds
        What is analysed of a long file: its first ``max_seconds`` (``duration_ms`` is still the whole length
        when the file's header gives it, and the row's notes say what was analysed).
    timeout
        Wall-time limit per file in seconds; a worker that exceeds it is killed and replaced.
    memory_limit
        Address-space limit of each worker in bytes (``RLIMIT_AS``).

    Returns
    -------
    tracks, failures
        The canonical track table (:func:`analyses_to_table`: one row per file analysed, in the order found;
        files with identical content are one track) and one :class:`AudioFailure` per file that could not be
        analysed, with its reason. The table is empty (no columns) when nothing could be analysed.
    """
    import pandas as pd

    analyses, failures = analyze_each(paths, jobs=jobs, cache=cache, progress=progress, max_seconds=max_seconds,
                                      timeout=timeout, memory_limit=memory_limit)
    if not analyses:
        return pd.DataFrame(), failures
    table, _report = analyses_to_table(analyses)
    return table, failures


def analyze_each(
    paths: Sequence[str | os.PathLike[str]], *, jobs: int | None = None, cache: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None, max_seconds: float = MAX_SECONDS, timeout: float = TIMEOUT_SECONDS,
    memory_limit: int = MEMORY_LIMIT_BYTES,
) -> tuple[list[AudioAnalysis], list[AudioFailure]]:
    """:func:`analyze_files`, returning one :class:`AudioAnalysis` per file analysed (in the order found)."""
    progress = progress or null_progress
    files, failures = find_audio_files(paths)
    source = features_source()
    store = AnalysisCache(cache, source=source,
                          settings={"max_seconds": float(max_seconds), "analysis": ANALYSIS_VERSION})
    results: dict[int, AudioAnalysis] = {}
    pending: list[tuple[int, Path, str]] = []
    total = len(files)
    failed_files: dict[int, AudioFailure] = {}
    for index, path in enumerate(files):
        try:
            digest = sha256_file(path)
        except OSError as exc:
            failed_files[index] = AudioFailure(str(path), _unreadable(exc))
            continue
        cached = store.get(digest)
        if cached is not None:
            results[index] = AudioAnalysis.from_result(path, digest, cached, source)
        else:
            pending.append((index, path, digest))
    done = total - len(pending)
    progress(done, total, f"analysing: {done} from the cache" if done else "analysing")
    if pending:
        try:
            with AnalysisStream(jobs=min(jobs or default_jobs(), len(pending)), max_seconds=max_seconds,
                                timeout=timeout, memory_limit=memory_limit) as stream:
                for index, path, digest in pending:
                    stream.submit(index, path, sha256=digest)
                while stream.pending:
                    for index, outcome in stream.results(timeout=None):
                        if isinstance(outcome, AudioAnalysis):
                            store.put(outcome.sha256, outcome.to_result())
                            results[index] = outcome
                        else:
                            failed_files[index] = outcome
                        done += 1
                        progress(done, total, f"analysing: {Path(outcome.file).name}")
        finally:
            store.save()
    failures += [failed_files[i] for i in sorted(failed_files)]
    return [results[i] for i in sorted(results)], failures


def analyze_file(path: str | os.PathLike[str], *, max_seconds: float = MAX_SECONDS, timeout: float = TIMEOUT_SECONDS,
                 memory_limit: int = MEMORY_LIMIT_BYTES) -> AudioAnalysis:
    """Analyse one audio file (in a child process with time and memory limits).

    Raises
    ------
    AudioError
        When the file cannot be analysed; the message names the file and the reason.
    """
    if not Path(path).is_file():
        raise AudioError(f"{path}: no such file")
    analyses, failures = analyze_each([path], jobs=1, max_seconds=max_seconds, timeout=timeout,
                                      memory_limit=memory_limit)
    if failures:
        raise AudioError(str(failures[0]))
    return analyses[0]


def analyses_to_table(analyses: Sequence[AudioAnalysis]) -> Any:
    """The canonical track table of ``analyses`` and its read report (:func:`popdrivers.schema.check_tracks`).

    Two files with the same audio content have the same ``track_id`` and are one track: validation keeps the
    first and reports the merge.
    """
    import pandas as pd

    from popdrivers import schema

    rows = [a.to_row() for a in analyses]
    frame = pd.DataFrame(rows)
    return schema.check_tracks(frame, require_popularity=False, source="analysed audio")
