"""The dev token endpoint checks each grant like the real providers: assertions built by hand here.

These JWTs are made with PyJWT directly (not with the package's builders), so that each check of the
server is tested by one deliberately wrong claim.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
import pytest
import requests

from devtools.token_grants import CLIENT_ASSERTION_TYPE, JWT_BEARER_GRANT, certificate_credential, x5t_of
from tests.fixtures.mail import (
    CERT_CLIENT_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    GOOGLE_SCOPE,
    REFRESH_TOKEN,
    SCOPE,
    SERVICE_ACCOUNT_EMAIL,
    SMTP_USER,
    Grants,
)


def post(grants: Grants, **form: str) -> tuple[int, dict[str, Any]]:
    response = requests.post(grants.server.url, data=form, timeout=5)
    return response.status_code, response.json()


# -- certificate client assertions (Microsoft) ------------------------------------------------
def client_assertion(grants: Grants, *, key: str | None = None, x5t: str | None = None, **claims: Any) -> str:
    from cryptography import x509

    certificate = x509.load_pem_x509_certificate(grants.certificate.certificate_pem.encode())
    now = int(time.time())
    body = {
        "aud": grants.server.url,
        "iss": CERT_CLIENT_ID,
        "sub": CERT_CLIENT_ID,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "exp": now + 600,
        **claims,
    }
    headers = {"x5t": x5t or x5t_of(certificate)}
    return jwt.encode(body, key or grants.certificate.private_key_pem, algorithm="RS256", headers=headers)


def with_certificate(grants: Grants, assertion: str) -> tuple[int, dict[str, Any]]:
    return post(
        grants,
        grant_type="client_credentials",
        client_id=CERT_CLIENT_ID,
        client_assertion_type=CLIENT_ASSERTION_TYPE,
        client_assertion=assertion,
        scope=SCOPE,
    )


def test_client_assertion_accepted_once(grants: Grants) -> None:
    assertion = client_assertion(grants)
    status, body = with_certificate(grants, assertion)
    assert status == 200 and grants.server.is_valid(body["access_token"])
    assert grants.server.requests[-1].auth_method == "private_key_jwt"
    status, body = with_certificate(grants, assertion)  # the same jti again
    assert (status, body["error"]) == (401, "invalid_client") and "replay" in body["error_description"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"x5t": "AAAAAAAAAAAAAAAAAAAAAAAAAAA"}, "AADSTS700027: The certificate with identifier"),
        ({"other_key": True}, "AADSTS700027: Client assertion failed signature validation"),
        ({"aud": "https://login.example.test/token"}, "audience"),
        ({"iss": "someone-else"}, "AADSTS700021"),
        ({"exp": int(time.time()) - 3600, "nbf": int(time.time()) - 4000}, "AADSTS700024"),
    ],
    ids=["x5t", "signature", "aud", "iss", "expired"],
)
def test_client_assertion_refusals(grants: Grants, change: dict[str, Any], words: str) -> None:
    other = (
        certificate_credential("not-registered").private_key_pem if change.pop("other_key", None) else None
    )
    assertion = client_assertion(grants, key=other, **change)
    status, body = with_certificate(grants, assertion)
    assert (status, body["error"]) == (401, "invalid_client")
    assert words in body["error_description"]


def test_client_assertion_needs_the_assertion_type(grants: Grants) -> None:
    status, body = post(
        grants,
        grant_type="client_credentials",
        client_id=CERT_CLIENT_ID,
        client_assertion=client_assertion(grants),
    )
    assert (status, body["error"]) == (400, "invalid_request")


# -- service account JWT bearer (Google) ------------------------------------------------------
def sa_assertion(grants: Grants, *, key: str | None = None, **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": SERVICE_ACCOUNT_EMAIL,
        "sub": SMTP_USER,
        "aud": grants.server.url,
        "scope": GOOGLE_SCOPE,
        "iat": now,
        "exp": now + 3600,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    private_key = key or json.loads(grants.account.key_json)["private_key"]
    return jwt.encode(body, private_key, algorithm="RS256")


def test_service_account_assertion_accepted_once_for_its_subject(grants: Grants) -> None:
    assertion = sa_assertion(grants)
    status, body = post(grants, grant_type=JWT_BEARER_GRANT, assertion=assertion)
    assert status == 200
    token = body["access_token"]
    assert grants.server.is_valid(token) and grants.server.subject_of(token) == SMTP_USER
    status, body = post(grants, grant_type=JWT_BEARER_GRANT, assertion=assertion)
    assert (status, body["error"]) == (400, "invalid_grant") and "already used" in body["error_description"]


@pytest.mark.parametrize(
    ("change", "status", "error", "words"),
    [
        ({"other_key": True}, 400, "invalid_grant", "Invalid JWT Signature."),
        ({"iss": "nobody@x.iam.gserviceaccount.com"}, 400, "invalid_grant", "account not found"),
        ({"aud": "https://oauth2.googleapis.com/token"}, 400, "invalid_grant", "audience"),
        (
            {"scope": "https://www.googleapis.com/auth/gmail.send"},
            401,
            "unauthorized_client",
            "not authorized",
        ),
        ({"scope": ""}, 400, "invalid_scope", "Invalid OAuth scope"),
        ({"sub": "stranger@failnotify.test"}, 400, "invalid_grant", "Invalid email or User ID"),
        ({"exp": int(time.time()) + 7200}, 400, "invalid_grant", "Check your iat and exp"),
        (
            {"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600},
            400,
            "invalid_grant",
            "iat and exp",
        ),
    ],
    ids=["signature", "iss", "aud", "not-delegated", "no-scope", "sub", "over-1h", "expired"],
)
def test_service_account_refusals(
    grants: Grants, change: dict[str, Any], status: int, error: str, words: str
) -> None:
    other = certificate_credential("other").private_key_pem if change.pop("other_key", None) else None
    got_status, body = post(
        grants, grant_type=JWT_BEARER_GRANT, assertion=sa_assertion(grants, key=other, **change)
    )
    assert (got_status, body["error"]) == (status, error)
    assert words in body["error_description"]


def test_clock_offset_makes_a_fresh_assertion_look_skewed(grants: Grants) -> None:
    grants.server.clock_offset = -2 * 3600  # the server is two hours behind: iat is "in the future"
    status, body = post(grants, grant_type=JWT_BEARER_GRANT, assertion=sa_assertion(grants))
    assert (status, body["error"]) == (400, "invalid_grant") and "iat and exp" in body["error_description"]


# -- refresh tokens (Gmail), strictly rotated --------------------------------------------------
def test_refresh_token_rotates_and_the_old_one_is_revoked(grants: Grants) -> None:
    form = {"grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    status, body = post(grants, **form, refresh_token=REFRESH_TOKEN)
    assert status == 200 and grants.server.is_valid(body["access_token"])
    rotated = body["refresh_token"]
    assert rotated != REFRESH_TOKEN
    status, body = post(grants, **form, refresh_token=REFRESH_TOKEN)
    assert (status, body) == (
        400,
        {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
    )
    status, body = post(grants, **form, refresh_token=rotated)
    assert status == 200 and body["refresh_token"] not in (rotated, REFRESH_TOKEN)
    status, body = post(grants, **{**form, "client_secret": "wrong"}, refresh_token=body["refresh_token"])
    assert (status, body["error"]) == (401, "invalid_client")
    assert [r.grant_type for r in grants.server.requests] == ["refresh_token"] * 4
