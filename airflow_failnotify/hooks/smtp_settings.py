"""Settings of a ``failnotify_smtp`` connection: parsing and validation. Pure: no Airflow import.

The connection form, the CLI and the tests validate a connection with :func:`validate_smtp_settings`
(field -> message) or build the typed :class:`SmtpSettings` with
:meth:`SmtpSettings.from_connection_fields`, which refuses an invalid combination with
:class:`SmtpSettingsError` naming the fields.

Standard connection fields: host, port, login (SMTP user name, defaults to ``from_email``) and
password (Basic Auth). Everything else lives in the connection's extras; an empty string counts as
missing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field, replace
from typing import Any

from airflow_failnotify.core.addresses import is_connection_address, parse_connection_recipients
from airflow_failnotify.hooks.extras import choice as _choice
from airflow_failnotify.hooks.extras import is_missing as _is_missing
from airflow_failnotify.hooks.extras import text as _text
from airflow_failnotify.hooks.oauth2_settings import oauth2_fields

SECURITY_MODES = ("none", "starttls", "ssl")
AUTH_TYPES = ("none", "basic", "oauth2")
DEFAULT_PORT = 25
DEFAULT_TIMEOUT = 30.0
DEFAULT_RESPONSE_PARAMETER: dict[str, str] = {"accessTokenKey": "access_token", "expiresInKey": "expires_in"}

#: The extras this connection type reads (everything but host, port, login and password).
EXTRA_FIELDS = (
    "security",
    "auth_type",
    "from_email",
    "grant_type",
    "token_url",
    "client_id",
    "client_secret",
    "scope",
    "token_auth_method",
    "private_key",
    "certificate_thumbprint",
    "refresh_token",
    "service_account_key",
    "service_account_key_path",
    "subject",
    "response_parameter",
    "timeout",
    "to_email",
    "ca_file",
)


class SmtpSettingsError(ValueError):
    """An invalid ``failnotify_smtp`` connection. ``errors`` maps each bad field to its message."""

    def __init__(self, errors: Mapping[str, str], conn_id: str = "") -> None:
        self.errors = dict(errors)
        self.conn_id = conn_id
        where = f"connection {conn_id!r}" if conn_id else "SMTP connection"
        detail = "; ".join(f"{name}: {message}" for name, message in self.errors.items())
        super().__init__(f"{where} is invalid: {detail}")


@dataclass(frozen=True)
class SmtpSettings:
    """The typed, validated settings of one ``failnotify_smtp`` connection."""

    host: str
    from_email: str
    port: int = DEFAULT_PORT
    security: str = "none"
    auth_type: str = "none"
    login: str = ""
    password: str = field(default="", repr=False)
    grant_type: str = "client_credentials"
    token_url: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    scope: str = ""
    token_auth_method: str = "client_secret_post"
    private_key: str = field(default="", repr=False)
    certificate_thumbprint: str = ""
    refresh_token: str = field(default="", repr=False)
    service_account_key: str = field(default="", repr=False)
    service_account_key_path: str = ""
    subject: str = ""
    access_token_key: str = "access_token"
    expires_in_key: str = "expires_in"
    timeout: float = DEFAULT_TIMEOUT
    to_emails: tuple[str, ...] = ()
    ca_file: str = ""
    conn_id: str = ""

    @property
    def address(self) -> str:
        """``host:port``, as used in messages."""
        return f"{self.host}:{self.port}"

    @property
    def smtp_user(self) -> str:
        """The user name sent in AUTH: the login, or the sender address when the login is empty."""
        return self.login or self.from_email

    @property
    def oauth2_subject(self) -> str:
        """The ``sub`` of a jwt_bearer assertion: ``subject``, else the SMTP user name."""
        return self.subject or self.smtp_user

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret of these settings (to mask and to redact), non-empty only.

        A service account key counts whole and by its private key (a message may quote either).
        """
        found = [self.password, self.client_secret, self.private_key, self.refresh_token]
        if self.service_account_key:
            found.append(self.service_account_key)
            with suppress(ValueError, AttributeError):
                found.append(str(json.loads(self.service_account_key).get("private_key") or ""))
        return tuple(s for s in found if s)

    @classmethod
    def from_connection_fields(
        cls,
        *,
        host: str | None,
        port: int | str | None = None,
        login: str | None = None,
        password: str | None = None,
        extra: Mapping[str, Any] | str | None = None,
        conn_id: str = "",
    ) -> SmtpSettings:
        """Build settings from a connection's fields; raise :class:`SmtpSettingsError` when invalid."""
        settings, errors = _parse(host=host, port=port, login=login, password=password, extra=extra)
        if errors or settings is None:
            raise SmtpSettingsError(errors, conn_id=conn_id)
        return replace(settings, conn_id=conn_id)


def validate_smtp_settings(
    *,
    host: str | None,
    port: int | str | None = None,
    login: str | None = None,
    password: str | None = None,
    extra: Mapping[str, Any] | str | None = None,
) -> dict[str, str]:
    """Return field -> message for every problem of these connection fields (empty when valid)."""
    _, errors = _parse(host=host, port=port, login=login, password=password, extra=extra)
    return errors


def parse_response_parameter(value: Any) -> tuple[str, str]:
    """Return (token path, expires-in path) from a response_parameter (a dict or a JSON string).

    Missing keys take the defaults. Raise ValueError with a message a person can act on.
    """
    if _is_missing(value):
        return DEFAULT_RESPONSE_PARAMETER["accessTokenKey"], DEFAULT_RESPONSE_PARAMETER["expiresInKey"]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"not valid JSON ({err.msg} at character {err.pos}); expected e.g. "
                f"{json.dumps(DEFAULT_RESPONSE_PARAMETER)}"
            ) from err
    if not isinstance(value, Mapping):
        raise ValueError(
            f"must be a JSON object such as {json.dumps(DEFAULT_RESPONSE_PARAMETER)}, "
            f"not {type(value).__name__}"
        )
    unknown = sorted(set(value) - set(DEFAULT_RESPONSE_PARAMETER))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; allowed: accessTokenKey, expiresInKey")
    paths = []
    for key in ("accessTokenKey", "expiresInKey"):
        path = value.get(key, DEFAULT_RESPONSE_PARAMETER[key])
        if _is_missing(path):
            path = DEFAULT_RESPONSE_PARAMETER[key]
        if not isinstance(path, str) or any(not part for part in path.split(".")):
            raise ValueError(f"{key} must be a key or a dotted path such as 'data.access_token'")
        paths.append(path)
    return paths[0], paths[1]


def default_security_for_port(port: int) -> str:
    """587 -> starttls, 465 -> ssl, anything else -> none."""
    return {587: "starttls", 465: "ssl"}.get(port, "none")


def _extras(extra: Mapping[str, Any] | str | None) -> tuple[Mapping[str, Any], dict[str, str]]:
    """The extras as a mapping, or the error of the ``extra`` field."""
    if _is_missing(extra):
        return {}, {}
    if isinstance(extra, str):
        try:
            loaded = json.loads(extra)
        except json.JSONDecodeError as err:
            return {}, {"extra": f"not valid JSON ({err.msg})"}
        if not isinstance(loaded, Mapping):
            return {}, {"extra": "must be a JSON object"}
        return loaded, {}
    if isinstance(extra, Mapping):
        return extra, {}
    return {}, {"extra": f"must be a JSON object, not {type(extra).__name__}"}


def _port(port: int | str | None, errors: dict[str, str]) -> int:
    if _is_missing(port):
        return DEFAULT_PORT
    try:
        value = int(str(port).strip())
    except ValueError:
        errors["port"] = f"must be a whole number between 1 and 65535, not {port!r}"
        return DEFAULT_PORT
    if not 1 <= value <= 65535:
        errors["port"] = f"must be between 1 and 65535, not {value}"
    return value


def _from_email(extras: Mapping[str, Any], errors: dict[str, str]) -> str:
    from_email = _text(extras, "from_email")
    if not from_email:
        errors["from_email"] = "the sender email is required whatever the authentication type"
    elif not is_connection_address(from_email):
        errors["from_email"] = f"{from_email!r} is not an email address"
    return from_email


def _timeout(extras: Mapping[str, Any], errors: dict[str, str]) -> float:
    raw_timeout = extras.get("timeout")
    if _is_missing(raw_timeout):
        return DEFAULT_TIMEOUT
    try:
        if isinstance(raw_timeout, bool) or not isinstance(raw_timeout, (int, float, str)):
            raise ValueError
        timeout = float(raw_timeout)
    except (TypeError, ValueError):
        errors["timeout"] = f"must be a number of seconds, not {raw_timeout!r}"
        return DEFAULT_TIMEOUT
    if not 0 < timeout <= 3600:
        errors["timeout"] = f"must be more than 0 and at most 3600 seconds, not {raw_timeout!r}"
    return timeout


def _to_emails(extras: Mapping[str, Any], errors: dict[str, str]) -> list[str]:
    raw_to = extras.get("to_email")
    if _is_missing(raw_to):
        return []
    if not isinstance(raw_to, (str, list, tuple)):
        errors["to_email"] = "must be comma separated email addresses"
        return []
    to_emails = parse_connection_recipients(raw_to)
    bad = [addr for addr in to_emails if not is_connection_address(addr)]
    if bad or not to_emails:
        errors["to_email"] = f"not an email address: {', '.join(bad) or raw_to!r}"
    return to_emails


def _parse(
    *,
    host: str | None,
    port: int | str | None,
    login: str | None,
    password: str | None,
    extra: Mapping[str, Any] | str | None,
) -> tuple[SmtpSettings | None, dict[str, str]]:
    extras, errors = _extras(extra)
    if errors:
        return None, errors

    host_value = "" if _is_missing(host) else str(host).strip()
    if not host_value:
        errors["host"] = "the SMTP server host is required"
    port_value = _port(port, errors)
    security = _choice(extras, "security", SECURITY_MODES, errors) or default_security_for_port(port_value)
    auth_type = _choice(extras, "auth_type", AUTH_TYPES, errors) or "none"
    from_email = _from_email(extras, errors)

    login_value = "" if _is_missing(login) else str(login).strip()
    password_value = "" if password is None else str(password)
    if auth_type == "basic" and not password_value:
        errors["password"] = "Basic Auth needs a password"

    oauth2 = oauth2_fields(extras, auth_type, errors)

    token_key, expires_key = "access_token", "expires_in"
    try:
        token_key, expires_key = parse_response_parameter(extras.get("response_parameter"))
    except ValueError as err:
        errors["response_parameter"] = str(err)

    timeout = _timeout(extras, errors)
    to_emails = _to_emails(extras, errors)

    if errors:
        return None, errors
    return (
        SmtpSettings(
            host=host_value,
            port=port_value,
            security=security,
            auth_type=auth_type,
            from_email=from_email,
            login=login_value,
            password=password_value,
            **oauth2,
            access_token_key=token_key,
            expires_in_key=expires_key,
            timeout=timeout,
            to_emails=tuple(to_emails),
            ca_file=_text(extras, "ca_file"),
        ),
        {},
    )
