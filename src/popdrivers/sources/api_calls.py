"""One API call that survives a long crawl: retries, backoff, rate limits, pacing, and plain HTTP on top.

- :class:`RequestRunner` runs one request under a :class:`RetryPolicy`. A source-specific attempt function
  raises :class:`Retry` for what is worth asking again (429, Deezer's quota error inside a 200, 5xx, dropped
  connections), :class:`ApiError` for a refusal the caller must interpret, :class:`MalformedReply` for a reply
  that is not the JSON expected. Waits go through an injectable ``sleep``; after ``max_attempts`` the runner
  raises :class:`~popdrivers.errors.ApiUnavailable`.
- :class:`RequestPacer` keeps a source under a published quota (Deezer: 50 requests per 5 s) with a rolling
  window: a token bucket of the same rate can send twice the quota inside one window.
- :class:`HttpApi` is plain HTTP (``requests``) under both, what the Deezer and ReccoBeats clients share; the
  Spotify client runs spotipy under the same runner.
- :func:`as_text`, :func:`as_int`, :func:`as_float` read the values of a JSON reply.

The crawl around the calls (checkpoints, the log, the loop over artists) is :mod:`.crawl`'s.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from popdrivers.errors import ApiUnavailable

Event = dict[str, Any]
EventSink = Callable[[Event], None]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up on a request.

    Attributes
    ----------
    max_attempts : int
        Attempts per request (the first try included) for rate limits, 5xx and connection errors.
    backoff_base, backoff_max : float
        Exponential backoff for 5xx and connection errors: ``base * 2**k`` seconds, at most ``backoff_max``.
    max_retry_after : float
        Cap on a ``Retry-After`` wait; a longer one is cut to this (the next 429 says how long is left).
    timeout : float
        Seconds to wait for a reply before treating the connection as dropped.
    quota_wait : float
        Wait after a quota error that names no wait (Deezer's code 4: its window is 5 seconds).
    """

    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 120.0
    timeout: float = 15.0
    quota_wait: float = 5.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))


@dataclass
class ApiStats:
    """Counters of one crawl run."""

    requests: int = 0
    retries: int = 0
    rate_limit_waits: int = 0
    waited_seconds: float = 0.0
    paced_seconds: float = 0.0


class MalformedReply(Exception):
    """A 2xx reply that is not the JSON expected; the item is recorded and skipped (a rerun asks again)."""


class ApiError(Exception):
    """A refusal that retrying will not change (4xx, "no data"): the caller decides what it means."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class Retry(Exception):
    """Raised by an attempt function: ask again.

    Parameters
    ----------
    reason : str
        For the crawl log ("HTTP 503", "Deezer quota exceeded (code 4)").
    wait : float, optional
        Seconds to wait first; None means the policy's exponential backoff.
    rate_limited : bool
        Counted as a rate-limit wait (429, quota error) rather than a failure.
    free : bool
        Does not use up an attempt (e.g. renewing an expired token).
    """

    def __init__(self, reason: str, wait: float | None = None, rate_limited: bool = False, free: bool = False):
        super().__init__(reason)
        self.reason, self.wait, self.rate_limited, self.free = reason, wait, rate_limited, free


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds of a reply's ``Retry-After`` header (a number of seconds), None when absent or not a number."""
    try:
        return max(0.0, float((headers or {})["Retry-After"]))
    except (KeyError, TypeError, ValueError):
        return None


class RequestPacer:
    """At most ``max_requests`` requests in any window of ``per_seconds`` (a rolling window).

    A token bucket with burst n refilled at n per window can send 2n requests inside one window, which
    trips a fixed per-IP quota while looking compliant; a rolling window cannot.
    """

    def __init__(self, max_requests: int, per_seconds: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if max_requests < 1 or per_seconds <= 0:
            raise ValueError("a pacer needs max_requests >= 1 and per_seconds > 0")
        self.max_requests, self.per_seconds = max_requests, per_seconds
        self.clock, self.sleep = clock, sleep
        self._sent: deque[float] = deque()

    def wait(self) -> float:
        """Block until one more request fits in the window; return the seconds waited."""
        waited = 0.0
        while True:
            now = self.clock()
            while self._sent and self._sent[0] <= now - self.per_seconds:
                self._sent.popleft()
            if len(self._sent) < self.max_requests:
                self._sent.append(now)
                return waited
            pause = self._sent[0] + self.per_seconds - now
            self.sleep(pause)
            waited += pause


class RequestRunner:
    """Runs requests under one retry policy and counts them.

    Parameters
    ----------
    source : str
        Named in errors ("Spotify API", "Deezer API").
    policy : RetryPolicy
    sleep : callable
        ``sleep(seconds)`` for every wait (injectable: tests count waits instead of waiting).
    on_event : callable
        Receives one dict per retry (written to the crawl log).
    pacer : RequestPacer, optional
        Consulted before every request.
    """

    def __init__(self, source: str, policy: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 on_event: EventSink | None = None, pacer: RequestPacer | None = None):
        self.source = source
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.on_event = on_event or (lambda event: None)
        self.pacer = pacer
        self.stats = ApiStats()
        self.on_request: Callable[[], None] | None = None  # e.g. refresh a progress bar

    def call(self, what: str, attempt_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``attempt_fn(*args, **kwargs)`` until it returns, retrying on :class:`Retry`.

        Raises
        ------
        ApiUnavailable
            After ``policy.max_attempts`` attempts that all asked to be retried.
        MalformedReply, ApiError, CredentialsError
            Passed through from ``attempt_fn`` (not retried).
        """
        attempt = 0
        while True:
            attempt += 1
            if self.pacer is not None:
                self.stats.paced_seconds += self.pacer.wait()
            self.stats.requests += 1
            if self.on_request is not None:
                self.on_request()
            try:
                return attempt_fn(*args, **kwargs)
            except Retry as retry:
                if retry.free:
                    attempt -= 1
                    self.stats.retries += 1
                    self.on_event({"event": "retry", "what": what, "reason": retry.reason, "wait": 0})
                    continue
                if attempt >= self.policy.max_attempts:
                    raise ApiUnavailable(f"{self.source}: {what} failed {attempt} times (last: {retry.reason})"
                                         ) from None
                if retry.rate_limited:
                    self.stats.rate_limit_waits += 1
                    wait = min(self.policy.max_retry_after,
                               self.policy.quota_wait if retry.wait is None else retry.wait)
                else:
                    wait = self.policy.backoff(attempt) if retry.wait is None else retry.wait
                self.stats.retries += 1
                self.on_event({"event": "retry", "what": what, "reason": retry.reason, "attempt": attempt,
                               "wait": round(wait, 3)})
                self.stats.waited_seconds += wait
                self.sleep(wait)


class HttpApi:
    """Plain HTTP (``requests``) under the shared retry loop and a pacer: what the Deezer and ReccoBeats clients
    share (their endpoints and reply formats are theirs).

    Parameters
    ----------
    source : str
        Named in errors ("Deezer API").
    api_base : str
        Host root, without a trailing slash.
    policy, sleep, on_event
        As for :class:`RequestRunner`.
    clock : callable
        The pacer's time (injectable).
    quota : (int, float)
        At most this many requests per this many seconds.
    """

    def __init__(self, source: str, api_base: str, *, policy: RetryPolicy | None, sleep: Callable[[float], None],
                 clock: Callable[[], float], on_event: EventSink | None, quota: tuple[int, float]):
        import requests

        self.api_base = api_base.rstrip("/")
        pacer = RequestPacer(quota[0], quota[1], clock=clock, sleep=sleep)
        self.runner = RequestRunner(source, policy, sleep, on_event, pacer)
        self.policy = self.runner.policy
        self.http = requests.Session()

    @staticmethod
    @contextmanager
    def connection_retried() -> Iterator[None]:
        """A dropped or timed-out connection (any ``requests`` error) becomes a :class:`Retry`."""
        import requests

        try:
            yield
        except requests.exceptions.RequestException as exc:
            raise Retry(f"{type(exc).__name__}: connection dropped or timed out") from None

    @staticmethod
    def check_status(reply: Any, message: Callable[[Any], str]) -> None:
        """429 is retried after its ``Retry-After`` (rate limited), 5xx is retried, any other 4xx is an
        :class:`ApiError` saying ``message(reply)``."""
        if reply.status_code == 429:
            raise Retry("HTTP 429 rate limited", wait=retry_after(reply.headers), rate_limited=True)
        if reply.status_code >= 500:
            raise Retry(f"HTTP {reply.status_code}")
        if reply.status_code >= 400:
            raise ApiError(reply.status_code, message(reply))


def as_text(value: Any) -> str | None:
    """A non-empty string, else None."""
    return value if isinstance(value, str) and value != "" else None


def as_int(value: Any) -> int | None:
    """A whole JSON number as int, else None (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if float(value).is_integer() else None


def as_float(value: Any) -> float | None:
    """A JSON number as float, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
