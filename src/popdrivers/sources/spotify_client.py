"""Spotify Web API access for the collector: credentials, the spotipy client, and the retry policy.

The collector talks to Spotify through the real ``spotipy`` client, pointed at a configurable API base and
token URL (tests use a local HTTP server). spotipy's own urllib3 retry is switched off by giving it plain
``requests`` sessions: with it on, a 429 or a 5xx that outlasts its retries comes back as an opaque "Max
Retries" error that has lost the ``Retry-After`` header. Instead :meth:`SpotifyApi.call` applies one policy:

- 429: wait ``Retry-After`` seconds (capped), then ask again;
- 5xx, dropped connections, timeouts: bounded exponential backoff;
- 401 from the API: fetch a new token once;
- a 2xx reply that is not JSON: :class:`MalformedReply` (the caller records it and skips the item);
- other 4xx: :class:`ApiError` (the caller decides: not found, forbidden, ...);
- token endpoint says 400/401 (invalid_client): :class:`~popdrivers.errors.CredentialsError`.

The client secret is only ever handed to spotipy; it is never printed, logged or stored.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from popdrivers.errors import CredentialsError, PopdriversError

DEFAULT_API_BASE = "https://api.spotify.com/v1"
DEFAULT_TOKEN_URL = "https://accounts.spotify.com/api/token"
API_BASE_ENV = "POPDRIVERS_SPOTIFY_API_BASE"
TOKEN_URL_ENV = "POPDRIVERS_SPOTIFY_TOKEN_URL"
CLIENT_ID_ENV = "SPOTIPY_CLIENT_ID"
CLIENT_SECRET_ENV = "SPOTIPY_CLIENT_SECRET"
_SETUP_HINT = (f"set {CLIENT_ID_ENV} and {CLIENT_SECRET_ENV} in the environment or in a .env file in the working "
               "directory (create an app at https://developer.spotify.com/dashboard to get them)")

Event = dict[str, Any]
EventSink = Callable[[Event], None]


@dataclass(frozen=True)
class Credentials:
    """Spotify client credentials; the secret is kept out of ``repr`` so it cannot leak into logs."""

    client_id: str
    client_secret: str = field(repr=False)
    source: str = "environment"


def read_dotenv(path: str | os.PathLike[str]) -> dict[str, str]:
    """Parse a ``.env`` file: ``KEY=VALUE`` lines, optional ``export``, quotes and ``#`` comments.

    Parameters
    ----------
    path : path-like
        The file; a missing file gives an empty mapping.

    Returns
    -------
    dict
        Variable name to value.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8-sig").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:  # an unquoted value may carry a trailing comment
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def load_credentials(environ: Mapping[str, str] | None = None,
                     dotenv: str | os.PathLike[str] | None = None) -> Credentials:
    """Find the client id and secret: environment first, then ``.env`` in the working directory.

    Parameters
    ----------
    environ : mapping, optional
        Environment to read (default ``os.environ``).
    dotenv : path-like, optional
        The ``.env`` file (default ``./.env``).

    Returns
    -------
    Credentials

    Raises
    ------
    CredentialsError
        When either value is missing or empty.
    """
    environ = os.environ if environ is None else environ
    dotenv_path = Path(".env") if dotenv is None else Path(dotenv)
    client_id, secret = environ.get(CLIENT_ID_ENV, "").strip(), environ.get(CLIENT_SECRET_ENV, "").strip()
    source = "environment"
    if not (client_id and secret):
        values = read_dotenv(dotenv_path)
        client_id = client_id or values.get(CLIENT_ID_ENV, "").strip()
        secret = secret or values.get(CLIENT_SECRET_ENV, "").strip()
        source = f"environment / {dotenv_path}"
    missing = [name for name, value in ((CLIENT_ID_ENV, client_id), (CLIENT_SECRET_ENV, secret)) if not value]
    if missing:
        raise CredentialsError(f"Spotify credentials missing ({', '.join(missing)} not set): {_SETUP_HINT}")
    return Credentials(client_id, secret, source)


def resolve_endpoints(api_base: str | None = None, token_url: str | None = None,
                      environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """API base and token URL: explicit value, else environment variable, else Spotify's own."""
    environ = os.environ if environ is None else environ
    base = api_base or environ.get(API_BASE_ENV) or DEFAULT_API_BASE
    token = token_url or environ.get(TOKEN_URL_ENV) or DEFAULT_TOKEN_URL
    for name, url in (("API base", base), ("token URL", token)):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Spotify {name} '{url}' is not an http(s) URL")
    return base.rstrip("/"), token


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up on a request.

    Attributes
    ----------
    max_attempts : int
        Attempts per request (the first try included) for 429, 5xx and connection errors.
    backoff_base, backoff_max : float
        Exponential backoff for 5xx and connection errors: ``base * 2**k`` seconds, at most ``backoff_max``.
    max_retry_after : float
        Cap on a ``Retry-After`` wait; a longer one is cut to this (the next 429 says how long is left).
    timeout : float
        Seconds to wait for a reply before treating the connection as dropped.
    """

    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 120.0
    timeout: float = 15.0

    def backoff(self, attempt: int) -> float:
        return min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))


@dataclass
class ApiStats:
    """Counters of one crawl run."""

    requests: int = 0
    retries: int = 0
    rate_limit_waits: int = 0
    waited_seconds: float = 0.0


class MalformedReply(Exception):
    """A 2xx reply that is not the JSON expected; the item is recorded and skipped."""


class ApiError(Exception):
    """A 4xx reply (other than 429 and a first 401): not retried, the caller decides what it means."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class ApiUnavailable(PopdriversError):
    """Retries are exhausted (rate limited, server errors, no connection): stop; a rerun resumes."""


def _retry_after(headers: Mapping[str, str] | None, default: float = 1.0) -> float:
    value = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:  # an HTTP date is allowed by the RFC; Spotify sends seconds, so fall back
        return default


def _oauth_status(exc: BaseException) -> int | None:
    # spotipy raises SpotifyOauthError inside `except HTTPError`, so the HTTP status survives as the context.
    context = exc.__context__
    response = getattr(context, "response", None)
    return getattr(response, "status_code", None)


class SpotifyApi:
    """spotipy client pointed at ``api_base``/``token_url`` with the collector's retry policy.

    Parameters
    ----------
    credentials : Credentials
    api_base, token_url : str
    policy : RetryPolicy
    sleep : callable
        ``sleep(seconds)``; injectable so tests count waits instead of waiting.
    on_event : callable
        Receives one dict per retry/wait (written to the crawl log).
    """

    def __init__(self, credentials: Credentials, *, api_base: str = DEFAULT_API_BASE,
                 token_url: str = DEFAULT_TOKEN_URL, policy: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep, on_event: EventSink | None = None):
        import spotipy
        from spotipy.cache_handler import MemoryCacheHandler

        # spotipy logs every HTTP error at ERROR level (stderr noise on each retried 429) and, at DEBUG, the
        # token request headers (the Basic credentials): keep its logger quiet whatever the app configures.
        logging.getLogger("spotipy").setLevel(logging.CRITICAL)
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.on_event = on_event or (lambda event: None)
        self.stats = ApiStats()
        self.on_request: Callable[[], None] | None = None  # e.g. refresh a progress bar
        self.api_base = api_base.rstrip("/")
        self._source = credentials.source
        # In-memory token cache: spotipy's default writes the token to ./.cache.
        self._tokens = MemoryCacheHandler()
        self._auth = spotipy.SpotifyClientCredentials(
            client_id=credentials.client_id, client_secret=credentials.client_secret,
            requests_session=requests.Session(), requests_timeout=self.policy.timeout, cache_handler=self._tokens)
        self._auth.OAUTH_TOKEN_URL = token_url  # instance attribute shadows the class constant
        self.sp = spotipy.Spotify(auth_manager=self._auth, requests_session=requests.Session(),
                                  requests_timeout=self.policy.timeout, retries=0, status_retries=0)
        self.sp.prefix = self.api_base + "/"

    def _event(self, **event: Any) -> None:
        self.on_event(event)

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one spotipy call under the retry policy and return its (non-empty) JSON reply.

        Parameters
        ----------
        what : str
            A short description for the crawl log ("albums of <id> offset 50").
        fn : callable
            A bound method of :attr:`sp`.

        Raises
        ------
        MalformedReply, ApiError, ApiUnavailable, CredentialsError
        """
        from spotipy.exceptions import SpotifyException, SpotifyOauthError

        renewed_token = False
        attempt = 0
        while True:
            attempt += 1
            self.stats.requests += 1
            if self.on_request is not None:
                self.on_request()
            wait: float | None = None
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)  # audio_features is marked deprecated
                    result = fn(*args, **kwargs)
            except SpotifyOauthError as exc:
                status = _oauth_status(exc)
                error = getattr(exc, "error", None)
                if status in (400, 401, 403) or error in ("invalid_client", "unauthorized_client"):
                    description = getattr(exc, "error_description", None)
                    raise CredentialsError(
                        f"Spotify rejected the client credentials (from the {self._credentials_source()}) "
                        f"({error or f'HTTP {status}'}{': ' + description if description else ''}); check "
                        f"{CLIENT_ID_ENV} and {CLIENT_SECRET_ENV} (the secret can be reset in the Spotify dashboard)"
                    ) from None
                reason = f"token endpoint HTTP {status}" if status else f"token endpoint: {error}"
                if status == 429:
                    wait = self._rate_limit_wait(getattr(exc.__context__, "response", None))
            except SpotifyException as exc:
                status = exc.http_status
                if status == 429:
                    reason = "HTTP 429 rate limited"
                    wait = self._rate_limit_wait(exc)
                elif status >= 500:
                    reason = f"HTTP {status}"
                elif status == 401 and not renewed_token:
                    # The token expired or was revoked: fetch a fresh one once.
                    renewed_token = True
                    self._tokens.save_token_to_cache(None)
                    self.stats.retries += 1
                    self._event(event="retry", what=what, reason="HTTP 401: renewing the access token", wait=0)
                    attempt -= 1
                    continue
                else:
                    raise ApiError(status, _short_message(exc.msg)) from None
            except requests.exceptions.RequestException as exc:
                reason = f"{type(exc).__name__}: connection dropped or timed out"
            except (ValueError, KeyError, TypeError) as exc:
                # requests' JSONDecodeError (token reply) or spotipy choking on a None reply (audio_features).
                raise MalformedReply(f"reply is not the JSON expected ({type(exc).__name__})") from None
            else:
                if result is None:
                    raise MalformedReply("reply is not valid JSON")
                return result
            if attempt >= self.policy.max_attempts:
                raise ApiUnavailable(f"Spotify API: {what} failed {attempt} times (last: {reason})")
            if wait is None:
                wait = self.policy.backoff(attempt)
            self.stats.retries += 1
            self._event(event="retry", what=what, reason=reason, attempt=attempt, wait=round(wait, 3))
            self.stats.waited_seconds += wait
            self.sleep(wait)

    def _rate_limit_wait(self, source: Any) -> float:
        headers = getattr(source, "headers", None)
        self.stats.rate_limit_waits += 1
        return min(self.policy.max_retry_after, _retry_after(headers))

    def _credentials_source(self) -> str:
        return self._source


def _short_message(message: Any) -> str:
    text = str(message or "").strip().replace("\n", " ")
    return text[:200]
