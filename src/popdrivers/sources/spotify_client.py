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

from popdrivers.errors import ApiUnavailable, CredentialsError, InputError
from popdrivers.sources.api_calls import (
    ApiError,
    ApiStats,
    EventSink,
    MalformedReply,
    RequestRunner,
    Retry,
    RetryPolicy,
)

__all__ = ["ApiError", "ApiStats", "ApiUnavailable", "Credentials", "MalformedReply", "RetryPolicy", "SpotifyApi",
           "load_credentials", "read_dotenv", "resolve_endpoints"]

DEFAULT_API_BASE = "https://api.spotify.com/v1"
DEFAULT_TOKEN_URL = "https://accounts.spotify.com/api/token"
API_BASE_ENV = "POPDRIVERS_SPOTIFY_API_BASE"
TOKEN_URL_ENV = "POPDRIVERS_SPOTIFY_TOKEN_URL"
CLIENT_ID_ENV = "SPOTIPY_CLIENT_ID"
CLIENT_SECRET_ENV = "SPOTIPY_CLIENT_SECRET"
_SETUP_HINT = (f"set {CLIENT_ID_ENV} and {CLIENT_SECRET_ENV} in the environment or in a .env file in the working "
               "directory (create an app at https://developer.spotify.com/dashboard to get them)")


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
            raise InputError(f"Spotify {name} '{url}' is not an http(s) URL")
    return base.rstrip("/"), token


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
    """spotipy client pointed at ``api_base``/``token_url``, its requests run by the shared :class:`RequestRunner`.

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
        self.runner = RequestRunner("Spotify API", policy, sleep, on_event)
        self.policy = self.runner.policy
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

    @property
    def stats(self) -> ApiStats:
        return self.runner.stats

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
        state = {"renewed_token": False}
        return self.runner.call(what, self._attempt, state, fn, args, kwargs)

    def _attempt(self, state: dict[str, bool], fn: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: Mapping[str, Any]) -> Any:
        """One try: the reply, or the failure translated into Retry / ApiError / MalformedReply."""
        from spotipy.exceptions import SpotifyException, SpotifyOauthError

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
                    f"Spotify rejected the client credentials (from the {self._source}) "
                    f"({error or f'HTTP {status}'}{': ' + description if description else ''}); check "
                    f"{CLIENT_ID_ENV} and {CLIENT_SECRET_ENV} (the secret can be reset in the Spotify dashboard)"
                ) from None
            if status == 429:
                raise Retry("token endpoint HTTP 429", rate_limited=True,
                            wait=_retry_after(getattr(getattr(exc.__context__, "response", None), "headers", None))
                            ) from None
            raise Retry(f"token endpoint HTTP {status}" if status else f"token endpoint: {error}") from None
        except SpotifyException as exc:
            status = exc.http_status
            if status == 429:
                raise Retry("HTTP 429 rate limited", wait=_retry_after(exc.headers), rate_limited=True) from None
            if status >= 500:
                raise Retry(f"HTTP {status}") from None
            if status == 401 and not state["renewed_token"]:
                # The token expired or was revoked: fetch a fresh one once.
                state["renewed_token"] = True
                self._tokens.save_token_to_cache(None)
                raise Retry("HTTP 401: renewing the access token", free=True) from None
            raise ApiError(status, _short_message(exc.msg)) from None
        except requests.exceptions.RequestException as exc:
            raise Retry(f"{type(exc).__name__}: connection dropped or timed out") from None
        except (ValueError, KeyError, TypeError) as exc:
            # requests' JSONDecodeError (token reply) or spotipy choking on a None reply (audio_features).
            raise MalformedReply(f"reply is not the JSON expected ({type(exc).__name__})") from None
        if result is None:
            raise MalformedReply("reply is not valid JSON")
        return result


def _short_message(message: Any) -> str:
    text = str(message or "").strip().replace("\n", " ")
    return text[:200]
