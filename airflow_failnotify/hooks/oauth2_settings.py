"""The OAuth 2.0 fields of a ``failnotify_smtp`` connection: the grants and what each needs. Pure.

``grant_type`` ``client_credentials`` (a client secret, or a certificate with ``token_auth_method``
``private_key_jwt``), ``refresh_token`` (client id and secret, refresh token) or ``jwt_bearer`` (a
Google service account key, as content or a path; ``subject`` the mailbox to send as). Only checked
when the connection's auth_type is ``oauth2``; messages name the field and never quote a secret.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from airflow_failnotify.core.addresses import is_connection_address
from airflow_failnotify.hooks.extras import choice as _choice
from airflow_failnotify.hooks.extras import is_missing
from airflow_failnotify.hooks.extras import secret as _secret
from airflow_failnotify.hooks.extras import text as _text

GRANT_TYPES = ("client_credentials", "refresh_token", "jwt_bearer")
#: How the client authenticates at the token endpoint. ``private_key_jwt`` (RFC 7523 section 2.2, a
#: certificate credential on Microsoft's identity platform) is for the client-credentials grant only.
TOKEN_AUTH_METHODS = ("client_secret_post", "client_secret_basic", "private_key_jwt")
#: Google's token endpoint: the default for jwt_bearer when neither token_url nor the key's token_uri say.
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
SERVICE_ACCOUNT_KEY_FIELDS = ("client_email", "private_key")


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
    missing = [name for name in SERVICE_ACCOUNT_KEY_FIELDS if is_missing(key.get(name))]
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


def oauth2_fields(extras: Mapping[str, Any], auth_type: str, errors: dict[str, str]) -> dict[str, Any]:
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
