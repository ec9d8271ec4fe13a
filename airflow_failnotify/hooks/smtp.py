"""FailnotifySmtpHook: the SMTP transport, with no auth, Basic Auth or OAuth 2.0 (XOAUTH2).

Connection type ``failnotify_smtp``; its fields are parsed and validated by the pure
:mod:`airflow_failnotify.hooks.smtp_settings`, its OAuth 2.0 tokens come from
:mod:`airflow_failnotify.hooks.oauth2`.

Usage::

    with FailnotifySmtpHook("my_smtp") as hook:     # connect, EHLO, STARTTLS, EHLO, AUTH
        for msg in messages:                         # many messages over one connection
            refused = hook.send_message(msg)         # {} or {addr: (code, reply)} (partial refusal)

Every failure is a :class:`~airflow_failnotify.exceptions.MailDeliveryError` whose message says
what happened and where, never a secret; ``temporary`` and ``server_level`` tell the caller what to
do with the mail and with the rest of the pass.

Unlike smtplib.login (which takes a 503 for a success), AUTH is sent with ``docmd`` and must end
in 235. A 535 with a cached OAuth 2.0 token triggers one refresh and one retry.
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
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from email.message import Message
from types import TracebackType
from typing import Any

from airflow.sdk import BaseHook

from airflow_failnotify.core.addresses import parse_connection_recipients
from airflow_failnotify.exceptions import MailDeliveryError
from airflow_failnotify.hooks.oauth2 import token_provider_for
from airflow_failnotify.hooks.secrets import mask_secret, redact
from airflow_failnotify.hooks.smtp_errors import (
    auth_error,
    connection_error,
    data_error,
    delivery_error,
    recipients_error,
    sender_error,
)
from airflow_failnotify.hooks.smtp_form import UI_FIELD_BEHAVIOUR
from airflow_failnotify.hooks.smtp_settings import SmtpSettings, SmtpSettingsError

log = logging.getLogger(__name__)

#: A reused connection idle for longer than this is checked with NOOP before sending.
IDLE_CHECK_AFTER = 5.0


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
        return delivery_error(message, self._secrets(), temporary=temporary, server_level=server_level)

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
            raise connection_error(err, settings, "connecting", self._secrets()) from err

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
            raise connection_error(err, settings, "authenticating", self._secrets()) from err
        if code != 235:
            raise auth_error(settings, code, reply, self._secrets())

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
        tokens = token_provider_for(settings)
        token, cached = tokens.get_token()
        self._token = token
        code, reply = self._xoauth2(smtp, settings.smtp_user, token)
        if code == 535 and cached:
            log.info(
                "SMTP server %s refused a cached OAuth 2.0 token; fetching a new one and retrying once",
                settings.address,
            )
            tokens.invalidate(token)
            token, _ = tokens.get_token(force_refresh=True)
            self._token = token
            code, reply = self._xoauth2(smtp, settings.smtp_user, token)
        return code, reply

    @staticmethod
    def _xoauth2(smtp: smtplib.SMTP, user: str, token: str) -> tuple[int, bytes]:
        code, reply = smtp.docmd("AUTH", "XOAUTH2 " + _b64(f"user={user}\x01auth=Bearer {token}\x01\x01"))
        if code == 334:  # an error challenge (Gmail style): an empty line gets the final reply
            code, reply = smtp.docmd("")
        return code, reply

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
        recipients = list(dict.fromkeys(parse_connection_recipients(headers)))
        if not recipients:
            raise ValueError("the message has no recipient: set its To (or Cc/Bcc) header")
        smtp = self.get_conn()
        timer = _Timer()
        try:
            with _deadline(smtp, settings.timeout, timer):
                refused = smtp.send_message(msg, from_addr=settings.from_email, to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as err:
            self._last_used = time.monotonic()
            raise recipients_error(settings, err.recipients, self._secrets()) from err
        except smtplib.SMTPSenderRefused as err:
            self._last_used = time.monotonic()
            if err.smtp_code == 421:
                self.close()
            raise sender_error(
                settings, err.smtp_code, err.smtp_error, self._secrets(), size_bytes=_size_of(msg)
            ) from err
        except smtplib.SMTPDataError as err:
            self._last_used = time.monotonic()
            if err.smtp_code == 421:
                self.close()
            raise data_error(
                settings, err.smtp_code, err.smtp_error, self._secrets(), size_bytes=_size_of(msg)
            ) from err
        except (smtplib.SMTPException, OSError) as err:
            self.close()
            if timer.fired:
                raise self._error(
                    f"sending to {settings.address} did not finish within {settings.timeout:g} s",
                    temporary=True,
                ) from err
            raise connection_error(err, settings, "sending", self._secrets()) from err
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
        from airflow_failnotify.hooks.smtp_form import CONN_FIELDS

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


def _size_of(msg: Message) -> int | None:
    """The message's size on the wire (for a refusal's hint); None if it cannot be serialised."""
    try:
        return len(msg.as_bytes())
    except Exception:
        return None
