"""Where a rotated OAuth 2.0 refresh token is kept: failnotify's store, encrypted with Airflow's Fernet key.

A token endpoint may answer a refresh_token grant with a new refresh token (rotation; with strict
rotation the old one stops working). The connection cannot be rewritten from a task, and the token
cache lives in one process's memory, so the rotated token is kept where every process and machine
that sends mail finds it: the store's ``failnotify_setting`` table (PostgreSQL in production, the
same database the outbox lives in). Its value is encrypted with Airflow's own Fernet key
(``[core] fernet_key``, the key that encrypts Airflow's connection passwords), so a dump of the store
holds no usable token. Never logged, never in the configuration export (which exports registrations
only), never shown by a view.

The setting's key is ``oauth2_refresh_token:`` plus a digest of (connection id, token URL, client id,
the connection's configured refresh token): when an operator pastes a new refresh token into the
connection (after a new consent), the key changes and the connection's token is used again.

Without a Fernet key nothing is written (a plain token in a table would be a leak): the rotated token
is then kept in this process only, with a warning that says to set ``[core] fernet_key``. A store that
cannot be reached is a warning too: the in-process copy still serves this process.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any, Protocol

from airflow_failnotify.hooks.secrets import mask_secret
from airflow_failnotify.hooks.smtp_settings import SmtpSettings

log = logging.getLogger(__name__)

SETTING_PREFIX = "oauth2_refresh_token:"


class RefreshTokenKeeper(Protocol):
    """Keeps the current refresh token of a connection across processes."""

    def load(self, key: str) -> str | None: ...

    def save(self, key: str, token: str) -> None: ...


def keeper_key(settings: SmtpSettings) -> str:
    """The setting key of a connection's refresh token lineage (no secret recoverable from it)."""
    material = "\x00".join(
        (settings.conn_id, settings.token_url, settings.client_id, settings.refresh_token)
    ).encode("utf-8")
    return SETTING_PREFIX + hashlib.sha256(material).hexdigest()[:40]


class MemoryRefreshTokens:
    """This process only (tests, and the fallback of :class:`StoreRefreshTokens`)."""

    def __init__(self) -> None:
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def load(self, key: str) -> str | None:
        with self._lock:
            return self._tokens.get(key)

    def save(self, key: str, token: str) -> None:
        with self._lock:
            self._tokens[key] = token

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


class StoreRefreshTokens:
    """The store's setting table, Fernet-encrypted; this process's memory in front of it."""

    def __init__(self, store: Any = None, fernet: Any = None) -> None:
        self._store = store
        self._fernet = fernet
        self.memory = MemoryRefreshTokens()

    def _get_store(self) -> Any:
        if self._store is not None:
            return self._store
        from airflow_failnotify.store import get_store

        return get_store()

    def _get_fernet(self) -> Any:
        if self._fernet is not None:
            return self._fernet
        from airflow.models.crypto import get_fernet

        return get_fernet()

    def load(self, key: str) -> str | None:
        remembered = self.memory.load(key)
        if remembered is not None:
            return remembered
        try:
            fernet = self._get_fernet()
            stored = self._get_store().get_setting(key) if fernet.is_encrypted else None
            token = None if stored is None else str(fernet.decrypt(stored.encode("ascii")).decode("utf-8"))
        except Exception as err:  # the connection's own refresh token still works
            log.warning(
                "could not read a kept OAuth 2.0 refresh token from failnotify's store (%s); "
                "using the connection's refresh token",
                type(err).__name__,
            )
            return None
        if token is not None:
            mask_secret(token)
            self.memory.save(key, token)
        return token

    def save(self, key: str, token: str) -> None:
        mask_secret(token)
        self.memory.save(key, token)
        try:
            fernet = self._get_fernet()
            if not fernet.is_encrypted:
                log.warning(
                    "the token endpoint rotated an OAuth 2.0 refresh token; it is kept in this process "
                    "only because Airflow has no Fernet key: set [core] fernet_key so that failnotify "
                    "keeps it, encrypted, in its store for every worker"
                )
                return
            self._get_store().set_setting(key, fernet.encrypt(token.encode("utf-8")).decode("ascii"))
        except Exception as err:
            log.warning(
                "could not keep a rotated OAuth 2.0 refresh token in failnotify's store (%s); it is "
                "kept in this process only: if the endpoint revokes the previous token, other workers "
                "get invalid_grant until the connection has a new refresh token",
                type(err).__name__,
            )


_DEFAULT: StoreRefreshTokens | None = None
_DEFAULT_LOCK = threading.Lock()


def default_keeper() -> StoreRefreshTokens:
    """The process-wide keeper (store + Fernet key from the configuration)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = StoreRefreshTokens()
        return _DEFAULT


def forget_kept_in_memory() -> None:
    """Forget this process's copies (tests: the next load reads the store)."""
    if _DEFAULT is not None:
        _DEFAULT.memory.clear()
