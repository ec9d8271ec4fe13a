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

import base64
import binascii
import json
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field, replace
from typing import Any

from airflow_failnotify.core.addresses import is_connection_address, parse_connection_recipients

SECURITY_MODES = ("none", "starttls", "ssl")
AUTH_TYPES = ("none", "basic", "oauth2")
GRANT_TYPES = ("client_credentials", "refresh_token", "jwt_bearer")
#: How the client authenticates at the token endpoint. ``private_key_jwt`` (RFC 7523 section 2.2, a
#: certificate credential on Microsoft's identity platform) is for the client-credentials grant only.
TOKEN_AUTH_METHODS = ("client_secret_post", "client_secret_basic", "private_key_jwt")
#: Google's token endpoint: the default for jwt_bearer when neither token_url nor the key's token_uri say.
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
SERVICE_ACCOUNT_KEY_FIELDS = ("client_email", "private_key")
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

#: ``conn-fields`` for get_provider_info() (Airflow 3 connection form). Secrets are password fields.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "security": {
        "label": "Security",
        "schema": {"type": ["string", "null"], "enum": [*SECURITY_MODES, None]},
        "description": "none, starttls or ssl. Empty: by port (587 starttls, 465 ssl, otherwise none).",
    },
    "auth_type": {
        "label": "Authentication type",
        "schema": {"type": ["string", "null"], "enum": [*AUTH_TYPES, None], "default": "none"},
        "description": "none (No Auth), basic (Basic Auth: login + password) "
        "or oauth2 (OAuth 2.0 + XOAUTH2).",
    },
    "from_email": {
        "label": "Sender email",
        "schema": {"type": ["string", "null"]},
        "description": "Mandatory whatever the authentication type. Also the default SMTP user name.",
    },
    "grant_type": {
        "label": "OAuth 2.0 grant",
        "schema": {"type": ["string", "null"], "enum": [*GRANT_TYPES, None], "default": "client_credentials"},
        "description": "client_credentials (Microsoft 365: client secret or certificate), "
        "refresh_token (Gmail / a user mailbox: consent obtained once) or "
        "jwt_bearer (Google Workspace: service account with domain-wide delegation). "
        "Presets: see the README, section OAuth 2.0 providers.",
    },
    "token_url": {
        "label": "Token URL",
        "schema": {"type": ["string", "null"]},
        "description": "OAuth 2.0 token endpoint. Microsoft 365: "
        "https://login.microsoftonline.com/<TENANT_ID>/oauth2/v2.0/token; Google and Gmail: "
        "https://oauth2.googleapis.com/token (jwt_bearer: empty takes the key's token_uri).",
    },
    "client_id": {
        "label": "Client ID",
        "schema": {"type": ["string", "null"]},
        "description": "Microsoft: the app registration's Application (client) ID; Gmail: the OAuth "
        "client ID. Not used by jwt_bearer (the key names its service account).",
    },
    "client_secret": {
        "label": "Client secret",
        "schema": {"type": ["string", "null"], "format": "password"},
        "description": "client_credentials with client_secret_post/basic, and refresh_token.",
    },
    "scope": {
        "label": "Scope",
        "schema": {"type": ["string", "null"]},
        "description": "Microsoft 365 client_credentials: https://outlook.office365.com/.default; "
        "Google (jwt_bearer, refresh_token): https://mail.google.com/",
    },
    "token_auth_method": {
        "label": "Token client authentication",
        "schema": {
            "type": ["string", "null"],
            "enum": [*TOKEN_AUTH_METHODS, None],
            "default": "client_secret_post",
        },
        "description": "client_secret_post (credentials in the form body), client_secret_basic "
        "(HTTP Basic) or private_key_jwt (client_credentials with a certificate: a signed client "
        "assertion, as Microsoft recommends for production apps).",
    },
    "private_key": {
        "label": "Certificate private key (PEM)",
        "schema": {"type": ["string", "null"], "format": "password"},
        "description": "private_key_jwt: the PEM private key of the certificate uploaded to the app "
        "registration (Certificates & secrets).",
    },
    "certificate_thumbprint": {
        "label": "Certificate thumbprint",
        "schema": {"type": ["string", "null"]},
        "description": "private_key_jwt: the certificate's SHA-1 thumbprint as the Entra portal shows "
        "it (40 hex digits); sent as the assertion's x5t header.",
    },
    "refresh_token": {
        "label": "Refresh token",
        "schema": {"type": ["string", "null"], "format": "password"},
        "description": "refresh_token grant: obtained once with the mailbox owner's consent. When the "
        "token endpoint rotates it, the new one is kept encrypted in failnotify's store.",
    },
    "service_account_key": {
        "label": "Service account key (JSON)",
        "schema": {"type": ["string", "null"], "format": "password"},
        "description": "jwt_bearer: the content of the service account's JSON key file "
        "(or give service_account_key_path).",
    },
    "service_account_key_path": {
        "label": "Service account key file",
        "schema": {"type": ["string", "null"]},
        "description": "jwt_bearer: path of the JSON key file on every machine that sends mail.",
    },
    "subject": {
        "label": "Mailbox to send as (sub)",
        "schema": {"type": ["string", "null"]},
        "description": "jwt_bearer: the Workspace user the service account acts for. Empty: the SMTP "
        "user name (login, else the sender email).",
    },
    "response_parameter": {
        "label": "Response parameter",
        "schema": {"type": ["string", "null"], "default": json.dumps(DEFAULT_RESPONSE_PARAMETER)},
        "description": "JSON telling where the token and its lifetime are in the token response; "
        "dotted paths for nested responses.",
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "schema": {"type": ["number", "null"], "default": DEFAULT_TIMEOUT},
        "description": "A mail not sent within it is not sent and counts as a send failure.",
    },
    "to_email": {
        "label": "Default To email",
        "schema": {"type": ["string", "null"]},
        "description": "Recipient(s) of a test email, comma separated.",
    },
    "ca_file": {
        "label": "CA certificate file",
        "schema": {"type": ["string", "null"]},
        "description": "Optional PEM file of certificates to trust for STARTTLS/SSL (e.g. a private CA).",
    },
}

#: ``ui-field-behaviour`` for get_provider_info() and FailnotifySmtpHook.get_ui_field_behaviour().
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "extra"],
    "relabeling": {"host": "SMTP server host", "login": "SMTP user name (optional)", "password": "Password"},
    "placeholders": {
        "host": "smtp.example.com",
        "port": "25, 587 (STARTTLS) or 465 (SSL)",
        "login": "defaults to the sender email",
        "password": "Basic Auth password",
        "from_email": "airflow@example.com",
        "grant_type": "client_credentials",
        "token_url": "https://login.microsoftonline.com/<TENANT_ID>/oauth2/v2.0/token",
        "scope": "https://outlook.office365.com/.default",
        "certificate_thumbprint": "40 hex digits (Entra: Certificates & secrets)",
        "service_account_key_path": "/opt/airflow/secrets/mail-sa.json",
        "subject": "airflow@example.com",
        "response_parameter": json.dumps(DEFAULT_RESPONSE_PARAMETER),
        "to_email": "ops@example.com, oncall@example.com",
    },
}


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


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(extras: Mapping[str, Any], name: str) -> str:
    value = extras.get(name)
    if _is_missing(value):
        return ""
    return str(value).strip()


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


def _choice(extras: Mapping[str, Any], name: str, allowed: tuple[str, ...], errors: dict[str, str]) -> str:
    """A lower-cased extra that must be one of ``allowed``; empty when missing."""
    value = _text(extras, name).lower()
    if value and value not in allowed:
        errors[name] = f"unknown {name} {value!r}; use one of: {', '.join(allowed)}"
    return value


def _from_email(extras: Mapping[str, Any], errors: dict[str, str]) -> str:
    from_email = _text(extras, "from_email")
    if not from_email:
        errors["from_email"] = "the sender email is required whatever the authentication type"
    elif not is_connection_address(from_email):
        errors["from_email"] = f"{from_email!r} is not an email address"
    return from_email


def _secret(extras: Mapping[str, Any], name: str) -> str:
    """A secret extra, verbatim (not stripped: a secret's spaces are its own); empty when missing."""
    value = extras.get(name)
    return "" if _is_missing(value) else str(value)


def _check_token_url(token_url: str, errors: dict[str, str], *, required: bool = True) -> None:
    if not token_url:
        if required:
            errors["token_url"] = "OAuth 2.0 needs the token URL"
    elif not token_url.lower().startswith(("https://", "http://")):
        errors["token_url"] = f"must be an http(s) URL, not {token_url!r}"


def normalize_thumbprint(value: str) -> str:
    """A certificate's SHA-1 thumbprint as 40 lower-case hex digits (colons and spaces dropped).

    Raise ValueError unless it is 40 hex digits (the Entra portal's form) or their base64url form.
    """
    text = value.replace(":", "").replace(" ", "").strip()
    if len(text) == 40 and all(c in "0123456789abcdefABCDEF" for c in text):
        return text.lower()
    if len(text) in (27, 28):
        try:
            raw = base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == 20:
            return raw.hex()
    raise ValueError(
        "must be the certificate's SHA-1 thumbprint: 40 hex digits as shown under Certificates & "
        "secrets of the app registration"
    )


def check_service_account_key(content: str) -> dict[str, Any]:
    """The parsed JSON key of a Google service account; ValueError (no key material) when unusable."""
    try:
        key = json.loads(content)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"not valid JSON ({err.msg} at character {err.pos}); paste the whole key file "
            "downloaded from Google Cloud (IAM > Service accounts > Keys)"
        ) from None
    if not isinstance(key, Mapping):
        raise ValueError("must be the JSON object of a service account key file")
    if key.get("type", "service_account") != "service_account":
        raise ValueError(
            f"is a key of type {str(key.get('type'))[:40]!r}, not a service account key "
            "(a user's OAuth client file is for the refresh_token grant)"
        )
    missing = [name for name in SERVICE_ACCOUNT_KEY_FIELDS if _is_missing(key.get(name))]
    if missing:
        raise ValueError(f"has no {', '.join(missing)}; download a new JSON key of the service account")
    return dict(key)


def _check_client(extras: Mapping[str, Any], errors: dict[str, str], method: str) -> None:
    """client_credentials: a client secret, or a certificate (private key + thumbprint)."""
    if method != "private_key_jwt":
        if not _secret(extras, "client_secret"):
            errors["client_secret"] = (
                "OAuth 2.0 needs the client secret (or token_auth_method private_key_jwt with a certificate)"
            )
        return
    if not _secret(extras, "private_key"):
        errors["private_key"] = "private_key_jwt needs the certificate's private key (PEM)"
    elif "PRIVATE KEY-----" not in _secret(extras, "private_key"):
        errors["private_key"] = "must be a PEM private key (-----BEGIN PRIVATE KEY----- ...)"
    thumbprint = _text(extras, "certificate_thumbprint")
    if not thumbprint:
        errors["certificate_thumbprint"] = "private_key_jwt needs the certificate thumbprint (x5t)"
    else:
        try:
            normalize_thumbprint(thumbprint)
        except ValueError as err:
            errors["certificate_thumbprint"] = str(err)


def _check_jwt_bearer(extras: Mapping[str, Any], errors: dict[str, str]) -> None:
    content, path = _secret(extras, "service_account_key"), _text(extras, "service_account_key_path")
    if content and path:
        errors["service_account_key"] = "give the key's content or its path, not both"
    elif not content and not path:
        errors["service_account_key"] = (
            "jwt_bearer needs the service account's JSON key (content, or service_account_key_path)"
        )
    elif content:
        try:
            check_service_account_key(content)
        except ValueError as err:
            errors["service_account_key"] = str(err)
    if not _text(extras, "scope"):
        errors["scope"] = (
            "jwt_bearer needs the scope granted by domain-wide delegation (Gmail: https://mail.google.com/)"
        )
    subject = _text(extras, "subject")
    if subject and not is_connection_address(subject):
        errors["subject"] = f"{subject!r} is not an email address (the mailbox to send as)"


def _check_oauth2(extras: Mapping[str, Any], grant: str, method: str, errors: dict[str, str]) -> None:
    """The fields each grant needs (only when auth_type is oauth2)."""
    token_url = _text(extras, "token_url")
    _check_token_url(token_url, errors, required=grant != "jwt_bearer")
    if grant == "jwt_bearer":
        _check_jwt_bearer(extras, errors)
        return
    if not _text(extras, "client_id"):
        errors["client_id"] = "OAuth 2.0 needs the client id"
    if grant == "refresh_token":
        if method == "private_key_jwt":
            errors["token_auth_method"] = "private_key_jwt is for the client_credentials grant"
        if not _secret(extras, "client_secret"):
            errors["client_secret"] = "the refresh_token grant needs the OAuth client's secret"
        if not _secret(extras, "refresh_token"):
            errors["refresh_token"] = (
                "the refresh_token grant needs a refresh token obtained with the mailbox owner's consent"
            )
        return
    _check_client(extras, errors, method)


def _oauth2_fields(extras: Mapping[str, Any], auth_type: str, errors: dict[str, str]) -> dict[str, Any]:
    """The OAuth 2.0 fields of SmtpSettings, checked for the grant when auth_type is oauth2."""
    grant = _choice(extras, "grant_type", GRANT_TYPES, errors) or "client_credentials"
    method = _choice(extras, "token_auth_method", TOKEN_AUTH_METHODS, errors) or "client_secret_post"
    if auth_type == "oauth2":
        _check_oauth2(extras, grant, method, errors)
    thumbprint = _text(extras, "certificate_thumbprint")
    with suppress(ValueError):
        thumbprint = normalize_thumbprint(thumbprint) if thumbprint else ""
    return {
        "grant_type": grant,
        "token_url": _text(extras, "token_url"),
        "client_id": _text(extras, "client_id"),
        "client_secret": _secret(extras, "client_secret"),
        "scope": _text(extras, "scope"),
        "token_auth_method": method,
        "private_key": _secret(extras, "private_key"),
        "certificate_thumbprint": thumbprint,
        "refresh_token": _secret(extras, "refresh_token"),
        "service_account_key": _secret(extras, "service_account_key"),
        "service_account_key_path": _text(extras, "service_account_key_path"),
        "subject": _text(extras, "subject"),
    }


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

    oauth2 = _oauth2_fields(extras, auth_type, errors)

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
