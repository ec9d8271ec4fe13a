"""FailnotifySmtpHook: SMTP with no auth, Basic Auth or OAuth 2.0 (client credentials + XOAUTH2).

Connection type ``failnotify_smtp``; its fields are parsed and validated by the pure
:mod:`airflow_failnotify.hooks.smtp_settings`.

Usage::

    with FailnotifySmtpHook("my_smtp") as hook:     # connect, EHLO, STARTTLS, EHLO, AUTH
        for msg in messages:                         # many messages over one connection
            refused = hook.send_message(msg)         # {} or {addr: (code, reply)} (partial refusal)

Every failure is a :class:`~airflow_failnotify.exceptions.MailDeliveryError` whose message says
what happened and where, never a secret; ``temporary`` and ``server_level`` tell the caller what to
do with the mail and with the rest of the pass.

Unlike smtplib.login (which takes a 503 for a success), AUTH is sent with ``docmd`` and must end
in 235. OAuth 2.0 tokens are cached per process (module level, keyed by connection id, token URL,
client id and scope) until shortly before they expire; a 535 with a cached token triggers one
refresh and one retry.
"""

from __future__ import annotations

import base64
import copy
import logging
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from email.message import Message
from types import TracebackType
from typing import Any

import requests
from airflow.sdk import BaseHook

from airflow_failnotify.exceptions import MailDeliveryError
from airflow_failnotify.hooks.smtp_settings import (
    UI_FIELD_BEHAVIOUR,
    SmtpSettings,
    SmtpSettingsError,
    parse_recipients,
)

log = logging.getLogger(__name__)

#: A cached token is refreshed this long before it expires (at most; a tenth of short lifetimes).
TOKEN_EXPIRY_MARGIN = 60.0
#: Lifetime assumed when the token response does not say (the 535 retry covers a shorter one).
DEFAULT_TOKEN_LIFETIME = 300.0
#: A reused connection idle for longer than this is checked with NOOP before sending.
IDLE_CHECK_AFTER = 5.0

CacheKey = tuple[str, str, str, str]


# --------------------------------------------------------------------------------------------
# secrets
# --------------------------------------------------------------------------------------------
def mask_secret(value: str) -> None:
    """Register ``value`` with Airflow's secret masker (task SDK first); a no-op without Airflow."""
    if not value:
        return
    masker: Any = None
    try:
        from airflow.sdk.log import mask_secret as masker
    except ImportError:  # pragma: no cover - older / newer Airflow layouts
        try:
            from airflow.sdk.execution_time.secrets_masker import (  # type: ignore[no-redef]
                mask_secret as masker,
            )
        except ImportError:
            try:
                from airflow.utils.log.secrets_masker import mask_secret as masker  # type: ignore[no-redef]
            except ImportError:
                return
    try:
        masker(value)
    except Exception:  # masking must never break sending
        log.debug("could not register a secret with Airflow's secret masker", exc_info=True)


def redact(text: str, secrets: tuple[str, ...] | list[str] | set[str]) -> str:
    """Replace every secret (longest first) in ``text`` with ***."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


# --------------------------------------------------------------------------------------------
# OAuth 2.0 token cache
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


def _cache_key(settings: SmtpSettings) -> CacheKey:
    return (settings.conn_id, settings.token_url, settings.client_id, settings.scope)


def _key_lock(key: CacheKey) -> threading.Lock:
    with _CACHE_LOCK:
        return _TOKEN_LOCKS.setdefault(key, threading.Lock())


def get_oauth2_token(settings: SmtpSettings, *, force_refresh: bool = False) -> tuple[str, bool]:
    """Return (access token, came from the cache). One token request per expiry, per process."""
    key = _cache_key(settings)
    with _key_lock(key):
        cached = _TOKEN_CACHE.get(key)
        if cached is not None and not force_refresh and time.monotonic() < cached.refresh_at:
            return cached.token, True
        token, lifetime = fetch_oauth2_token(settings)
        margin = min(TOKEN_EXPIRY_MARGIN, lifetime / 10)
        _TOKEN_CACHE[key] = _CachedToken(token, time.monotonic() + lifetime - margin)
        return token, False


def _invalidate_token(settings: SmtpSettings, token: str) -> None:
    key = _cache_key(settings)
    with _key_lock(key):
        cached = _TOKEN_CACHE.get(key)
        if cached is not None and cached.token == token:
            del _TOKEN_CACHE[key]


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


def fetch_oauth2_token(settings: SmtpSettings) -> tuple[str, float]:
    """Ask the token endpoint for a token (client-credentials grant); return (token, lifetime s)."""
    url = settings.token_url
    secrets = settings.secrets
    data = {"grant_type": "client_credentials"}
    if settings.scope:
        data["scope"] = settings.scope
    auth: tuple[str, str] | None = None
    if settings.token_auth_method == "client_secret_basic":
        auth = (settings.client_id, settings.client_secret)
    else:
        data["client_id"] = settings.client_id
        data["client_secret"] = settings.client_secret
    try:
        response = requests.post(
            url, data=data, auth=auth, timeout=settings.timeout, headers={"Accept": "application/json"}
        )
    except requests.Timeout as err:
        raise MailDeliveryError(
            f"token endpoint {url} did not answer within {settings.timeout:g} s", temporary=True
        ) from err
    except requests.RequestException as err:
        reason = _root_reason(err)
        raise MailDeliveryError(
            redact(f"token endpoint {url} unreachable ({reason})", secrets), temporary=True
        ) from err

    status = response.status_code
    try:
        payload: Any = response.json()
    except ValueError:
        payload = None
    if status >= 400:
        detail = ""
        if isinstance(payload, Mapping):
            detail = " ".join(
                str(payload.get(k))[:200] for k in ("error", "error_description") if payload.get(k)
            )
        message = f"token endpoint {url} answered {status}" + (f" {detail}" if detail else "")
        temporary = status >= 500 or status in (408, 429)
        if not temporary:
            message += "; check client_id, client_secret, scope and token_auth_method of the connection"
        raise MailDeliveryError(redact(message, secrets), temporary=temporary)
    if not isinstance(payload, Mapping):
        content_type = response.headers.get("Content-Type", "unknown")
        raise MailDeliveryError(
            f"token endpoint {url} answered {status} with a body that is not a JSON object "
            f"(content type {content_type}); check token_url",
            temporary=False,
        )
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
    lifetime = DEFAULT_TOKEN_LIFETIME
    try:
        raw_lifetime = _lookup(payload, settings.expires_in_key)
        lifetime = float(raw_lifetime)
    except KeyError:
        log.debug("token response of %s has no %r; assuming %s s", url, settings.expires_in_key, lifetime)
    except (TypeError, ValueError):
        log.warning(
            "token response of %s: %r is not a number; assuming %s s", url, settings.expires_in_key, lifetime
        )
    if lifetime <= 0:
        lifetime = DEFAULT_TOKEN_LIFETIME
    log.debug("fetched an OAuth 2.0 token from %s, valid %s s", url, lifetime)
    return token, lifetime


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


# --------------------------------------------------------------------------------------------
# the hook
# --------------------------------------------------------------------------------------------
def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:300]


class FailnotifySmtpHook(BaseHook):
    """Send email through a ``failnotify_smtp`` connection.

    :param failnotify_smtp_conn_id: the connection id.
    :param settings: use these settings instead of reading the connection (e.g. to test a form
        before saving it); the connection is then never read.
    """

    conn_name_attr = "failnotify_smtp_conn_id"
    default_conn_name = "failnotify_smtp_default"
    conn_type = "failnotify_smtp"
    hook_name = "Failnotify SMTP"

    def __init__(
        self,
        failnotify_smtp_conn_id: str = default_conn_name,
        *,
        settings: SmtpSettings | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.failnotify_smtp_conn_id = failnotify_smtp_conn_id
        self._settings = settings
        self._smtp: smtplib.SMTP | None = None
        self._last_used = 0.0
        self._token = ""

    # -- connection settings -----------------------------------------------------------------
    @property
    def settings(self) -> SmtpSettings:
        """The connection's settings, read once. MailDeliveryError (permanent) when invalid."""
        if self._settings is None:
            conn_id = self.failnotify_smtp_conn_id
            try:
                conn = self.get_connection(conn_id)
            except Exception as err:
                raise MailDeliveryError(
                    f"connection {conn_id!r} cannot be read ({type(err).__name__}); "
                    f"create it with type {self.conn_type}",
                    temporary=False,
                ) from err
            if conn.conn_type and conn.conn_type != self.conn_type:
                log.warning(
                    "connection %r has type %r; reading it as %s", conn_id, conn.conn_type, self.conn_type
                )
            try:
                settings = SmtpSettings.from_connection_fields(
                    host=conn.host,
                    port=conn.port,
                    login=conn.login,
                    password=conn.password,
                    extra=conn.extra_dejson,
                    conn_id=conn_id,
                )
            except SmtpSettingsError as err:
                raise MailDeliveryError(str(err), temporary=False) from err
            for secret in settings.secrets:
                mask_secret(secret)
            self._settings = settings
        return self._settings

    def _secrets(self) -> tuple[str, ...]:
        settings = self._settings
        found = list(settings.secrets) if settings else []
        if self._token:
            found.append(self._token)
        return tuple(found)

    def _error(self, message: str, *, temporary: bool, server_level: bool = True) -> MailDeliveryError:
        return MailDeliveryError(
            redact(message, self._secrets()), temporary=temporary, server_level=server_level
        )

    # -- connecting --------------------------------------------------------------------------
    def get_conn(self) -> smtplib.SMTP:
        """Connect, EHLO, STARTTLS + EHLO when asked, authenticate; reuse an open connection."""
        if self._smtp is not None:
            if time.monotonic() - self._last_used < IDLE_CHECK_AFTER or self._alive(self._smtp):
                return self._smtp
            self.close()
        settings = self.settings
        smtp = self._connect(settings)
        try:
            self._authenticate(smtp, settings)
        except BaseException:
            _close_quietly(smtp)
            raise
        self._smtp = smtp
        self._last_used = time.monotonic()
        log.debug(
            "connected to SMTP server %s (%s, auth %s)",
            settings.address,
            settings.security,
            settings.auth_type,
        )
        return smtp

    def __enter__(self) -> FailnotifySmtpHook:
        self.get_conn()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """QUIT and close the connection (quietly)."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            _close_quietly(smtp)

    @staticmethod
    def _alive(smtp: smtplib.SMTP) -> bool:
        try:
            return smtp.noop()[0] == 250
        except (smtplib.SMTPException, OSError):
            return False

    def _ssl_context(self, settings: SmtpSettings) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=settings.ca_file or None)
        except (OSError, ssl.SSLError) as err:
            raise self._error(
                f"cannot load ca_file {settings.ca_file!r} of connection {settings.conn_id!r}: {err}",
                temporary=False,
            ) from err

    def _connect(self, settings: SmtpSettings) -> smtplib.SMTP:
        context = self._ssl_context(settings) if settings.security != "none" else None
        smtp: smtplib.SMTP | None = None
        try:
            if settings.security == "ssl":
                smtp = smtplib.SMTP_SSL(
                    settings.host, settings.port, timeout=settings.timeout, context=context
                )
            else:
                smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
            code, reply = smtp.ehlo()
            if code != 250:
                raise smtplib.SMTPResponseException(code, reply)
            if settings.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise self._error(
                        f"SMTP server {settings.address} does not offer STARTTLS; "
                        "set security to none or ssl to match the server",
                        temporary=False,
                    )
                smtp.starttls(context=context)
                code, reply = smtp.ehlo()
                if code != 250:
                    raise smtplib.SMTPResponseException(code, reply)
            return smtp
        except MailDeliveryError:
            if smtp is not None:
                _close_quietly(smtp)
            raise
        except (smtplib.SMTPException, OSError) as err:
            if smtp is not None:
                _close_quietly(smtp)
            raise self._connection_error(err, settings, "connecting") from err

    def _connection_error(self, err: BaseException, settings: SmtpSettings, doing: str) -> MailDeliveryError:
        address = settings.address
        context = err.__context__ or err.__cause__
        if isinstance(err, (TimeoutError, socket.timeout)) or (
            isinstance(err, smtplib.SMTPServerDisconnected) and isinstance(context, TimeoutError)
        ):
            return self._error(f"no answer from {address} within {settings.timeout:g} s", temporary=True)
        if isinstance(err, ConnectionRefusedError):
            return self._error(
                f"SMTP server {address} refused the connection (is it running?)", temporary=True
            )
        if isinstance(err, socket.gaierror):
            return self._error(f"cannot resolve SMTP host {settings.host!r} ({err.strerror})", temporary=True)
        if isinstance(err, ssl.SSLCertVerificationError):
            return self._error(
                f"TLS certificate of {address} is not trusted ({err.verify_message}); "
                "install its CA or set ca_file on the connection",
                temporary=False,
            )
        if isinstance(err, ssl.SSLError):
            return self._error(
                f"TLS with {address} failed ({err.reason or err}); check that security "
                f"({settings.security}) matches the port",
                temporary=False,
            )
        if isinstance(err, smtplib.SMTPServerDisconnected):
            return self._error(f"SMTP server {address} closed the connection while {doing}", temporary=True)
        if isinstance(err, smtplib.SMTPResponseException):
            code, text = err.smtp_code, _reply_text(err.smtp_error)
            return self._error(
                f"SMTP server {address} answered {code} {text} while {doing}", temporary=400 <= code < 500
            )
        if isinstance(err, OSError):
            reason = err.strerror or str(err) or type(err).__name__
            return self._error(f"cannot reach SMTP server {address} ({reason})", temporary=True)
        return self._error(f"SMTP failure with {address} while {doing}: {err}", temporary=True)

    # -- authentication ----------------------------------------------------------------------
    def _authenticate(self, smtp: smtplib.SMTP, settings: SmtpSettings) -> None:
        if settings.auth_type == "none":
            return
        if not smtp.has_extn("auth"):
            raise self._error(
                f"SMTP server {settings.address} does not offer AUTH"
                + (" (it may need security starttls or ssl)" if settings.security == "none" else "")
                + "; set auth_type to none if it needs no authentication",
                temporary=False,
            )
        mechanisms = smtp.esmtp_features.get("auth", "").upper().split()
        try:
            if settings.auth_type == "basic":
                code, reply = self._auth_basic(smtp, settings, mechanisms)
            else:
                code, reply = self._auth_oauth2(smtp, settings, mechanisms)
        except (smtplib.SMTPException, OSError) as err:
            raise self._connection_error(err, settings, "authenticating") from err
        if code != 235:
            raise self._auth_error(settings, code, reply)

    def _auth_basic(
        self, smtp: smtplib.SMTP, settings: SmtpSettings, mechanisms: list[str]
    ) -> tuple[int, bytes]:
        user, password = settings.smtp_user, settings.password
        if "PLAIN" in mechanisms:
            blob = _b64(f"\0{user}\0{password}")
            return smtp.docmd("AUTH", f"PLAIN {blob}")
        if "LOGIN" in mechanisms:
            code, reply = smtp.docmd("AUTH", "LOGIN")
            if code != 334:
                return code, reply
            code, reply = smtp.docmd(_b64(user))
            if code != 334:
                return code, reply
            return smtp.docmd(_b64(password))
        raise self._error(
            f"SMTP server {settings.address} offers neither AUTH PLAIN nor LOGIN for Basic Auth "
            f"(it offers: {' '.join(mechanisms) or 'nothing'})",
            temporary=False,
        )

    def _auth_oauth2(
        self, smtp: smtplib.SMTP, settings: SmtpSettings, mechanisms: list[str]
    ) -> tuple[int, bytes]:
        if "XOAUTH2" not in mechanisms:
            raise self._error(
                f"SMTP server {settings.address} does not offer AUTH XOAUTH2 "
                f"(it offers: {' '.join(mechanisms) or 'nothing'})",
                temporary=False,
            )
        token, cached = get_oauth2_token(settings)
        self._token = token
        code, reply = self._xoauth2(smtp, settings.smtp_user, token)
        if code == 535 and cached:
            log.info(
                "SMTP server %s refused a cached OAuth 2.0 token; fetching a new one and retrying once",
                settings.address,
            )
            _invalidate_token(settings, token)
            token, _ = get_oauth2_token(settings, force_refresh=True)
            self._token = token
            code, reply = self._xoauth2(smtp, settings.smtp_user, token)
        return code, reply

    @staticmethod
    def _xoauth2(smtp: smtplib.SMTP, user: str, token: str) -> tuple[int, bytes]:
        code, reply = smtp.docmd("AUTH", "XOAUTH2 " + _b64(f"user={user}\x01auth=Bearer {token}\x01\x01"))
        if code == 334:  # an error challenge (Gmail style): an empty line gets the final reply
            code, reply = smtp.docmd("")
        return code, reply

    def _auth_error(self, settings: SmtpSettings, code: int, reply: bytes) -> MailDeliveryError:
        text = _reply_text(reply)
        address, user = settings.address, settings.smtp_user
        if code == 535:
            what = "the OAuth 2.0 token" if settings.auth_type == "oauth2" else "the credentials"
            return self._error(
                f"SMTP server {address} refused {what} of {user} ({code} {text})", temporary=False
            )
        if code in (530, 538):
            return self._error(
                f"SMTP server {address} requires encryption for AUTH ({code} {text}); "
                "set security to starttls or ssl",
                temporary=False,
            )
        return self._error(
            f"SMTP server {address} did not accept AUTH for {user} ({code} {text})",
            temporary=400 <= code < 500,
        )

    # -- sending -----------------------------------------------------------------------------
    def send_message(self, msg: Message) -> dict[str, tuple[int, bytes]]:
        """Send one message over this hook's connection (opened on first use).

        Recipients come from the To, Cc and Bcc headers (Bcc is not transmitted); From is set to
        the connection's sender when absent; the envelope sender is always the connection's
        ``from_email``. Returns the refused recipients ({} when all were accepted).
        """
        settings = self.settings
        if msg.get("From") is None:
            msg["From"] = settings.from_email
        headers = [str(v) for name in ("To", "Cc", "Bcc") for v in msg.get_all(name, [])]
        recipients = list(dict.fromkeys(parse_recipients(headers)))
        if not recipients:
            raise ValueError("the message has no recipient: set its To (or Cc/Bcc) header")
        smtp = self.get_conn()
        timer = _Timer()
        try:
            with _deadline(smtp, settings.timeout, timer):
                refused = smtp.send_message(msg, from_addr=settings.from_email, to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as err:
            self._last_used = time.monotonic()
            raise self._recipients_error(settings, err.recipients) from err
        except smtplib.SMTPSenderRefused as err:
            self._last_used = time.monotonic()
            code = err.smtp_code
            if code == 421:
                self.close()
            raise self._error(
                f"SMTP server {settings.address} refused the sender {settings.from_email} "
                f"({code} {_reply_text(err.smtp_error)}); check from_email and the account's rights",
                temporary=400 <= code < 500,
            ) from err
        except smtplib.SMTPDataError as err:
            self._last_used = time.monotonic()
            code = err.smtp_code
            if code == 421:
                self.close()
                raise self._error(
                    f"SMTP server {settings.address} is closing the connection ({code} "
                    f"{_reply_text(err.smtp_error)})",
                    temporary=True,
                ) from err
            raise self._error(
                f"SMTP server {settings.address} refused the message ({code} {_reply_text(err.smtp_error)})",
                temporary=400 <= code < 500,
                server_level=False,
            ) from err
        except (smtplib.SMTPException, OSError) as err:
            self.close()
            if timer.fired:
                raise self._error(
                    f"sending to {settings.address} did not finish within {settings.timeout:g} s",
                    temporary=True,
                ) from err
            raise self._connection_error(err, settings, "sending") from err
        self._last_used = time.monotonic()
        if refused:
            log.warning(
                "SMTP server %s refused %d of %d recipient(s): %s",
                settings.address,
                len(refused),
                len(recipients),
                ", ".join(f"{addr} ({code})" for addr, (code, _) in refused.items()),
            )
        return dict(refused)

    def _recipients_error(
        self, settings: SmtpSettings, refused: Mapping[str, tuple[int, bytes]]
    ) -> MailDeliveryError:
        details = ", ".join(
            f"{addr} ({code} {_reply_text(reply)})" for addr, (code, reply) in refused.items()
        )
        temporary = bool(refused) and all(400 <= code < 500 for code, _ in refused.values())
        return self._error(
            f"SMTP server {settings.address} refused every recipient: {details}",
            temporary=temporary,
            server_level=False,
        )

    # -- Airflow UI --------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """Connect and authenticate, then QUIT. Never raises: (ok, what happened)."""
        try:
            settings = self.settings
            with self:
                pass
            auth = {"none": "no authentication", "basic": "Basic Auth", "oauth2": "OAuth 2.0 (XOAUTH2)"}
            return True, (
                f"connected to {settings.address} (security {settings.security}) "
                f"with {auth[settings.auth_type]} as {settings.smtp_user}"
            )
        except MailDeliveryError as err:
            return False, str(err)
        except Exception as err:  # never raise into the UI
            return False, redact(f"unexpected {type(err).__name__}: {err}", self._secrets())

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Field behaviour of the connection form (Airflow 3 reads provider-info ui-field-behaviour)."""
        return copy.deepcopy(UI_FIELD_BEHAVIOUR)

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the FAB connection form, where Airflow still reads them."""
        try:
            from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
            from flask_babel import lazy_gettext
            from wtforms import PasswordField, StringField
        except ImportError:
            return {}
        from airflow_failnotify.hooks.smtp_settings import CONN_FIELDS

        widgets: dict[str, Any] = {}
        for name, spec in CONN_FIELDS.items():
            label = lazy_gettext(spec["label"])
            if spec["schema"].get("format") == "password":
                widgets[name] = PasswordField(label, widget=BS3PasswordFieldWidget())
            else:
                widgets[name] = StringField(label, widget=BS3TextFieldWidget())
        return widgets


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _close_quietly(smtp: smtplib.SMTP) -> None:
    with suppress(smtplib.SMTPException, OSError):
        smtp.quit()
    with suppress(smtplib.SMTPException, OSError):
        smtp.close()


class _Timer:
    fired = False


@contextmanager
def _deadline(smtp: smtplib.SMTP, seconds: float, state: _Timer) -> Iterator[None]:
    """Abort the connection if the block has not finished within ``seconds`` (whole-mail timeout)."""

    def fire() -> None:
        state.fired = True
        sock = smtp.sock
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
