"""Signed JWTs for OAuth 2.0 (RFC 7523), with PyJWT + cryptography: no hand-written crypto.

- :func:`client_assertion`: a certificate credential for the client-credentials grant
  (``token_auth_method`` ``private_key_jwt``), shaped as Microsoft's identity platform expects:
  RS256, header ``x5t`` = base64url of the certificate's SHA-1 thumbprint, claims ``aud`` = the token
  URL, ``iss`` = ``sub`` = the client id, ``jti``, ``nbf``, ``iat``, ``exp`` (10 minutes).
- :func:`service_account_assertion`: the JWT bearer grant of a Google service account: RS256,
  header ``kid`` = the key's id, claims ``iss`` = the service account's email, ``sub`` = the mailbox
  to act for (domain-wide delegation), ``aud`` = the token URL, ``scope``, ``iat``, ``exp``
  (1 hour, Google's maximum), ``jti``.

Time is a parameter (``now``, seconds since the epoch). Key material is registered with the secret
masker when loaded and never appears in a message.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from airflow_failnotify.exceptions import MailDeliveryError
from airflow_failnotify.hooks.oauth2_settings import GOOGLE_TOKEN_URL, check_service_account_key
from airflow_failnotify.hooks.secrets import mask_secret
from airflow_failnotify.hooks.smtp_settings import SmtpSettings

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Lifetime of a client assertion (Microsoft accepts up to a few hours; short is safer).
CLIENT_ASSERTION_LIFETIME = 600
#: Lifetime of a service account assertion: Google refuses more than one hour.
SERVICE_ACCOUNT_ASSERTION_LIFETIME = 3600


def x5t(thumbprint_hex: str) -> str:
    """The ``x5t`` header: base64url (unpadded) of the SHA-1 thumbprint's 20 bytes."""
    return base64.urlsafe_b64encode(bytes.fromhex(thumbprint_hex)).rstrip(b"=").decode("ascii")


def load_private_key(pem: str, what: str) -> RSAPrivateKey:
    """An unencrypted RSA private key from PEM; MailDeliveryError (permanent) naming ``what``."""
    try:
        key = serialization.load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as err:
        raise MailDeliveryError(
            f"{what} is not a readable, unencrypted PEM private key ({type(err).__name__}); "
            "paste the whole key including its BEGIN/END lines",
            temporary=False,
        ) from None
    if not isinstance(key, RSAPrivateKey):
        raise MailDeliveryError(
            f"{what} is not an RSA key; RS256 needs an RSA certificate key", temporary=False
        )
    return key


def client_assertion(settings: SmtpSettings, *, token_url: str, now: float) -> str:
    """A signed client assertion for ``private_key_jwt`` (Microsoft certificate credentials)."""
    key = load_private_key(settings.private_key, f"the private_key of connection {settings.conn_id!r}")
    issued = int(now)
    claims = {
        "aud": token_url,
        "iss": settings.client_id,
        "sub": settings.client_id,
        "jti": str(uuid.uuid4()),
        "nbf": issued,
        "iat": issued,
        "exp": issued + CLIENT_ASSERTION_LIFETIME,
    }
    headers = {"x5t": x5t(settings.certificate_thumbprint), "typ": "JWT"}
    return jwt.encode(claims, key, algorithm="RS256", headers=headers)


@dataclass(frozen=True)
class ServiceAccountKey:
    """What a Google service account key file says (the private key stays out of repr)."""

    client_email: str
    private_key: str = field(repr=False)
    private_key_id: str = ""
    token_uri: str = ""
    client_id: str = ""  # the numeric "unique ID" the Admin console's delegation list wants

    @classmethod
    def from_json(cls, content: str) -> ServiceAccountKey:
        data: dict[str, Any] = check_service_account_key(content)
        return cls(
            client_email=str(data["client_email"]),
            private_key=str(data["private_key"]),
            private_key_id=str(data.get("private_key_id") or ""),
            token_uri=str(data.get("token_uri") or ""),
            client_id=str(data.get("client_id") or ""),
        )


def load_service_account_key(settings: SmtpSettings) -> ServiceAccountKey:
    """The connection's service account key (content, or the file at the path); secrets masked."""
    where = f"service_account_key of connection {settings.conn_id!r}"
    content = settings.service_account_key
    if not content:
        path = Path(settings.service_account_key_path).expanduser()
        where = f"service account key file {str(path)!r} of connection {settings.conn_id!r}"
        try:
            content = path.read_text(encoding="utf-8")
        except OSError as err:
            raise MailDeliveryError(
                f"cannot read the {where} ({err.strerror or type(err).__name__}); "
                "put the key file on every machine that sends mail, readable by Airflow",
                temporary=False,
            ) from None
    mask_secret(content)
    try:
        key = ServiceAccountKey.from_json(content)
    except ValueError as err:
        raise MailDeliveryError(f"the {where} {err}", temporary=False) from None
    mask_secret(key.private_key)
    return key


def service_account_token_url(settings: SmtpSettings, key: ServiceAccountKey) -> str:
    """The connection's token_url, else the key's token_uri, else Google's token endpoint."""
    return settings.token_url or key.token_uri or GOOGLE_TOKEN_URL


def service_account_assertion(
    key: ServiceAccountKey, *, token_url: str, scope: str, subject: str, now: float
) -> str:
    """A signed JWT bearer assertion of a service account acting for ``subject``."""
    private_key = load_private_key(key.private_key, f"the private key of service account {key.client_email}")
    issued = int(now)
    claims = {
        "iss": key.client_email,
        "sub": subject,
        "aud": token_url,
        "scope": scope,
        "iat": issued,
        "exp": issued + SERVICE_ACCOUNT_ASSERTION_LIFETIME,
        "jti": str(uuid.uuid4()),
    }
    headers = {"kid": key.private_key_id} if key.private_key_id else None
    return jwt.encode(claims, private_key, algorithm="RS256", headers=headers)
