"""Parsing and validation of failnotify_smtp connection fields (pure: no Airflow, no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_failnotify.core.addresses import parse_connection_recipients as parse_recipients
from airflow_failnotify.hooks.smtp_form import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from airflow_failnotify.hooks.smtp_settings import (
    SmtpSettings,
    SmtpSettingsError,
    parse_response_parameter,
    validate_smtp_settings,
)

OAUTH = {
    "auth_type": "oauth2",
    "from_email": "bot@example.com",
    "token_url": "https://login.example.com/token",
    "client_id": "app",
    "client_secret": "s3cret-value",
}


def settings(extra: dict[str, Any], **fields: Any) -> SmtpSettings:
    fields.setdefault("host", "smtp.example.com")
    return SmtpSettings.from_connection_fields(extra=extra, **fields)


def test_defaults_and_security_by_port() -> None:
    s = settings({"from_email": "bot@example.com"})
    assert (s.port, s.security, s.auth_type, s.timeout) == (25, "none", "none", 30.0)
    assert (s.access_token_key, s.expires_in_key) == ("access_token", "expires_in")
    assert s.smtp_user == "bot@example.com"
    assert settings({"from_email": "bot@example.com"}, port=587).security == "starttls"
    assert settings({"from_email": "bot@example.com"}, port="465").security == "ssl"
    assert settings({"from_email": "bot@example.com", "security": "none"}, port=465).security == "none"


def test_empty_strings_count_as_missing() -> None:
    s = settings(
        {
            "from_email": "bot@example.com",
            "security": "",
            "auth_type": "",
            "timeout": "",
            "response_parameter": "",
            "to_email": "",
            "token_auth_method": " ",
        },
        port=587,
        login="",
    )
    assert (s.security, s.auth_type, s.timeout, s.token_auth_method) == (
        "starttls",
        "none",
        30.0,
        "client_secret_post",
    )
    assert s.to_emails == ()
    assert s.login == "" and s.smtp_user == "bot@example.com"


def test_full_oauth2_settings_and_extra_as_json_string() -> None:
    extra = {
        **OAUTH,
        "scope": "mail.send",
        "token_auth_method": "client_secret_basic",
        "response_parameter": json.dumps({"accessTokenKey": "data.token", "expiresInKey": "data.ttl"}),
        "timeout": "12.5",
        "to_email": "a@example.com, B <b@example.com>; c@example.com",
    }
    s = SmtpSettings.from_connection_fields(
        host="smtp.example.com", port=2525, login="login-name", extra=json.dumps(extra), conn_id="c1"
    )
    assert s.conn_id == "c1" and s.smtp_user == "login-name"
    assert (s.access_token_key, s.expires_in_key) == ("data.token", "data.ttl")
    assert s.timeout == 12.5 and s.token_auth_method == "client_secret_basic"
    assert s.to_emails == ("a@example.com", "b@example.com", "c@example.com")
    assert s.secrets == ("s3cret-value",)
    assert "s3cret-value" not in repr(s)


@pytest.mark.parametrize(
    ("extra", "fields", "bad_field", "words"),
    [
        ({**OAUTH, "token_url": ""}, {}, "token_url", "token URL"),
        ({**OAUTH, "token_url": "ftp://x"}, {}, "token_url", "http"),
        ({**OAUTH, "client_secret": ""}, {}, "client_secret", "client secret"),
        ({**OAUTH, "client_id": None}, {}, "client_id", "client id"),
        ({"auth_type": "basic"}, {"password": "pw"}, "from_email", "required"),
        ({"auth_type": "none", "from_email": "not-an-address"}, {}, "from_email", "not an email"),
        ({"auth_type": "basic", "from_email": "a@b.c"}, {}, "password", "password"),
        ({"auth_type": "kerberos", "from_email": "a@b.c"}, {}, "auth_type", "kerberos"),
        ({"from_email": "a@b.c", "security": "tls"}, {}, "security", "tls"),
        ({**OAUTH, "response_parameter": "{not json"}, {}, "response_parameter", "not valid JSON"),
        ({**OAUTH, "response_parameter": '["a"]'}, {}, "response_parameter", "JSON object"),
        ({**OAUTH, "response_parameter": '{"tokenKey": "x"}'}, {}, "response_parameter", "tokenKey"),
        ({**OAUTH, "response_parameter": '{"accessTokenKey": "a..b"}'}, {}, "response_parameter", "dotted"),
        ({**OAUTH, "token_auth_method": "mtls"}, {}, "token_auth_method", "mtls"),
        ({**OAUTH, "grant_type": "password"}, {}, "grant_type", "password"),
        ({**OAUTH, "token_auth_method": "private_key_jwt"}, {}, "private_key", "private key"),
        ({**OAUTH, "token_auth_method": "private_key_jwt", "private_key": "x"}, {}, "private_key", "PEM"),
        ({**OAUTH, "token_auth_method": "private_key_jwt"}, {}, "certificate_thumbprint", "thumbprint"),
        (
            {**OAUTH, "certificate_thumbprint": "abc", "token_auth_method": "private_key_jwt"},
            {},
            "certificate_thumbprint",
            "40 hex digits",
        ),
        ({**OAUTH, "grant_type": "refresh_token"}, {}, "refresh_token", "consent"),
        (
            {
                **OAUTH,
                "grant_type": "refresh_token",
                "refresh_token": "r",
                "token_auth_method": "private_key_jwt",
            },
            {},
            "token_auth_method",
            "client_credentials",
        ),
        (
            {"auth_type": "oauth2", "from_email": "a@b.c", "grant_type": "jwt_bearer", "scope": "s"},
            {},
            "service_account_key",
            "JSON key",
        ),
        (
            {
                "auth_type": "oauth2",
                "from_email": "a@b.c",
                "grant_type": "jwt_bearer",
                "scope": "s",
                "service_account_key": "{nope",
            },
            {},
            "service_account_key",
            "not valid JSON",
        ),
        (
            {
                "auth_type": "oauth2",
                "from_email": "a@b.c",
                "grant_type": "jwt_bearer",
                "scope": "s",
                "service_account_key": '{"type": "authorized_user"}',
            },
            {},
            "service_account_key",
            "refresh_token",
        ),
        (
            {
                "auth_type": "oauth2",
                "from_email": "a@b.c",
                "grant_type": "jwt_bearer",
                "service_account_key_path": "/k.json",
            },
            {},
            "scope",
            "https://mail.google.com/",
        ),
        (
            {
                "auth_type": "oauth2",
                "from_email": "a@b.c",
                "grant_type": "jwt_bearer",
                "scope": "s",
                "service_account_key_path": "/k.json",
                "subject": "bob",
            },
            {},
            "subject",
            "not an email",
        ),
        ({"from_email": "a@b.c", "timeout": "soon"}, {}, "timeout", "number"),
        ({"from_email": "a@b.c", "timeout": 0}, {}, "timeout", "more than 0"),
        ({"from_email": "a@b.c", "to_email": "x, y@z.org"}, {}, "to_email", "x"),
        ({"from_email": "a@b.c"}, {"port": "smtp"}, "port", "whole number"),
        ({"from_email": "a@b.c"}, {"port": 70000}, "port", "65535"),
        ({"from_email": "a@b.c"}, {"host": ""}, "host", "host"),
    ],
)
def test_invalid_combinations_name_the_field(
    extra: dict[str, Any], fields: dict[str, Any], bad_field: str, words: str
) -> None:
    fields.setdefault("host", "smtp.example.com")
    errors = validate_smtp_settings(extra=extra, **fields)
    assert bad_field in errors, errors
    assert words.lower() in errors[bad_field].lower()
    with pytest.raises(SmtpSettingsError) as info:
        SmtpSettings.from_connection_fields(extra=extra, conn_id="bad_conn", **fields)
    assert info.value.errors == errors
    assert "bad_conn" in str(info.value) and f"{bad_field}:" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_several_errors_at_once_and_valid_is_empty() -> None:
    errors = validate_smtp_settings(host="", extra={"auth_type": "oauth2"})
    assert {"host", "from_email", "token_url", "client_id", "client_secret"} <= set(errors)
    assert validate_smtp_settings(host="h", extra=OAUTH) == {}
    assert validate_smtp_settings(host="h", extra="[1]") == {"extra": "must be a JSON object"}


def test_secret_never_in_error_messages() -> None:
    errors = validate_smtp_settings(
        host="h",
        password="pw-very-secret",
        extra={**OAUTH, "client_secret": "cs-very-secret", "timeout": "x"},
    )
    assert errors
    text = json.dumps(errors)
    assert "pw-very-secret" not in text and "cs-very-secret" not in text


def test_grants_and_their_secrets() -> None:
    key = json.dumps({"type": "service_account", "client_email": "sa@p.iam", "private_key": "PK-very-secret"})
    s = settings(
        {
            "auth_type": "oauth2",
            "from_email": "bot@example.com",
            "grant_type": "jwt_bearer",
            "service_account_key": key,
            "scope": "https://mail.google.com/",
        },
        login="me@example.com",
    )
    assert (s.grant_type, s.token_url, s.oauth2_subject) == ("jwt_bearer", "", "me@example.com")
    assert set(s.secrets) == {key, "PK-very-secret"} and "PK-very-secret" not in repr(s)
    hex_print = "AB:CD" + ":EF" * 18
    c = settings(
        {
            **OAUTH,
            "client_secret": "",
            "token_auth_method": "private_key_jwt",
            "private_key": "-----BEGIN PRIVATE KEY-----x",
            "certificate_thumbprint": hex_print,
        }
    )
    assert c.certificate_thumbprint == "abcd" + "ef" * 18 and c.secrets == ("-----BEGIN PRIVATE KEY-----x",)
    r = settings({**OAUTH, "grant_type": "refresh_token", "refresh_token": "rt-very-secret"})
    assert set(r.secrets) == {"s3cret-value", "rt-very-secret"} and "rt-very-secret" not in repr(r)
    assert settings(OAUTH).grant_type == "client_credentials"


def test_response_parameter_forms() -> None:
    assert parse_response_parameter(None) == ("access_token", "expires_in")
    assert parse_response_parameter({"accessTokenKey": "token"}) == ("token", "expires_in")
    assert parse_response_parameter('{"expiresInKey": "a.b"}') == ("access_token", "a.b")


def test_parse_recipients() -> None:
    assert parse_recipients("a@x.org, B <b@x.org>;c@x.org,,") == ["a@x.org", "b@x.org", "c@x.org"]
    assert parse_recipients(["a@x.org", "b@x.org, c@x.org"]) == ["a@x.org", "b@x.org", "c@x.org"]
    assert parse_recipients(None) == []


def test_provider_form_metadata() -> None:
    for secret in ("client_secret", "private_key", "refresh_token", "service_account_key"):
        assert CONN_FIELDS[secret]["schema"]["format"] == "password", secret
    assert "https://mail.google.com/" in CONN_FIELDS["scope"]["description"]
    assert {"from_email", "token_url", "response_parameter", "timeout", "to_email"} <= set(CONN_FIELDS)
    assert "extra" in UI_FIELD_BEHAVIOUR["hidden-fields"]
