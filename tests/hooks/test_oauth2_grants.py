"""Every OAuth 2.0 grant against the real dev token endpoint, then XOAUTH2 against the real SMTP server."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.fernet import Fernet

from airflow_failnotify.exceptions import MailDeliveryError
from airflow_failnotify.hooks import oauth2_jwt
from airflow_failnotify.hooks.oauth2 import RefreshTokenProvider, clear_token_cache, token_provider_for
from airflow_failnotify.hooks.refresh_tokens import MemoryRefreshTokens, StoreRefreshTokens, keeper_key
from airflow_failnotify.hooks.smtp import FailnotifySmtpHook
from airflow_failnotify.hooks.smtp_settings import SmtpSettings
from airflow_failnotify.store import Store
from devtools.smtp_server import DevSmtpServer
from devtools.token_grants import certificate_credential
from tests.fixtures.mail import (
    CERT_CLIENT_ID,
    GOOGLE_SCOPE,
    GRANTS,
    REFRESH_TOKEN,
    SERVICE_ACCOUNT_EMAIL,
    SERVICE_ACCOUNT_UNIQUE_ID,
    SMTP_USER,
    Grants,
)

MakeConn = Callable[..., str]
MakeMail = Callable[..., EmailMessage]


@pytest.fixture
def mail_server(grants: Grants) -> Iterator[DevSmtpServer]:
    with DevSmtpServer(users={}, tokens=grants.server) as server:
        yield server


def settings_for(grants: Grants, grant: str, **extra: Any) -> SmtpSettings:
    fields = {"auth_type": "oauth2", "from_email": SMTP_USER, **grants.fields(grant), **extra}
    return SmtpSettings.from_connection_fields(host="127.0.0.1", extra=fields, conn_id=f"conn_{grant}")


class EncryptingFernet:
    """What Airflow's get_fernet() returns when [core] fernet_key is set."""

    is_encrypted = True

    def __init__(self) -> None:
        self._fernet = Fernet(Fernet.generate_key())

    def encrypt(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt(self, data: bytes) -> bytes:
        return self._fernet.decrypt(data)


@pytest.mark.parametrize("grant", GRANTS)
def test_each_grant_sends_with_xoauth2_and_caches_its_token(
    grant: str, grants: Grants, mail_server: DevSmtpServer, smtp_connection: MakeConn, make_mail: MakeMail
) -> None:
    conn_id = smtp_connection(server=mail_server, auth_type="oauth2", **grants.fields(grant))
    for _ in range(2):
        with FailnotifySmtpHook(conn_id) as hook:
            assert hook.send_message(make_mail()) == {}
    assert [m.auth_mechanism for m in mail_server.messages] == ["XOAUTH2", "XOAUTH2"]
    assert {m.auth_identity for m in mail_server.messages} == {SMTP_USER}
    (request,) = grants.server.requests  # one token for two connections: the per-process cache
    expected = {
        "secret": ("client_credentials", "client_secret_post"),
        "certificate": ("client_credentials", "private_key_jwt"),
        "refresh_token": ("refresh_token", "client_secret_post"),
        "jwt_bearer": ("urn:ietf:params:oauth:grant-type:jwt-bearer", "jwt_bearer"),
    }[grant]
    assert (request.grant_type, request.auth_method, request.status) == (*expected, 200)


def test_test_connection_reports_each_grant(
    grants: Grants, mail_server: DevSmtpServer, smtp_connection: MakeConn
) -> None:
    for grant in GRANTS:
        conn_id = smtp_connection(
            f"tc_{grant}", server=mail_server, auth_type="oauth2", **grants.fields(grant)
        )
        ok, message = FailnotifySmtpHook(conn_id).test_connection()
        assert ok, message
        assert "OAuth 2.0 (XOAUTH2)" in message


def test_jwt_bearer_token_is_for_the_mailbox_to_send_as(grants: Grants) -> None:
    token, cached = token_provider_for(settings_for(grants, "jwt_bearer")).get_token()
    assert not cached and grants.server.subject_of(token) == SMTP_USER


def test_client_assertion_claims_and_x5t(grants: Grants) -> None:
    settings = settings_for(grants, "certificate")
    assertion = oauth2_jwt.client_assertion(settings, token_url=grants.server.url, now=1_900_000_000)
    certificate = x509.load_pem_x509_certificate(grants.certificate.certificate_pem.encode())
    header = jwt.get_unverified_header(assertion)
    assert header["alg"] == "RS256"
    assert oauth2_jwt.x5t(grants.certificate.thumbprint) == header["x5t"]
    claims = jwt.decode(
        assertion,
        certificate.public_key(),
        algorithms=["RS256"],
        audience=grants.server.url,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["iss"] == claims["sub"] == CERT_CLIENT_ID
    assert (claims["iat"], claims["nbf"], claims["exp"]) == (1_900_000_000, 1_900_000_000, 1_900_000_600)
    assert (
        claims["jti"]
        != jwt.decode(
            oauth2_jwt.client_assertion(settings, token_url=grants.server.url, now=1_900_000_000),
            options={"verify_signature": False},
        )["jti"]
    )


def test_service_account_assertion_claims(grants: Grants) -> None:
    settings = settings_for(grants, "jwt_bearer", subject="other@failnotify.test")
    key = oauth2_jwt.load_service_account_key(settings)
    assertion = oauth2_jwt.service_account_assertion(
        key,
        token_url=grants.server.url,
        scope=GOOGLE_SCOPE,
        subject=settings.oauth2_subject,
        now=1_900_000_000,
    )
    claims = jwt.decode(
        assertion,
        grants.account.public_key_pem,
        algorithms=["RS256"],
        audience=grants.server.url,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == SERVICE_ACCOUNT_EMAIL and claims["sub"] == "other@failnotify.test"
    assert claims["scope"] == GOOGLE_SCOPE and claims["exp"] - claims["iat"] == 3600
    assert (
        jwt.get_unverified_header(assertion)["kid"] == json.loads(grants.account.key_json)["private_key_id"]
    )


def test_jwt_bearer_from_a_key_file_and_its_token_uri(grants: Grants, tmp_path: Path) -> None:
    path = tmp_path / "sa.json"
    path.write_text(grants.account.key_json, encoding="utf-8")
    settings = SmtpSettings.from_connection_fields(
        host="h",
        extra={
            "auth_type": "oauth2",
            "from_email": SMTP_USER,
            "grant_type": "jwt_bearer",
            "service_account_key_path": str(path),
            "scope": GOOGLE_SCOPE,
        },
    )
    token, _ = token_provider_for(settings).get_token()
    assert grants.server.subject_of(token) == SMTP_USER  # token_url empty: the key's token_uri
    missing = SmtpSettings.from_connection_fields(
        host="h",
        extra={
            "auth_type": "oauth2",
            "from_email": SMTP_USER,
            "grant_type": "jwt_bearer",
            "service_account_key_path": str(tmp_path / "nope.json"),
            "scope": GOOGLE_SCOPE,
        },
        conn_id="c",
    )
    with pytest.raises(
        MailDeliveryError, match=r"cannot read the service account key file .*nope\.json"
    ) as info:
        token_provider_for(missing).get_token()
    assert not info.value.temporary


# -- errors in the provider's words, with what to fix -------------------------------------------
def test_revoked_refresh_token(grants: Grants) -> None:
    grants.server.refresh_tokens.clear()  # the user removed the app's access
    with pytest.raises(MailDeliveryError) as info:
        token_provider_for(settings_for(grants, "refresh_token")).get_token()
    text = str(info.value)
    assert "answered 400 invalid_grant Token has been expired or revoked." in text
    assert "obtain a new refresh token with the mailbox owner's consent" in text
    assert REFRESH_TOKEN not in text and not info.value.temporary


def test_delegation_not_granted_for_the_scope(grants: Grants) -> None:
    settings = settings_for(grants, "jwt_bearer", scope="https://www.googleapis.com/auth/gmail.send")
    with pytest.raises(MailDeliveryError) as info:
        token_provider_for(settings).get_token()
    text = str(info.value)
    assert "answered 401 unauthorized_client" in text
    assert f"domain-wide delegation is not granted to {SERVICE_ACCOUNT_EMAIL}" in text
    assert (
        f"add client ID {SERVICE_ACCOUNT_UNIQUE_ID} with scope" in text
        and "Manage Domain Wide Delegation" in text
    )


def test_wrong_subject(grants: Grants) -> None:
    settings = settings_for(grants, "jwt_bearer", subject="nobody@failnotify.test")
    with pytest.raises(MailDeliveryError) as info:
        token_provider_for(settings).get_token()
    text = str(info.value)
    assert "Invalid email or User ID" in text
    assert "'nobody@failnotify.test', the assertion's sub) is not a user of the Workspace domain" in text


@pytest.mark.parametrize("grant", ["jwt_bearer", "certificate"])
def test_clock_skew(grants: Grants, grant: str) -> None:
    grants.server.clock_offset = 3 * 3600  # the server is three hours ahead: the assertion has expired
    with pytest.raises(MailDeliveryError) as info:
        token_provider_for(settings_for(grants, grant)).get_token()
    text = str(info.value)
    assert "this machine's clock is off; synchronise it (NTP)" in text
    assert ("AADSTS700024" if grant == "certificate" else "Check your iat and exp values") in text


def test_certificate_not_registered(grants: Grants) -> None:
    other = certificate_credential("other")
    settings = settings_for(
        grants, "certificate", private_key=other.private_key_pem, certificate_thumbprint=other.thumbprint
    )
    with pytest.raises(MailDeliveryError) as info:
        token_provider_for(settings).get_token()
    text = str(info.value)
    assert "AADSTS700027" in text and "upload the certificate to the app registration" in text
    assert "PRIVATE KEY" not in text


def test_unreadable_private_key_is_named_not_quoted(grants: Grants) -> None:
    broken = "-----BEGIN PRIVATE KEY-----\nnot-a-key-Zx81\n-----END PRIVATE KEY-----\n"
    with pytest.raises(
        MailDeliveryError, match="private_key of connection 'conn_certificate' is not a readable"
    ) as info:
        token_provider_for(settings_for(grants, "certificate", private_key=broken)).get_token()
    assert "not-a-key-Zx81" not in str(info.value)


# -- the rotated refresh token ----------------------------------------------------------------
def test_rotated_refresh_token_is_kept_encrypted_in_the_store(grants: Grants, sqlite_store: Store) -> None:
    settings = settings_for(grants, "refresh_token")
    fernet = EncryptingFernet()
    RefreshTokenProvider(settings, keeper=StoreRefreshTokens(sqlite_store, fernet)).fetch()
    (rotated,) = grants.server.refresh_tokens  # the first one is revoked: strict rotation
    stored = sqlite_store.get_setting(keeper_key(settings))
    assert stored and rotated not in stored and REFRESH_TOKEN not in stored
    assert fernet.decrypt(stored.encode()).decode() == rotated
    # another process (a fresh keeper: nothing in memory) reads it from the store and rotates again
    clear_token_cache()
    RefreshTokenProvider(settings, keeper=StoreRefreshTokens(sqlite_store, fernet)).fetch()
    (again,) = grants.server.refresh_tokens
    assert again != rotated
    assert fernet.decrypt(sqlite_store.get_setting(keeper_key(settings)).encode()).decode() == again  # type: ignore[union-attr]


def test_a_new_refresh_token_in_the_connection_wins(grants: Grants) -> None:
    old, new = (
        settings_for(grants, "refresh_token"),
        settings_for(grants, "refresh_token", refresh_token="rt-pasted"),
    )
    assert keeper_key(old) != keeper_key(new) and REFRESH_TOKEN not in keeper_key(old)


def test_without_fernet_key_the_rotated_token_stays_in_memory(
    grants: Grants, sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    class NullFernet:
        is_encrypted = False

    keeper = StoreRefreshTokens(sqlite_store, NullFernet())
    settings = settings_for(grants, "refresh_token")
    with caplog.at_level(logging.WARNING):
        provider = RefreshTokenProvider(settings, keeper=keeper)
        provider.fetch()
        provider.fetch()  # uses the rotated token from memory
    assert sqlite_store.get_setting(keeper_key(settings)) is None
    assert "set [core] fernet_key" in caplog.text
    assert [r.status for r in grants.server.requests] == [200, 200]


def test_a_token_rotated_by_another_process_is_retried_once(grants: Grants) -> None:
    keeper = MemoryRefreshTokens()
    settings = settings_for(grants, "refresh_token")
    first, second = (
        RefreshTokenProvider(settings, keeper=keeper),
        RefreshTokenProvider(settings, keeper=keeper),
    )
    used = second.current_refresh_token()  # read before the other process rotates it
    first.fetch()
    second.current_refresh_token = lambda: used  # type: ignore[method-assign]
    second.fetch()  # invalid_grant with the old one, then the kept one
    assert [r.status for r in grants.server.requests] == [200, 400, 200]
