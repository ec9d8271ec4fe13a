"""``failnotify test-email``: a real test mail through a real SMTP server, and failures with reasons."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_failnotify.cli import mail
from airflow_failnotify.store import Store
from airflow_failnotify.store.engine import create_store_engine
from devtools.smtp_server import DevSmtpServer, free_port
from devtools.token_server import TokenServer
from tests.fixtures.mail import DEFAULT_TO, GRANTS, REFRESH_TOKEN, SMTP_USER, Grants


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="failnotify")
    mail.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["test-email", *argv])
    return int(args.func(args))


def test_sends_to_connection_default_recipient(
    smtp_server: DevSmtpServer,
    token_server: TokenServer,
    smtp_connection: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    conn_id = smtp_connection("cli_conn", server=smtp_server, auth_type="oauth2", token_server=token_server)
    assert run(conn_id) == 0
    out = capsys.readouterr().out
    assert f"test email sent through cli_conn ({smtp_server.address}" in out and DEFAULT_TO in out
    (received,) = smtp_server.messages
    assert received.rcpt_tos == [DEFAULT_TO]
    assert received.subject == "failnotify test email via cli_conn"
    assert received.auth_mechanism == "XOAUTH2" and received.auth_identity == SMTP_USER
    assert received.message.get_body(("html",)) is not None


def test_to_option_and_partial_refusal(
    smtp_server: DevSmtpServer, smtp_connection: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    smtp_server.refuse(["no@failnotify.test"])
    conn_id = smtp_connection(server=smtp_server, auth_type="basic")
    assert mail.main([conn_id, "--to", "a@failnotify.test,no@failnotify.test"]) == 1
    captured = capsys.readouterr()
    assert "to a@failnotify.test" in captured.out
    assert "refused some recipients: no@failnotify.test (550" in captured.err
    assert smtp_server.messages[0].rcpt_tos == ["a@failnotify.test"]


def test_fails_non_zero_with_the_reason(
    smtp_connection: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    conn_id = smtp_connection(host="127.0.0.1", port=port)
    assert run(conn_id) == 1
    err = capsys.readouterr().err
    assert (
        f"test email not sent (temporary failure): SMTP server 127.0.0.1:{port} refused the connection" in err
    )


def test_wrong_password_reason(
    smtp_server: DevSmtpServer, smtp_connection: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    conn_id = smtp_connection(server=smtp_server, auth_type="basic", password="nope-nope-nope")
    assert run(conn_id) == 1
    err = capsys.readouterr().err
    assert "(permanent failure)" in err and "refused the credentials" in err and "nope-nope-nope" not in err


def test_invalid_or_missing_connection_and_no_recipient(
    smtp_connection: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    conn_id = smtp_connection(host="127.0.0.1", auth_type="oauth2")
    assert run(conn_id) == 2
    assert "token_url: OAuth 2.0 needs the token URL" in capsys.readouterr().err
    assert run("no_such_conn_for_cli") == 2
    assert "connection 'no_such_conn_for_cli' cannot be read" in capsys.readouterr().err
    conn_id = smtp_connection("no_to", host="127.0.0.1", to_email="")
    assert run(conn_id) == 2
    assert "no recipient; pass --to or set to_email" in capsys.readouterr().err
    assert run(conn_id, "--to", "not-an-address") == 2
    assert "not an email address: not-an-address" in capsys.readouterr().err


@pytest.mark.parametrize("grant", GRANTS)
def test_test_email_with_each_oauth2_grant(
    grant: str, grants: Grants, smtp_connection: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    with DevSmtpServer(users={}, tokens=grants.server) as server:
        conn_id = smtp_connection(f"cli_{grant}", server=server, auth_type="oauth2", **grants.fields(grant))
        assert run(conn_id) == 0, capsys.readouterr().err
        (received,) = server.messages
    assert received.auth_mechanism == "XOAUTH2" and received.auth_identity == SMTP_USER
    assert f"test email sent through cli_{grant}" in capsys.readouterr().out


def test_test_email_keeps_a_rotated_refresh_token_across_processes(
    grants: Grants,
    smtp_connection: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Strict rotation: the second process must use the token the first one got (from the store)."""
    from cryptography.fernet import Fernet

    from tests.reliability.helpers import failnotify_cli

    url = f"sqlite:///{tmp_path / 'failnotify.db'}"
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", url)
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    Store(create_store_engine(url, timeout=5)).migrate()
    with DevSmtpServer(users={}, tokens=grants.server) as server:
        conn_id = smtp_connection(
            "cli_rotating", server=server, auth_type="oauth2", **grants.fields("refresh_token")
        )
        outs = [failnotify_cli("test-email", conn_id, env=dict(os.environ)) for _ in range(2)]
        assert [o.returncode for o in outs] == [0, 0], [o.stderr for o in outs]
        assert len(server.messages) == 2
    assert [r.status for r in grants.server.requests] == [200, 200]  # the second used the rotated token
    assert REFRESH_TOKEN not in grants.server.refresh_tokens


def test_the_test_mail_carries_its_own_message_id_date_and_list_headers(
    smtp_server: DevSmtpServer, smtp_connection: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    conn_id = smtp_connection("cli_headers", server=smtp_server, auth_type="basic")
    assert run(conn_id) == 0
    (received,) = smtp_server.messages
    headers = received.message
    # Ours, not the MTA's: the dev server adds none of these.
    message_id = str(headers["Message-ID"])
    assert message_id.startswith("<test-") and message_id.endswith("@failnotify>")
    assert headers["Date"] is not None
    assert headers["Auto-Submitted"] == "auto-generated" and headers["X-Failnotify-Kind"] == "test"
    assert "<connection-test-cli_headers.failnotify." in str(headers["List-Id"])
