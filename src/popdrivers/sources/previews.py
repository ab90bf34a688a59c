"""Track previews, measured: fetched right after the track reply and analysed by :mod:`popdrivers.audio` while the
crawl goes on (``popdrivers collect --source deezer --audio``).

Deezer's track object carries a ``preview``: a signed link to a 30-second MP3 on its CDN that expires within
minutes. The collector never stores the link, only what it measured:

1. right after a track's reply is committed, its link goes to a small pool of download threads
   (:class:`PreviewDownloader`; the CDN is another host, outside the API quota, so downloads do not slow the
   paced API calls);
2. the bytes are written, atomically, to a spool folder inside the crawl folder, then analysed by
   :mod:`popdrivers.audio`'s worker processes (:class:`AnalysisQueue`, one per core by default);
3. the main thread collects finished analyses between API calls and commits each outcome in the crawl store
   (``analysed`` with the features, ``missing``, ``failed`` with the reason); the spooled file is then deleted,
   or moved to ``--keep-audio DIR``.

At most ``backlog`` previews are in flight: when analysis is slower than the API quota allows, the crawl waits
for the pool instead of piling up audio in memory or on disk; when it is faster, the quota sets the pace.

**Resuming.** A preview analysed is never fetched again (its outcome is in the store). A process killed with
previews in flight loses nothing analysed; a preview already downloaded is analysed from the spool by the next
run without a new download; the others get a fresh link from the track endpoint (the old one has expired).

**Refused links.** A download answered 403, 404 or 410 (an expired or refused link) gets one fresh link from the
track endpoint; refused again, the preview is recorded as failed with the status. A track whose reply has no
link is recorded as missing: nothing is invented. Transient failures (5xx, dropped connections after the retries)
are logged and asked again by the next run.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import math
import os
import queue
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from popdrivers.artifacts import write_bytes_atomic
from popdrivers.errors import ApiUnavailable, InputError
from popdrivers.sources.api_calls import ApiError, EventSink, MalformedReply, RequestRunner, Retry, RetryPolicy
from popdrivers.sources.crawl import CrawlSession
from popdrivers.sources.crawl_store import AUDIO_FEATURE_COLUMNS, INTEGER_FEATURES

__all__ = ["PREVIEW_SOURCE_PREFIX", "REFUSED_STATUSES", "AnalysisQueue", "PreviewCollector", "PreviewDownloader",
           "PreviewRefused", "PreviewReport", "apply_previews", "measured_features", "preview_report"]

SPOOL_NAME = ".previews"  # inside the crawl folder: downloaded, not yet analysed (deleted once analysed)
PREVIEW_SOURCE_PREFIX = "audio:deezer-preview:"
REFUSED_STATUSES = (403, 404, 410)  # an expired, forged or withdrawn link: worth one fresh link
MAX_PREVIEW_BYTES = 10 * 1024 * 1024  # a 30 s MP3 is about 0.5 MB; a reply far larger is not a preview
DOWNLOAD_THREADS = 4
# Columns that describe the file, not the sound: never written into the crawl's audio features.
_NOT_FEATURES = frozenset({"duration_ms", "file", "track_name", "artist_name", "features_source", "track_id"})


class PreviewRefused(Exception):
    """The CDN refused the link (403, 404, 410): expired, forged or withdrawn."""

    def __init__(self, status: int):
        super().__init__(f"HTTP {status}")
        self.status = status


# ----------------------------------------------------------------------------------------------- downloading
class PreviewDownloader:
    """GET preview links (any http(s) host) under a retry policy: 429 waits ``Retry-After``, 5xx and dropped
    connections back off, 403/404/410 raise :class:`PreviewRefused`. Safe to call from several threads (each has
    its own HTTP session and request runner; their counters are summed by :attr:`requests` / :attr:`retries`)."""

    def __init__(self, policy: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 on_event: EventSink | None = None, max_bytes: int = MAX_PREVIEW_BYTES):
        self.policy = policy or RetryPolicy()
        self.sleep, self.on_event, self.max_bytes = sleep, on_event, max_bytes
        self._local = threading.local()
        self._runners: list[RequestRunner] = []
        self._lock = threading.Lock()

    def _runner(self) -> tuple[RequestRunner, requests.Session]:
        local = self._local
        if not hasattr(local, "runner"):
            local.runner = RequestRunner("preview CDN", self.policy, self.sleep, self.on_event)
            local.http = requests.Session()
            with self._lock:
                self._runners.append(local.runner)
        return local.runner, local.http

    @property
    def requests(self) -> int:
        with self._lock:
            return sum(r.stats.requests for r in self._runners)

    @property
    def retries(self) -> int:
        with self._lock:
            return sum(r.stats.retries for r in self._runners)

    def fetch(self, url: str) -> bytes:
        """The bytes at ``url``.

        Raises
        ------
        PreviewRefused
            403, 404 or 410.
        ApiUnavailable
            Retries exhausted (5xx, 429, connection errors).
        MalformedReply
            Another 4xx, an empty body, or more than ``max_bytes``.
        """
        if urlsplit(url).scheme not in ("http", "https"):
            raise MalformedReply(f"preview link is not an http(s) URL ({url[:40]}...)")
        runner, http = self._runner()
        return runner.call("preview download", self._attempt, http, url)

    def _attempt(self, http: requests.Session, url: str) -> bytes:
        try:
            with http.get(url, timeout=self.policy.timeout, stream=True) as reply:
                if reply.status_code in REFUSED_STATUSES:
                    raise PreviewRefused(reply.status_code)
                if reply.status_code == 429:
                    raise Retry("HTTP 429 rate limited", wait=_seconds(reply.headers.get("Retry-After")),
                                rate_limited=True)
                if reply.status_code >= 500:
                    raise Retry(f"HTTP {reply.status_code}")
                if reply.status_code >= 400:
                    raise MalformedReply(f"preview download answered HTTP {reply.status_code}")
                chunks, size = [], 0
                for chunk in reply.iter_content(1 << 16):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise MalformedReply(f"preview larger than {self.max_bytes // (1024 * 1024)} MB")
                    chunks.append(chunk)
        except requests.exceptions.RequestException as exc:
            raise Retry(f"{type(exc).__name__}: connection dropped or timed out") from None
        data = b"".join(chunks)
        if not data:
            raise MalformedReply("preview download was empty")
        return data


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------------- analysing
class AnalysisQueue:
    """Audio files analysed by :mod:`popdrivers.audio`'s long-lived worker processes while the caller goes on.

    :meth:`submit` never blocks; :meth:`results` returns what has finished as ``(key, outcome)`` pairs, where
    ``outcome`` is ``{"row": the canonical row}`` or ``{"error": reason}``. The analyser's time and memory limits
    apply to every file; a file that fails costs only itself.

    A background thread owns a :class:`popdrivers.audio.AnalysisStream`: it hands each file to the stream as it
    arrives and polls the stream often (the stream dispatches work and enforces its time limit when polled), so
    the workers stay busy while the crawl waits for its quota. Its workers read their tasks from a pipe: they end
    when this process does.

    Parameters
    ----------
    jobs : int, optional
        Worker processes (default: one per core).
    """

    POLL_SECONDS = 0.2

    def __init__(self, jobs: int | None = None):
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self._in: queue.Queue[tuple[Any, Path] | None] = queue.Queue()
        self._out: queue.Queue[tuple[Any, dict[str, Any]]] = queue.Queue()
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        """Files submitted whose outcome has not been returned by :meth:`results` yet."""
        return self._pending

    def submit(self, key: Any, path: Path) -> None:
        if self._closed:
            raise RuntimeError("the analysis queue is closed")
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="preview-analysis", daemon=True)
            self._thread.start()
        self._pending += 1
        self._in.put((key, Path(path)))

    def results(self, timeout: float | None = 0.0) -> list[tuple[Any, dict[str, Any]]]:
        """Outcomes finished so far; waits up to ``timeout`` seconds for the first (None: until one arrives)."""
        out: list[tuple[Any, dict[str, Any]]] = []
        if self._pending == 0:
            return out
        try:
            out.append(self._out.get(timeout=timeout) if timeout != 0 else self._out.get_nowait())
        except queue.Empty:
            return out
        while True:
            try:
                out.append(self._out.get_nowait())
            except queue.Empty:
                break
        self._pending -= len(out)
        return out

    def close(self, wait: bool = True) -> None:
        """Stop the workers (``wait``: after the thread has stopped them); files not finished are dropped."""
        self._closed = True
        self._in.put(None)
        if wait and self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        inside: set[Any] = set()  # keys handed to the stream, outcome not out yet
        broken: str | None = None  # the analyser cannot run at all: every file says why
        stream = None
        try:
            from popdrivers.audio import AnalysisStream

            stream = AnalysisStream(jobs=self.jobs)
        except Exception as exc:  # noqa: BLE001 (reported per file)
            broken = f"the audio analyser cannot start ({type(exc).__name__}: {exc})"
        try:
            while True:
                try:  # wait for work only when nothing is being analysed
                    item = self._in.get(timeout=None if not inside else self.POLL_SECONDS / 4)
                except queue.Empty:
                    item = ()
                while item != ():
                    if item is None:
                        return
                    key, path = item
                    if broken is not None:
                        self._out.put((key, {"error": broken}))
                    else:
                        inside.add(key)
                        stream.submit(key, path)  # type: ignore[union-attr]
                    try:
                        item = self._in.get_nowait()
                    except queue.Empty:
                        item = ()
                if not inside:
                    continue
                try:
                    finished = stream.results(timeout=self.POLL_SECONDS)  # type: ignore[union-attr]
                except Exception as exc:  # noqa: BLE001 (e.g. its workers could not start)
                    broken = f"the audio analyser stopped ({type(exc).__name__}: {exc})"
                    for key in inside:
                        self._out.put((key, {"error": broken}))
                    inside.clear()
                    continue
                for key, outcome in finished:
                    inside.discard(key)
                    if hasattr(outcome, "to_row"):
                        self._out.put((key, {"row": outcome.to_row()}))
                    else:
                        self._out.put((key, {"error": getattr(outcome, "reason", str(outcome))}))
        finally:
            if stream is not None:
                stream.close()


def measured_features(row: Mapping[str, Any]) -> dict[str, Any]:
    """The features of an analysed row that go into the crawl: Spotify-named physical quantities (tempo, key,
    mode, loudness, time_signature) and popdrivers' audio descriptors (:data:`popdrivers.audio.DESCRIPTOR_NAMES`
    and registry features measured from audio); the preview's own duration and the file's identity are left out
    (the track's duration is Deezer's)."""
    from popdrivers import registry
    from popdrivers.audio import DESCRIPTOR_NAMES

    audio_columns = {spec.canonical for spec in registry.features() if "audio" in spec.sources}
    audio_columns.update(DESCRIPTOR_NAMES)
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in _NOT_FEATURES or key.startswith("_"):
            continue
        if key not in AUDIO_FEATURE_COLUMNS and key not in audio_columns:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
            out[key] = None
            continue
        out[key] = int(value) if key in INTEGER_FEATURES else float(value)
    return out


def preview_source(row: Mapping[str, Any]) -> str:
    """``audio:deezer-preview:<extractor and version>``, from the analyser's own ``audio:<...>`` source."""
    own = str(row.get("features_source") or "audio:popdrivers")
    return PREVIEW_SOURCE_PREFIX + own.removeprefix("audio:")


# ------------------------------------------------------------------------------------------------ the stage
@dataclass
class PreviewReport:
    """What became of the previews of one crawl folder (all runs)."""

    analysed: int = 0
    missing: int = 0
    failed: int = 0
    pending: int = 0  # fetched tracks whose preview is not decided (a transient failure: the next run asks again)
    reasons: dict[str, int] = field(default_factory=dict)  # "missing: ..." / "failed: ..." -> tracks
    features_source: tuple[str, ...] = ()
    # seconds from handing the file to the analyser to its result (queueing included), mean per preview
    analysis_seconds_per_preview: float | None = None
    downloads: int = 0  # requests to the CDN in this run
    refreshed_links: int = 0  # fresh links asked for in this run (expired or refused, or after a restart)
    # Where the CPU set the pace in this run: seconds the crawl waited for the analyser with the backlog full,
    # and seconds of analysis left after the last API request.
    waited_for_analysis_seconds: float = 0.0
    analysis_after_crawl_seconds: float = 0.0

    def describe(self) -> str:
        why = "; ".join(f"{n} {reason}" for reason, n in sorted(self.reasons.items(), key=lambda kv: -kv[1]))
        line = (f"previews: {self.analysed:,} analysed, {self.missing:,} missing, {self.failed:,} failed"
                + (f", {self.pending:,} not done yet (rerun to finish)" if self.pending else ""))
        return line + (f" ({why})" if why else "")

    def to_dict(self) -> dict[str, Any]:
        return {"analysed": self.analysed, "missing": self.missing, "failed": self.failed, "pending": self.pending,
                "reasons": dict(self.reasons), "features_source": list(self.features_source),
                "analysis_seconds_per_preview": self.analysis_seconds_per_preview, "downloads": self.downloads,
                "refreshed_links": self.refreshed_links,
                "waited_for_analysis_seconds": round(self.waited_for_analysis_seconds, 1),
                "analysis_after_crawl_seconds": round(self.analysis_after_crawl_seconds, 1)}


@dataclass
class _Job:
    track_id: str
    stage: str  # "download" | "analyse"
    attempt: int = 1  # 2 after a fresh link
    path: Path | None = None
    sha256: str | None = None
    started: float = field(default_factory=time.perf_counter)


class PreviewCollector:
    """The ``--audio`` stage of a crawl: links in, outcomes committed to the crawl store.

    Parameters
    ----------
    session : CrawlSession
        The crawl's store and log (touched only from the calling thread).
    fresh_link : callable
        ``fresh_link(track_id)`` asks the track endpoint again and returns its current preview link, or None.
        Raises MalformedReply / ApiError for a bad reply.
    downloader : PreviewDownloader
    analyser : AnalysisQueue
    backlog : int, optional
        Previews in flight at most (downloading or analysing); default four per analysis worker plus the
        download threads: enough to keep every worker busy, little enough to bound the spool.
    keep_audio : path-like, optional
        Keep each downloaded preview as ``DIR/<track_id>.mp3`` (default: deleted once analysed).
    """

    def __init__(self, session: CrawlSession, fresh_link: Callable[[str], str | None], *,
                 downloader: PreviewDownloader, analyser: AnalysisQueue, backlog: int | None = None,
                 keep_audio: str | os.PathLike[str] | None = None, download_threads: int = DOWNLOAD_THREADS):
        self.session, self.store, self.log = session, session.store, session.log
        self.fresh_link, self.downloader, self.analyser = fresh_link, downloader, analyser
        self.backlog = backlog or 4 * analyser.jobs + download_threads
        self.spool = session.out / SPOOL_NAME
        self.spool.mkdir(exist_ok=True)
        self.keep_audio = Path(keep_audio) if keep_audio is not None else None
        if self.keep_audio is not None:
            self.keep_audio.mkdir(parents=True, exist_ok=True)
        self._downloads = cf.ThreadPoolExecutor(download_threads, thread_name_prefix="preview-download")
        self._jobs: dict[cf.Future, _Job] = {}  # downloads in progress
        self._analysing: dict[str, _Job] = {}  # track id -> its job, while the analyser has it
        self._in_flight: set[str] = set()
        self._given_up: set[str] = set()  # transient failures in this run: asked again by the next run
        self.refreshed_links = 0
        self.analysed_now = 0  # previews analysed in this run (the progress line)
        self.waited_seconds = 0.0  # the crawl waiting for the analyser (backlog full)
        self.drain_seconds = 0.0  # analysis left once the crawl's requests were done

    # ----- what the crawler calls
    def track_fetched(self, track_id: str, link: str | None) -> None:
        """A track reply was committed: start its preview (or record that it has none)."""
        if track_id in self._in_flight or self.store.has_preview_outcome(track_id):
            return
        if not link:
            self._record(track_id, "missing", reason="Deezer gives no preview for this track")
        else:
            self._start_download(track_id, link, attempt=1)
        self.commit_ready()

    def resume(self, artist_id: str) -> None:
        """Previews of ``artist_id``'s fetched tracks not decided yet (an earlier run was stopped, or ran without
        ``--audio``): analyse the spooled file, else ask for a fresh link."""
        for track_id in self.store.previews_to_do(artist_id):
            if track_id in self._in_flight or track_id in self._given_up:
                continue
            spooled = self._spool_path(track_id)
            if spooled.exists():
                self._wait_below_backlog()
                self._start_analysis(_Job(track_id, "analyse", path=spooled, sha256=_sha256(spooled)))
                continue
            self._refresh(track_id, attempt=1)
        self.commit_ready()

    @property
    def in_flight(self) -> int:
        return len(self._jobs) + len(self._analysing)

    def commit_ready(self, block: bool = False) -> None:
        """Commit every finished preview; with ``block``, wait until none is in flight."""
        self._step(0.0)
        while block and self.in_flight:
            self._step(0.05)

    def _step(self, wait: float) -> bool:
        """Handle finished downloads and analyses (waiting up to ``wait`` s for one); whether any finished."""
        if self._jobs:
            done, _ = cf.wait(list(self._jobs), timeout=wait if not self._analysing else 0,
                              return_when=cf.FIRST_COMPLETED)
            self._handle(done)
        else:
            done = set()
        finished = self.analyser.results(timeout=wait if self._analysing and not done else 0)
        for track_id, outcome in finished:
            job = self._analysing.pop(track_id, None)
            if job is not None:
                self._analysed(job, outcome)
        return bool(done or finished)

    def finish(self) -> None:
        """Wait for every preview in flight and commit them; spooled files already decided are removed."""
        started = time.perf_counter()
        self.commit_ready(block=True)
        self.drain_seconds += time.perf_counter() - started
        for path in self.spool.glob("*.mp3"):
            if self.store.has_preview_outcome(path.stem):  # decided, then killed before the file was released
                self._release(path, path.stem)

    def close(self, wait: bool = True) -> None:
        """Stop the download threads (``wait=False``: without waiting for those in progress) and the analyser's
        workers (always waited for: a second or two, so no worker outlives the crawl)."""
        self._downloads.shutdown(wait=wait, cancel_futures=True)
        self.analyser.close(wait=True)

    def _handle(self, done: set[cf.Future]) -> None:
        for future in done:
            job = self._jobs.pop(future, None)
            if job is not None:  # a nested wait (a fresh link's download) may have taken it already
                self._finished(future, job)

    # ----- internals
    def _spool_path(self, track_id: str) -> Path:
        return self.spool / f"{track_id}.mp3"

    def _wait_below_backlog(self) -> None:
        started = time.perf_counter()
        while self.in_flight >= self.backlog:
            self._step(0.05)
        self.waited_seconds += time.perf_counter() - started

    def _start_download(self, track_id: str, link: str, attempt: int) -> None:
        self._wait_below_backlog()
        self._in_flight.add(track_id)
        future = self._downloads.submit(self._download, track_id, link)
        self._jobs[future] = _Job(track_id, "download", attempt)

    def _download(self, track_id: str, link: str) -> tuple[Path, str]:
        data = self.downloader.fetch(link)
        path = write_bytes_atomic(self._spool_path(track_id), data)
        return path, hashlib.sha256(data).hexdigest()

    def _start_analysis(self, job: _Job) -> None:
        self._in_flight.add(job.track_id)
        job.stage, job.started = "analyse", time.perf_counter()
        self._analysing[job.track_id] = job
        self.analyser.submit(job.track_id, job.path)  # type: ignore[arg-type]

    def _refresh(self, track_id: str, attempt: int) -> None:
        """Ask the track endpoint for a fresh link and download it (``attempt`` 2 after a refusal)."""
        self.refreshed_links += 1
        try:
            link = self.fresh_link(track_id)
        except (MalformedReply, ApiError) as exc:
            self.session.skip("preview link", str(exc), track_id=track_id)
            self._given_up.add(track_id)
            self._in_flight.discard(track_id)
            return
        if not link:
            self._in_flight.discard(track_id)
            self._record(track_id, "missing", reason="Deezer gives no preview for this track")
            return
        self._start_download(track_id, link, attempt)

    def _finished(self, future: cf.Future, job: _Job) -> None:
        """A download ended: analyse the file, or ask for a fresh link once, or give up for this run."""
        track_id = job.track_id
        try:
            job.path, job.sha256 = future.result()
        except cf.CancelledError:
            self._in_flight.discard(track_id)
            return
        except PreviewRefused as exc:
            self._in_flight.discard(track_id)
            if job.attempt == 1:
                self.log({"event": "preview_refused", "track_id": track_id, "status": exc.status,
                          "then": "asking the track endpoint for a fresh link"})
                self._refresh(track_id, attempt=2)
            else:
                self._record(track_id, "failed", reason=f"link refused twice (HTTP {exc.status})")
            return
        except (ApiUnavailable, MalformedReply) as exc:
            self._in_flight.discard(track_id)
            self._given_up.add(track_id)
            self.session.skip("preview", str(exc), track_id=track_id)
            return
        self._start_analysis(job)

    def _analysed(self, job: _Job, outcome: Mapping[str, Any]) -> None:
        track_id = job.track_id
        self._in_flight.discard(track_id)
        if "error" in outcome:
            # The spool path means nothing to the reader (the file is gone); the track id is in the event.
            error = str(outcome["error"]).replace(str(job.path), "the preview")
            self._record(track_id, "failed", reason=f"not analysable: {error}", sha256=job.sha256, path=job.path)
            return
        row = outcome["row"]
        self._record(track_id, "analysed", features=measured_features(row), source=preview_source(row),
                     sha256=job.sha256, seconds=time.perf_counter() - job.started, path=job.path)

    def _record(self, track_id: str, status: str, *, reason: str | None = None,
                features: Mapping[str, Any] | None = None, source: str | None = None, sha256: str | None = None,
                seconds: float | None = None, path: Path | None = None) -> None:
        with self.store.transaction():
            self.store.put_preview(track_id, status, reason=reason, features=features, source=source,
                                   sha256=sha256, seconds=seconds)
            self.session.checkpoint_stats()
        self.analysed_now += status == "analysed"
        event: dict[str, Any] = {"event": f"preview_{status}", "track_id": track_id}
        if reason:
            event["reason"] = reason
        if seconds is not None:
            event["seconds"] = round(seconds, 3)
        self.log(event)
        if path is not None:  # only after the outcome is committed: a kill before it re-analyses the spool
            self._release(path, track_id)

    def _release(self, path: Path, track_id: str) -> None:
        if self.keep_audio is None:
            path.unlink(missing_ok=True)
            return
        target = self.keep_audio / f"{track_id}.mp3"
        try:
            os.replace(path, target)
        except OSError:  # another file system: copy, then remove
            shutil.copyfile(path, target.with_suffix(".part"))
            os.replace(target.with_suffix(".part"), target)
            path.unlink(missing_ok=True)

    def report(self, track_ids: Iterator[str] | list[str]) -> PreviewReport:
        """Counts over ``track_ids`` (the crawl's tracks), with the reasons of what was lost."""
        ids = list(track_ids)
        outcomes = self.store.preview_outcomes(ids)
        report = preview_report(outcomes, len(ids), downloads=self.downloader.requests,
                                refreshed_links=self.refreshed_links)
        report.waited_for_analysis_seconds = self.waited_seconds
        report.analysis_after_crawl_seconds = self.drain_seconds
        return report


def preview_report(outcomes: Mapping[str, Mapping[str, Any]], tracks: int, *, downloads: int = 0,
                   refreshed_links: int = 0) -> PreviewReport:
    """A :class:`PreviewReport` from stored outcomes of a crawl of ``tracks`` tracks."""
    counts = Counter(o["status"] for o in outcomes.values())
    reasons = Counter(f"{o['status']}: {o['reason']}" for o in outcomes.values()
                      if o["status"] != "analysed" and o.get("reason"))
    took = [o["seconds"] for o in outcomes.values() if o["status"] == "analysed" and o.get("seconds")]
    sources = sorted({o["source"] for o in outcomes.values() if o.get("source")})
    return PreviewReport(analysed=counts["analysed"], missing=counts["missing"], failed=counts["failed"],
                         pending=max(0, tracks - sum(counts.values())), reasons=dict(reasons),
                         features_source=tuple(sources),
                         analysis_seconds_per_preview=round(sum(took) / len(took), 3) if took else None,
                         downloads=downloads, refreshed_links=refreshed_links)


def apply_previews(tables: Mapping[str, list[dict[str, Any]]], outcomes: Mapping[str, Mapping[str, Any]]
                   ) -> tuple[str, ...]:
    """Put the measured features of analysed previews into ``audio.csv`` rows; the descriptor columns added.

    A track with an analysed preview takes *all* its features from the analysis (Deezer's ``bpm`` is not mixed
    in: ``features_source`` names one source per track); the others keep what the API gave.
    """
    extra: dict[str, None] = {}
    for row in tables["audio.csv"]:
        outcome = outcomes.get(row["track_id"])
        if not outcome or outcome["status"] != "analysed":
            continue
        features = outcome["features"] or {}
        for name in AUDIO_FEATURE_COLUMNS:
            row[name] = features.get(name)
        for name, value in features.items():
            if name not in AUDIO_FEATURE_COLUMNS:
                row[name] = value
                extra[name] = None
        row["features_source"] = outcome["source"]
    return tuple(extra)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_keep_audio(path: str | os.PathLike[str] | None, out: str | os.PathLike[str]) -> Path | None:
    """``--keep-audio DIR``: a folder (created), not inside the crawl's spool."""
    if path is None:
        return None
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise InputError(f"--keep-audio {target}: is a file, not a folder. Fix: name a folder to keep previews in")
    if target.resolve() == (Path(out) / SPOOL_NAME).resolve():
        raise InputError(f"--keep-audio {target}: that is the crawl's own spool folder; choose another folder")
    return target
