"""A token endpoint's refusal, in the provider's words, with what to fix.

The endpoint's ``error`` and ``error_description`` (RFC 6749 section 5.2) are quoted, then one hint
chosen by the grant and the error: a revoked or expired refresh token, domain-wide delegation not
granted for the scope, a ``sub`` that is not a user of the domain, an assertion outside its valid time
(clock skew), a certificate the app registration does not know. Every message is redacted of the
connection's secrets; 5xx, 408 and 429 are temporary, everything else permanent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_failnotify.exceptions import MailDeliveryError
from airflow_failnotify.hooks.secrets import redact
from airflow_failnotify.hooks.smtp_settings import SmtpSettings

#: An error description meaning "the assertion's iat/exp is outside the accepted window" (Google: "Check
#: your iat and exp values", Microsoft: "AADSTS700024: Client assertion is not within its valid time range").
_CLOCK = re.compile(r"\b(iat|exp|nbf)\b|timeframe|time range|not yet valid|clock|AADSTS700024", re.IGNORECASE)
#: Words meaning "this sub is not a user the service account may act for" (Google).
_SUBJECT_WORDS = ("invalid email or user id", "subject", "sub ")


class TokenEndpointError(MailDeliveryError):
    """A token endpoint's refusal; ``error`` is its OAuth 2.0 error code ("" when it gave none)."""

    def __init__(self, message: str, *, temporary: bool, error: str = "") -> None:
        super().__init__(message, temporary=temporary)
        self.error = error


def token_error(
    settings: SmtpSettings,
    status: int,
    payload: Any,
    *,
    token_url: str,
    secrets: Iterable[str] = (),
    extra: Mapping[str, str] | None = None,
) -> TokenEndpointError:
    """The error of a token endpoint's ``status`` answer (``payload``: its JSON, if any).

    ``extra`` adds facts for the hint (``client_email``, ``sa_client_id`` of a service account).
    """
    code, description = "", ""
    if isinstance(payload, Mapping):
        code = str(payload.get("error") or "")[:100]
        description = str(payload.get("error_description") or "")[:300]
    detail = " ".join(part for part in (code, description) if part)
    message = f"token endpoint {token_url} answered {status}" + (f" {detail}" if detail else "")
    temporary = status >= 500 or status in (408, 429)
    if not temporary:
        message += "; " + hint(settings, code, description, extra or {})
    return TokenEndpointError(redact(message, (*settings.secrets, *secrets)), temporary=temporary, error=code)


def _clock_skew(description: str) -> bool:
    return _CLOCK.search(description) is not None


def hint(settings: SmtpSettings, code: str, description: str, extra: Mapping[str, str]) -> str:
    """What to fix, for this grant and this error code."""
    signed = settings.grant_type == "jwt_bearer" or settings.token_auth_method == "private_key_jwt"
    if signed and _clock_skew(description):
        return (
            "the signed assertion's iat/exp were refused: this machine's clock is off; "
            "synchronise it (NTP) and try again"
        )
    if settings.grant_type == "refresh_token":
        return _refresh_token_hint(code)
    if settings.grant_type == "jwt_bearer":
        return _jwt_bearer_hint(settings, code, description, extra)
    if settings.token_auth_method == "private_key_jwt":
        return _certificate_hint(code)
    return "check client_id, client_secret, scope and token_auth_method of the connection"


def _refresh_token_hint(code: str) -> str:
    if code == "invalid_grant":
        return (
            "the refresh token was revoked or has expired (the user removed access, changed the "
            "password, or the Google OAuth app is in Testing status: its tokens end after 7 days); "
            "obtain a new refresh token with the mailbox owner's consent and put it in the connection's "
            "refresh_token"
        )
    if code == "invalid_client":
        return (
            "the OAuth client id or client secret is wrong: copy them from the client the token was made for"
        )
    if code in ("invalid_scope", "unauthorized_client"):
        return "the refresh token was not granted for this scope: leave scope empty or obtain consent for it"
    return "check client_id, client_secret and refresh_token of the connection"


def _jwt_bearer_hint(settings: SmtpSettings, code: str, description: str, extra: Mapping[str, str]) -> str:
    account = extra.get("client_email", "the service account")
    if code == "unauthorized_client":
        unique_id = extra.get("sa_client_id") or "the service account's client ID"
        return (
            f"domain-wide delegation is not granted to {account} for scope {settings.scope!r}: in the "
            "Google Admin console, Security > Access and data control > API controls > Manage Domain "
            f"Wide Delegation, add client ID {unique_id} with scope {settings.scope or 'https://mail.google.com/'}"
        )
    lowered = description.lower()
    if code == "invalid_grant" and any(word in lowered for word in _SUBJECT_WORDS):
        return (
            f"the mailbox to send as ({settings.oauth2_subject!r}, the assertion's sub) is not a user of "
            "the Workspace domain: set subject (or login / the sender email) to an existing mailbox"
        )
    if code == "invalid_grant" and "signature" in lowered:
        return (
            f"the key does not belong to {account} or was deleted: create a new JSON key of the "
            "service account and put it in the connection"
        )
    if code == "invalid_scope":
        return "the scope is not a valid Google scope: use https://mail.google.com/"
    return "check service_account_key, subject and scope of the connection"


def _certificate_hint(code: str) -> str:
    if code == "invalid_client":
        return (
            "the certificate assertion was refused: upload the certificate to the app registration "
            "(Certificates & secrets), and set certificate_thumbprint to its thumbprint and "
            "private_key to its private key"
        )
    return "check client_id, private_key, certificate_thumbprint and scope of the connection"
