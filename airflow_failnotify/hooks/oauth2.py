"""OAuth 2.0 access tokens for XOAUTH2: one token provider per grant, behind :class:`TokenProvider`.

Today one grant: client credentials (:class:`ClientCredentialsTokenProvider`). A provider asks the
connection's token endpoint for a token, reads it (and its lifetime) where the connection's
``response_parameter`` says, and keeps it in a per-process cache (keyed by connection id, token URL,
client id and scope) until shortly before it expires. The hook invalidates a token the SMTP server
refused, then asks once more with ``force_refresh``.

Every failure is a :class:`~airflow_failnotify.exceptions.MailDeliveryError` that names the token
endpoint and never holds a secret.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from airflow_failnotify.exceptions import MailDeliveryError
from airflow_failnotify.hooks.secrets import mask_secret, redact
from airflow_failnotify.hooks.smtp_settings import SmtpSettings

log = logging.getLogger(__name__)

#: A cached token is refreshed this long before it expires (at most; a tenth of short lifetimes).
TOKEN_EXPIRY_MARGIN = 60.0
#: Lifetime assumed when the token response does not say (the 535 retry covers a shorter one).
DEFAULT_TOKEN_LIFETIME = 300.0

CacheKey = tuple[str, str, str, str]


class TokenProvider(Protocol):
    """Access tokens of one connection, for one OAuth 2.0 grant."""

    def get_token(self, *, force_refresh: bool = False) -> tuple[str, bool]:
        """(access token, came from the cache)."""
        ...

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (the server refused it) if it is still the cached one."""
        ...


# --------------------------------------------------------------------------------------------
# the per-process cache
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _CachedToken:
    token: str = ""
    refresh_at: float = 0.0  # time.monotonic() after which it is fetched again


_TOKEN_CACHE: dict[CacheKey, _CachedToken] = {}
_TOKEN_LOCKS: dict[CacheKey, threading.Lock] = {}
_CACHE_LOCK = threading.Lock()


def clear_token_cache() -> None:
    """Forget every cached OAuth 2.0 token of this process (tests, or after rotating a secret)."""
    with _CACHE_LOCK:
        _TOKEN_CACHE.clear()


def _key_lock(key: CacheKey) -> threading.Lock:
    with _CACHE_LOCK:
        return _TOKEN_LOCKS.setdefault(key, threading.Lock())


# --------------------------------------------------------------------------------------------
# the client-credentials grant
# --------------------------------------------------------------------------------------------
class ClientCredentialsTokenProvider:
    """The client-credentials grant (RFC 6749 section 4.4), cached per process until near expiry."""

    grant_type = "client_credentials"

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    @property
    def cache_key(self) -> CacheKey:
        settings = self.settings
        return (settings.conn_id, settings.token_url, settings.client_id, settings.scope)

    def get_token(self, *, force_refresh: bool = False) -> tuple[str, bool]:
        """Return (access token, came from the cache). One token request per expiry, per process."""
        key = self.cache_key
        with _key_lock(key):
            cached = _TOKEN_CACHE.get(key)
            if cached is not None and not force_refresh and time.monotonic() < cached.refresh_at:
                return cached.token, True
            token, lifetime = self.fetch()
            margin = min(TOKEN_EXPIRY_MARGIN, lifetime / 10)
            _TOKEN_CACHE[key] = _CachedToken(token, time.monotonic() + lifetime - margin)
            return token, False

    def invalidate(self, token: str) -> None:
        key = self.cache_key
        with _key_lock(key):
            cached = _TOKEN_CACHE.get(key)
            if cached is not None and cached.token == token:
                del _TOKEN_CACHE[key]

    def request_data(self) -> tuple[dict[str, str], tuple[str, str] | None]:
        """(form fields, HTTP Basic credentials) of the token request, by token_auth_method."""
        settings = self.settings
        data = {"grant_type": self.grant_type}
        if settings.scope:
            data["scope"] = settings.scope
        if settings.token_auth_method == "client_secret_basic":
            return data, (settings.client_id, settings.client_secret)
        data["client_id"] = settings.client_id
        data["client_secret"] = settings.client_secret
        return data, None

    def fetch(self) -> tuple[str, float]:
        """Ask the token endpoint for a token; return (token, lifetime in seconds)."""
        data, auth = self.request_data()
        payload = post_token_request(self.settings, data, auth)
        return read_token_response(self.settings, payload)


def token_provider_for(settings: SmtpSettings) -> TokenProvider:
    """The token provider of a connection's grant (today: client credentials, the only one)."""
    return ClientCredentialsTokenProvider(settings)


def get_oauth2_token(settings: SmtpSettings, *, force_refresh: bool = False) -> tuple[str, bool]:
    """Return (access token, came from the cache). One token request per expiry, per process."""
    return token_provider_for(settings).get_token(force_refresh=force_refresh)


def fetch_oauth2_token(settings: SmtpSettings) -> tuple[str, float]:
    """Ask the token endpoint for a token (client-credentials grant); return (token, lifetime s)."""
    return ClientCredentialsTokenProvider(settings).fetch()


# --------------------------------------------------------------------------------------------
# the token request and its response (shared by every grant)
# --------------------------------------------------------------------------------------------
def post_token_request(
    settings: SmtpSettings, data: Mapping[str, str], auth: tuple[str, str] | None
) -> Mapping[str, Any]:
    """POST the form to the token endpoint; return its JSON object, or raise MailDeliveryError."""
    url = settings.token_url
    try:
        response = requests.post(
            url, data=dict(data), auth=auth, timeout=settings.timeout, headers={"Accept": "application/json"}
        )
    except requests.Timeout as err:
        raise MailDeliveryError(
            f"token endpoint {url} did not answer within {settings.timeout:g} s", temporary=True
        ) from err
    except requests.RequestException as err:
        reason = _root_reason(err)
        raise MailDeliveryError(
            redact(f"token endpoint {url} unreachable ({reason})", settings.secrets), temporary=True
        ) from err

    status = response.status_code
    try:
        payload: Any = response.json()
    except ValueError:
        payload = None
    if status >= 400:
        raise _status_error(settings, status, payload)
    if not isinstance(payload, Mapping):
        content_type = response.headers.get("Content-Type", "unknown")
        raise MailDeliveryError(
            f"token endpoint {url} answered {status} with a body that is not a JSON object "
            f"(content type {content_type}); check token_url",
            temporary=False,
        )
    return payload


def _status_error(settings: SmtpSettings, status: int, payload: Any) -> MailDeliveryError:
    detail = ""
    if isinstance(payload, Mapping):
        detail = " ".join(str(payload.get(k))[:200] for k in ("error", "error_description") if payload.get(k))
    message = f"token endpoint {settings.token_url} answered {status}" + (f" {detail}" if detail else "")
    temporary = status >= 500 or status in (408, 429)
    if not temporary:
        message += "; check client_id, client_secret, scope and token_auth_method of the connection"
    return MailDeliveryError(redact(message, settings.secrets), temporary=temporary)


def read_token_response(settings: SmtpSettings, payload: Mapping[str, Any]) -> tuple[str, float]:
    """(token, lifetime s) from a token response, where the connection's response_parameter says.

    The token is registered with Airflow's secret masker. A missing or unusable lifetime is
    :data:`DEFAULT_TOKEN_LIFETIME`.
    """
    try:
        token = _lookup(payload, settings.access_token_key)
    except KeyError:
        token = None
    if not isinstance(token, str) or not token:
        raise MailDeliveryError(
            f"token response has no {settings.access_token_key!r} "
            f"(keys: {_keys_of(payload, settings.access_token_key)}); check response_parameter",
            temporary=False,
        )
    mask_secret(token)
    lifetime = _lifetime(settings, payload)
    log.debug("fetched an OAuth 2.0 token from %s, valid %s s", settings.token_url, lifetime)
    return token, lifetime


def _lifetime(settings: SmtpSettings, payload: Mapping[str, Any]) -> float:
    url, key = settings.token_url, settings.expires_in_key
    lifetime = DEFAULT_TOKEN_LIFETIME
    try:
        lifetime = float(_lookup(payload, key))
    except KeyError:
        log.debug("token response of %s has no %r; assuming %s s", url, key, lifetime)
    except (TypeError, ValueError):
        log.warning("token response of %s: %r is not a number; assuming %s s", url, key, lifetime)
    if lifetime <= 0:
        lifetime = DEFAULT_TOKEN_LIFETIME
    return lifetime


def _lookup(payload: Any, path: str) -> Any:
    """Follow a dotted path through dicts (and lists, by index); KeyError when absent."""
    node = payload
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(path)
    return node


def _keys_of(payload: Any, path: str) -> str:
    """The keys present where ``path`` was looked for (for a helpful message; no values)."""
    node = payload
    for part in path.split(".")[:-1]:
        if isinstance(node, Mapping) and isinstance(node.get(part), Mapping):
            node = node[part]
        else:
            break
    if isinstance(node, Mapping):
        return ", ".join(sorted(str(k) for k in node)) or "none"
    return type(node).__name__


def _root_reason(err: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, short (no request data)."""
    seen = err
    for _ in range(10):
        nxt = seen.__cause__ or seen.__context__
        if nxt is None:
            break
        seen = nxt
    if isinstance(seen, ConnectionRefusedError):
        return "connection refused"
    if isinstance(seen, socket.gaierror):
        return f"cannot resolve host: {seen.strerror}"
    text = str(seen) or type(seen).__name__
    if "Connection refused" in text:
        return "connection refused"
    return f"{type(seen).__name__}: {text[:200]}"
