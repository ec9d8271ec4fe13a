"""How the dev token endpoint checks signed assertions, the way Microsoft and Google do (RFC 7523).

- :class:`ClientAssertionCheck`: a ``private_key_jwt`` client assertion (Microsoft certificate
  credentials): ``client_assertion_type``, the ``x5t`` header names a certificate registered for the
  client, the RS256 signature verifies with its public key, ``aud`` = the token URL, ``iss`` = ``sub`` =
  ``client_id``, ``exp``/``nbf`` around now, a ``jti`` never seen before.
- :class:`ServiceAccountCheck`: a Google service account's JWT bearer assertion: ``iss`` a known
  account, the signature verifies with that account's public key, ``aud`` = the token URL, ``scope``
  present and granted by domain-wide delegation, ``sub`` a user of the domain, ``iat``/``exp`` around
  now and at most one hour apart. A replayed assertion (same ``jti``) is refused: RFC 7523 section 3
  allows it; Google does not insist, this server does so that tests can tell.

A refusal is :class:`Refusal` with the provider's own ``error`` and ``error_description``. Also
helpers that make keys for tests and the demo: :func:`certificate_credential`, :func:`service_account`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Google: "Token must be a short-lived token (60 minutes)".
MAX_SERVICE_ACCOUNT_LIFETIME = 3600
#: Clock difference tolerated (Microsoft allows 5 minutes).
LEEWAY = 300

GOOGLE_TIMEFRAME = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
    "Check your iat and exp values in the JWT claim."
)
GOOGLE_UNAUTHORIZED = (
    "Client is unauthorized to retrieve access tokens using this method, or client not authorized for "
    "any of the scopes requested."
)


class Refusal(Exception):
    """A token request refused: HTTP status, OAuth ``error`` and ``error_description``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description


def thumbprint_of(certificate: x509.Certificate) -> str:
    """The SHA-1 thumbprint (hex) of a certificate, as the Entra portal shows it."""
    return certificate.fingerprint(hashes.SHA1()).hex()  # noqa: S303 - x5t is SHA-1 by definition


def x5t_of(certificate: x509.Certificate) -> str:
    raw = certificate.fingerprint(hashes.SHA1())  # noqa: S303
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _claims(assertion: str, key: Any, *, status: int, error: str, bad_signature: str) -> dict[str, Any]:
    """Verify the RS256 signature only (times, aud and iss are checked by the caller, in its words)."""
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            key,
            algorithms=["RS256"],
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False},
        )
    except jwt.InvalidTokenError as err:
        raise Refusal(status, error, bad_signature) from err
    return claims


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass
class ClientAssertionCheck:
    """Microsoft's checks of a certificate client assertion. ``certificates``: client id -> PEM."""

    certificates: Mapping[str, str]
    seen: set[str] = field(default_factory=set)

    def verify(self, form: Mapping[str, str], *, url: str, now: float) -> str:
        """The authenticated client id, or :class:`Refusal` (401 invalid_client, Microsoft's words)."""
        client_id = form.get("client_id", "")
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            raise Refusal(400, "invalid_request", "AADSTS50027: client_assertion_type is not jwt-bearer.")
        pem = self.certificates.get(client_id)
        if pem is None:
            raise Refusal(
                400,
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{client_id}' was not found in the directory.",
            )
        certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
        assertion = form.get("client_assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.InvalidTokenError as err:
            raise Refusal(401, "invalid_client", "AADSTS50027: Invalid JWT token.") from err
        if header.get("x5t") != x5t_of(certificate):
            raise Refusal(
                401,
                "invalid_client",
                "AADSTS700027: The certificate with identifier used to sign the client assertion is not "
                "registered on application.",
            )
        claims = _claims(
            assertion,
            certificate.public_key(),
            status=401,
            error="invalid_client",
            bad_signature="AADSTS700027: Client assertion failed signature validation.",
        )
        self._check_claims(claims, client_id=client_id, url=url, now=now)
        return client_id

    def _check_claims(self, claims: Mapping[str, Any], *, client_id: str, url: str, now: float) -> None:
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise Refusal(
                401,
                "invalid_client",
                "AADSTS700021: Client assertion application identifier doesn't match 'client_id' parameter.",
            )
        if claims.get("aud") != url:
            raise Refusal(401, "invalid_client", f"AADSTS70021: Client assertion audience is not {url}.")
        exp, nbf = _number(claims, "exp"), _number(claims, "nbf") or _number(claims, "iat")
        if exp is None or exp + LEEWAY < now or (nbf is not None and nbf - LEEWAY > now):
            raise Refusal(
                401, "invalid_client", "AADSTS700024: Client assertion is not within its valid time range."
            )
        jti = str(claims.get("jti") or "")
        if not jti or jti in self.seen:
            raise Refusal(401, "invalid_client", "Client assertion has no jti or was already used (replay).")
        self.seen.add(jti)


@dataclass
class ServiceAccountCheck:
    """Google's checks of a service account assertion.

    ``accounts``: client email -> public key PEM; ``delegations``: client email -> scopes granted by
    domain-wide delegation; ``mailboxes``: the domain's users (None: any ``sub``).
    """

    accounts: Mapping[str, str]
    delegations: Mapping[str, set[str] | frozenset[str]]
    mailboxes: set[str] | frozenset[str] | None = None
    seen: set[str] = field(default_factory=set)

    def verify(self, assertion: str, *, url: str, now: float) -> tuple[str, str, str]:
        """(iss, sub, scope) of a valid assertion, or :class:`Refusal` in Google's words."""
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.InvalidTokenError as err:
            raise Refusal(400, "invalid_grant", "Invalid JWT: could not be parsed.") from err
        iss = str(unverified.get("iss") or "")
        pem = self.accounts.get(iss)
        if pem is None:
            raise Refusal(400, "invalid_grant", "Invalid grant: account not found")
        public_key = serialization.load_pem_public_key(pem.encode("ascii"))
        claims = _claims(
            assertion, public_key, status=400, error="invalid_grant", bad_signature="Invalid JWT Signature."
        )
        if claims.get("aud") != url:
            raise Refusal(400, "invalid_grant", "Invalid JWT: Failed audience check.")
        _check_timeframe(claims, now)
        scope = str(claims.get("scope") or "")
        if not scope:
            raise Refusal(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        if not set(scope.split()) <= set(self.delegations.get(iss, ())):
            raise Refusal(401, "unauthorized_client", GOOGLE_UNAUTHORIZED)
        sub = str(claims.get("sub") or "")
        if self.mailboxes is not None and sub not in self.mailboxes:
            raise Refusal(400, "invalid_grant", "Invalid email or User ID")
        jti = str(claims.get("jti") or "") or hashlib.sha256(assertion.encode("ascii")).hexdigest()
        if jti in self.seen:
            raise Refusal(400, "invalid_grant", "Invalid JWT: the assertion was already used (replay).")
        self.seen.add(jti)
        return iss, sub, scope


def _check_timeframe(claims: Mapping[str, Any], now: float) -> None:
    iat, exp = _number(claims, "iat"), _number(claims, "exp")
    if iat is None or exp is None or exp - iat > MAX_SERVICE_ACCOUNT_LIFETIME:
        raise Refusal(400, "invalid_grant", GOOGLE_TIMEFRAME)
    if iat - LEEWAY > now or exp + LEEWAY < now:
        raise Refusal(400, "invalid_grant", GOOGLE_TIMEFRAME)


# --------------------------------------------------------------------------------------------
# keys for tests and the demo
# --------------------------------------------------------------------------------------------
def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


@dataclass(frozen=True)
class CertificateCredential:
    """A self-signed certificate (what is uploaded to the app) and its private key (the connection's)."""

    certificate_pem: str
    private_key_pem: str = field(repr=False)
    thumbprint: str = ""


def certificate_credential(name: str = "failnotify-dev") -> CertificateCredential:
    key = _rsa_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return CertificateCredential(
        certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        _pem(key),
        thumbprint_of(certificate),
    )


@dataclass(frozen=True)
class ServiceAccount:
    """A service account's JSON key file (the connection's) and its public key (Google's side)."""

    client_email: str
    key_json: str = field(repr=False)
    public_key_pem: str = ""


def service_account(
    client_email: str, token_uri: str, client_id: str = "104242424242424242424"
) -> ServiceAccount:
    key = _rsa_key()
    key_id = hashlib.sha1(client_email.encode()).hexdigest()  # noqa: S324 - an identifier, not security
    content = {
        "type": "service_account",
        "project_id": "failnotify-dev",
        "private_key_id": key_id,
        "private_key": _pem(key),
        "client_email": client_email,
        "client_id": client_id,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return ServiceAccount(client_email, json.dumps(content, indent=2), public.decode("ascii"))
