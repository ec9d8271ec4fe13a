"""OAuth 2.0 access tokens for XOAUTH2: one token provider per grant, behind :class:`TokenProvider`.

The connection's ``grant_type`` picks the provider (:func:`token_provider_for`):

- ``client_credentials`` (:class:`ClientCredentialsTokenProvider`): Microsoft 365 and generic endpoints;
  the client authenticates with its secret (``client_secret_post`` / ``client_secret_basic``) or with a
  certificate (``private_key_jwt``: a signed client assertion with the certificate's ``x5t``).
- ``refresh_token`` (:class:`RefreshTokenProvider`): a user mailbox (Gmail) with consent obtained once;
  a refresh token the endpoint rotates is kept by :mod:`~airflow_failnotify.hooks.refresh_tokens`.
- ``jwt_bearer`` (:class:`JwtBearerTokenProvider`): a Google service account acting for a Workspace
  mailbox (domain-wide delegation), RFC 7523.

A provider asks the token endpoint for a token, reads it (and its lifetime) where the connection's
``response_parameter`` says, and keeps it in a per-process cache (keyed by connection id, grant, token
URL, client or account, scope and subject) until shortly before it expires. The hook invalidates a
token the SMTP server refused, then asks once more with ``force_refresh``.

Every failure is a :class:`~airflow_failnotify.exceptions.MailDeliveryError` that names the token
endpoint, says what to fix (:mod:`~airflow_failnotify.hooks.oauth2_errors`) and never holds a secret.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from airflow_failnotify.exceptions import MailDeliveryError
from airflow_failnotify.hooks import oauth2_jwt
from airflow_failnotify.hooks.oauth2_errors import TokenEndpointError, token_error
from airflow_failnotify.hooks.refresh_tokens import RefreshTokenKeeper, default_keeper, keeper_key
from airflow_failnotify.hooks.secrets import mask_secret, redact
from airflow_failnotify.hooks.smtp_settings import SmtpSettings

log = logging.getLogger(__name__)

#: A cached token is refreshed this long before it expires (at most; a tenth of short lifetimes).
TOKEN_EXPIRY_MARGIN = 60.0
#: Lifetime assumed when the token response does not say (the 535 retry covers a shorter one).
DEFAULT_TOKEN_LIFETIME = 300.0

CacheKey = tuple[str, ...]
Clock = Callable[[], float]


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


class _CachingTokenProvider:
    """What every grant shares: the per-process cache, and the request to the token endpoint."""

    grant_type = ""

    def __init__(self, settings: SmtpSettings, *, clock: Clock = time.time) -> None:
        self.settings = settings
        self.clock = clock

    @property
    def token_url(self) -> str:
        return self.settings.token_url

    @property
    def identity(self) -> str:
        """Who asks for tokens (client id, or a service account); part of the cache key."""
        return self.settings.client_id

    @property
    def cache_key(self) -> CacheKey:
        settings = self.settings
        return (settings.conn_id, self.grant_type, self.token_url, self.identity, settings.scope, "")

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

    def fetch(self) -> tuple[str, float]:
        """Ask the token endpoint for a token; return (token, lifetime in seconds)."""
        payload = self.post(*self.request_data())
        return read_token_response(self.settings, payload)

    def request_data(self) -> tuple[dict[str, str], tuple[str, str] | None]:
        """(form fields, HTTP Basic credentials) of the token request."""
        raise NotImplementedError

    def post(self, data: Mapping[str, str], auth: tuple[str, str] | None, **facts: str) -> Mapping[str, Any]:
        return post_token_request(self.settings, data, auth, token_url=self.token_url, facts=facts)

    def _client_secret(self, data: dict[str, str]) -> tuple[dict[str, str], tuple[str, str] | None]:
        """Add the client id and secret as token_auth_method says (form body or HTTP Basic)."""
        settings = self.settings
        if settings.token_auth_method == "client_secret_basic":
            return data, (settings.client_id, settings.client_secret)
        data["client_id"] = settings.client_id
        data["client_secret"] = settings.client_secret
        return data, None


# --------------------------------------------------------------------------------------------
# the grants
# --------------------------------------------------------------------------------------------
class ClientCredentialsTokenProvider(_CachingTokenProvider):
    """The client-credentials grant (RFC 6749 section 4.4): a client secret or a certificate.

    With ``token_auth_method`` ``private_key_jwt`` the client proves itself with a signed assertion
    (RFC 7523 section 2.2) instead of a secret: Microsoft's certificate credentials.
    """

    grant_type = "client_credentials"

    def request_data(self) -> tuple[dict[str, str], tuple[str, str] | None]:
        settings = self.settings
        data = {"grant_type": self.grant_type}
        if settings.scope:
            data["scope"] = settings.scope
        if settings.token_auth_method != "private_key_jwt":
            return self._client_secret(data)
        assertion = oauth2_jwt.client_assertion(settings, token_url=self.token_url, now=self.clock())
        mask_secret(assertion)
        data.update(
            client_id=settings.client_id,
            client_assertion_type=oauth2_jwt.CLIENT_ASSERTION_TYPE,
            client_assertion=assertion,
        )
        return data, None


class RefreshTokenProvider(_CachingTokenProvider):
    """The refresh-token grant (RFC 6749 section 6) of a user mailbox, e.g. Gmail.

    The refresh token used is the one last returned by the endpoint (kept by ``keeper``), else the
    connection's. When the answer holds a new refresh token (rotation) it is kept. When the endpoint
    says ``invalid_grant`` and another process has rotated the token meanwhile, the request is made
    once more with the newer token.
    """

    grant_type = "refresh_token"

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        keeper: RefreshTokenKeeper | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(settings, clock=clock)
        self.keeper: RefreshTokenKeeper = keeper if keeper is not None else default_keeper()
        self.keeper_key = keeper_key(settings)

    def current_refresh_token(self) -> str:
        return self.keeper.load(self.keeper_key) or self.settings.refresh_token

    def request_for(self, refresh_token: str) -> tuple[dict[str, str], tuple[str, str] | None]:
        data = {"grant_type": self.grant_type, "refresh_token": refresh_token}
        if self.settings.scope:
            data["scope"] = self.settings.scope
        return self._client_secret(data)

    def request_data(self) -> tuple[dict[str, str], tuple[str, str] | None]:
        return self.request_for(self.current_refresh_token())

    def fetch(self) -> tuple[str, float]:
        used = self.current_refresh_token()
        mask_secret(used)
        try:
            payload = self._post_with(used)
        except TokenEndpointError as err:
            newer = self.keeper.load(self.keeper_key)
            if err.error != "invalid_grant" or not newer or newer == used:
                raise
            log.info(
                "refresh token of connection %r was rotated meanwhile; retrying once", self.settings.conn_id
            )
            used = newer
            payload = self._post_with(used)
        token, lifetime = read_token_response(self.settings, payload)
        rotated = payload.get("refresh_token")
        if isinstance(rotated, str) and rotated and rotated != used:
            self.keeper.save(self.keeper_key, rotated)
            log.info(
                "the token endpoint rotated the refresh token of connection %r; kept", self.settings.conn_id
            )
        return token, lifetime

    def _post_with(self, refresh_token: str) -> Mapping[str, Any]:
        data, auth = self.request_for(refresh_token)
        return post_token_request(
            self.settings, data, auth, token_url=self.token_url, secrets=(refresh_token,)
        )


class JwtBearerTokenProvider(_CachingTokenProvider):
    """The JWT bearer grant (RFC 7523 section 2.1) of a Google service account.

    The assertion is signed with the service account's key; its ``sub`` is the mailbox to send as,
    which domain-wide delegation must allow for the scope.
    """

    grant_type = "jwt_bearer"

    def __init__(self, settings: SmtpSettings, *, clock: Clock = time.time) -> None:
        super().__init__(settings, clock=clock)
        self._key: oauth2_jwt.ServiceAccountKey | None = None

    @property
    def key(self) -> oauth2_jwt.ServiceAccountKey:
        if self._key is None:
            self._key = oauth2_jwt.load_service_account_key(self.settings)
        return self._key

    @property
    def token_url(self) -> str:
        if self.settings.token_url:
            return self.settings.token_url
        return oauth2_jwt.service_account_token_url(self.settings, self.key)

    @property
    def identity(self) -> str:
        # the key's path or a digest-free marker: the cache key must not need the file read
        return self.settings.service_account_key_path or "key-in-connection"

    @property
    def cache_key(self) -> CacheKey:
        return (*super().cache_key[:5], self.settings.oauth2_subject)

    def request_data(self) -> tuple[dict[str, str], tuple[str, str] | None]:
        settings = self.settings
        assertion = oauth2_jwt.service_account_assertion(
            self.key,
            token_url=self.token_url,
            scope=settings.scope,
            subject=settings.oauth2_subject,
            now=self.clock(),
        )
        mask_secret(assertion)
        return {"grant_type": oauth2_jwt.JWT_BEARER_GRANT, "assertion": assertion}, None

    def fetch(self) -> tuple[str, float]:
        key = self.key
        payload = self.post(*self.request_data(), client_email=key.client_email, sa_client_id=key.client_id)
        return read_token_response(self.settings, payload)


_PROVIDERS: dict[str, Callable[[SmtpSettings], TokenProvider]] = {
    "client_credentials": ClientCredentialsTokenProvider,
    "refresh_token": RefreshTokenProvider,
    "jwt_bearer": JwtBearerTokenProvider,
}


def token_provider_for(settings: SmtpSettings) -> TokenProvider:
    """The token provider of a connection's grant_type."""
    try:
        return _PROVIDERS[settings.grant_type](settings)
    except KeyError:
        raise ValueError(f"unknown grant_type {settings.grant_type!r}") from None


def get_oauth2_token(settings: SmtpSettings, *, force_refresh: bool = False) -> tuple[str, bool]:
    """Return (access token, came from the cache). One token request per expiry, per process."""
    return token_provider_for(settings).get_token(force_refresh=force_refresh)


# --------------------------------------------------------------------------------------------
# the token request and its response (shared by every grant)
# --------------------------------------------------------------------------------------------
def post_token_request(
    settings: SmtpSettings,
    data: Mapping[str, str],
    auth: tuple[str, str] | None,
    *,
    token_url: str = "",
    secrets: tuple[str, ...] = (),
    facts: Mapping[str, str] | None = None,
) -> Mapping[str, Any]:
    """POST the form to the token endpoint; return its JSON object, or raise MailDeliveryError.

    ``secrets`` are redacted from messages besides the connection's; ``facts`` feed the hint of a
    refusal (see :func:`~airflow_failnotify.hooks.oauth2_errors.token_error`).
    """
    url = token_url or settings.token_url
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
            redact(f"token endpoint {url} unreachable ({reason})", (*settings.secrets, *secrets)),
            temporary=True,
        ) from err

    status = response.status_code
    try:
        payload: Any = response.json()
    except ValueError:
        payload = None
    if status >= 400:
        raise token_error(settings, status, payload, token_url=url, secrets=secrets, extra=facts)
    if not isinstance(payload, Mapping):
        content_type = response.headers.get("Content-Type", "unknown")
        raise MailDeliveryError(
            f"token endpoint {url} answered {status} with a body that is not a JSON object "
            f"(content type {content_type}); check token_url",
            temporary=False,
        )
    return payload


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
    log.debug("fetched an OAuth 2.0 token (%s grant), valid %s s", settings.grant_type, lifetime)
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
