"""FailnotifySmtpHook against a real aiosmtpd server and a real HTTP token endpoint (no mocks)."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage

import pytest
from pypdf import PdfReader

from airflow_failnotify.exceptions import MailDeliveryError
from airflow_failnotify.hooks.oauth2 import get_oauth2_token
from airflow_failnotify.hooks.smtp import FailnotifySmtpHook
from airflow_failnotify.hooks.smtp_settings import SmtpSettings
from devtools.smtp_server import DevSmtpServer, ReceivedMessage, free_port
from devtools.token_server import TokenServer
from tests.fixtures.mail import (
    CLIENT_ID,
    CLIENT_SECRET,
    DEFAULT_TO,
    FROM_EMAIL,
    SCOPE,
    SMTP_PASSWORD,
    SMTP_USER,
)

MakeConn = Callable[..., str]
MakeMail = Callable[..., EmailMessage]


def assert_intact(received: ReceivedMessage, sent: EmailMessage) -> None:
    """The server got the message whole: headers, both alternatives and the PDF, byte for byte."""
    got = received.message
    assert got["Subject"] == sent["Subject"]
    assert got["From"] == FROM_EMAIL
    assert received.mail_from == FROM_EMAIL
    assert got.get_content_type() == "multipart/mixed"
    body_text = got.get_body(("plain",))
    body_html = got.get_body(("html",))
    assert body_text is not None and body_html is not None
    assert "Ünïcødé ✓" in body_text.get_content()
    assert "<b>run failed</b>" in body_html.get_content()
    alternative = next(part for part in got.walk() if part.get_content_type() == "multipart/alternative")
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    (attachment,) = list(got.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "trace.pdf"
    (sent_pdf,) = list(sent.iter_attachments())
    assert attachment.get_content() == sent_pdf.get_content()
    assert len(PdfReader(io.BytesIO(attachment.get_content())).pages) == 1


# ---------------------------------------------------------------------------------------------------
# each auth type and each security mode
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("auth_type", ["none", "basic", "oauth2"])
@pytest.mark.parametrize("security", ["none", "starttls", "ssl"])
def test_delivers_intact_with_each_auth_type_and_security(
    token_server: TokenServer, smtp_connection: MakeConn, make_mail: MakeMail, auth_type: str, security: str
) -> None:
    with DevSmtpServer(
        users={SMTP_USER: SMTP_PASSWORD},
        tokens=token_server,
        security=security,
        require_auth=auth_type != "none",
    ) as server:
        conn_id = smtp_connection(
            server=server, auth_type=auth_type, token_server=token_server if auth_type == "oauth2" else None
        )
        sent = make_mail(to="a@failnotify.test", cc="b@failnotify.test")
        with FailnotifySmtpHook(conn_id) as hook:
            refused = hook.send_message(sent)
        assert refused == {}
        (received,) = server.messages
        assert_intact(received, sent)
        assert sorted(received.rcpt_tos) == ["a@failnotify.test", "b@failnotify.test"]
        assert received.tls is (security != "none")
        expected_mechanism = {"none": None, "basic": "PLAIN", "oauth2": "XOAUTH2"}[auth_type]
        assert received.auth_mechanism == expected_mechanism
        assert received.auth_identity == (None if auth_type == "none" else SMTP_USER)
        assert token_server.request_count == (1 if auth_type == "oauth2" else 0)


def test_basic_auth_login_mechanism_and_explicit_login(
    smtp_connection: MakeConn, make_mail: MakeMail
) -> None:
    """A server that offers only AUTH LOGIN gets the LOGIN dialogue (ending in 235), as the login given."""
    with DevSmtpServer(
        users={"other-login": "pw-login-only"}, require_auth=True, exclude_auth=("PLAIN",)
    ) as server:
        conn_id = smtp_connection(
            server=server, auth_type="basic", login="other-login", password="pw-login-only"
        )
        with FailnotifySmtpHook(conn_id) as hook:
            hook.send_message(make_mail(pdf=False))
        (received,) = server.messages
        assert (received.auth_mechanism, received.auth_identity) == ("LOGIN", "other-login")
        assert received.mail_from == FROM_EMAIL


@pytest.mark.parametrize(
    ("auth_type", "reply", "temporary"),
    [
        ("basic", "503 5.5.1 Bad sequence", False),
        ("oauth2", "503 5.5.1 Bad sequence", False),
        ("basic", "454 4.7.0 Temporary authentication failure", True),
    ],
)
def test_auth_reply_other_than_235_is_an_error(
    smtp_server: DevSmtpServer,
    token_server: TokenServer,
    smtp_connection: MakeConn,
    make_mail: MakeMail,
    auth_type: str,
    reply: str,
    temporary: bool,
) -> None:
    """smtplib.login takes a 503 for a success and carries on unauthenticated; the hook does not."""
    smtp_server.auth_error = reply
    conn_id = smtp_connection(server=smtp_server, auth_type=auth_type, token_server=token_server)
    with pytest.raises(MailDeliveryError) as info:
        FailnotifySmtpHook(conn_id).send_message(make_mail())
    assert f"SMTP server {smtp_server.address} did not accept AUTH for {SMTP_USER} ({reply})" == str(
        info.value
    )
    assert (info.value.temporary, info.value.server_level) == (temporary, True)
    assert smtp_server.messages == []


def test_auth_mechanism_not_offered(smtp_connection: MakeConn) -> None:
    with DevSmtpServer(users={SMTP_USER: SMTP_PASSWORD}, exclude_auth=("PLAIN", "LOGIN")) as server:
        conn_id = smtp_connection(server=server, auth_type="basic")
        ok, message = FailnotifySmtpHook(conn_id).test_connection()
    assert not ok
    assert message == (
        f"SMTP server {server.address} offers neither AUTH PLAIN nor LOGIN for Basic Auth "
        "(it offers: XOAUTH2)"
    )


def test_many_messages_over_one_connection(
    smtp_server: DevSmtpServer, smtp_connection: MakeConn, make_mail: MakeMail
) -> None:
    conn_id = smtp_connection(server=smtp_server, auth_type="basic")
    with FailnotifySmtpHook(conn_id) as hook:
        for number in range(20):
            hook.send_message(make_mail(subject=f"mail {number}", pdf=number == 0))
    assert [m.subject for m in smtp_server.messages] == [f"mail {n}" for n in range(20)]
    assert smtp_server.connection_count == 1
    assert smtp_server.auth_successes == 1


def test_from_header_kept_when_present_and_bcc_not_transmitted(
    smtp_server: DevSmtpServer, smtp_connection: MakeConn, make_mail: MakeMail
) -> None:
    conn_id = smtp_connection(server=smtp_server)
    msg = make_mail(pdf=False)
    msg["From"] = "Failnotify <robot@failnotify.test>"
    msg["Bcc"] = "hidden@failnotify.test"
    with FailnotifySmtpHook(conn_id) as hook:
        hook.send_message(msg)
    (received,) = smtp_server.messages
    assert received.message["From"] == "Failnotify <robot@failnotify.test>"
    assert "hidden@failnotify.test" in received.rcpt_tos
    assert received.message["Bcc"] is None


def test_message_without_recipient_is_a_value_error(
    smtp_server: DevSmtpServer, smtp_connection: MakeConn
) -> None:
    conn_id = smtp_connection(server=smtp_server)
    msg = EmailMessage()
    msg["Subject"] = "nobody"
    msg.set_content("x")
    with pytest.raises(ValueError, match="no recipient"):
        FailnotifySmtpHook(conn_id).send_message(msg)


# ---------------------------------------------------------------------------------------------------
# credentials and the token endpoint
# ---------------------------------------------------------------------------------------------------
def test_wrong_password_is_a_permanent_server_level_535(
    smtp_server: DevSmtpServer, smtp_connection: MakeConn, make_mail: MakeMail
) -> None:
    conn_id = smtp_connection(server=smtp_server, auth_type="basic", password="wrong-password-123")
    with pytest.raises(MailDeliveryError) as info:
        FailnotifySmtpHook(conn_id).send_message(make_mail())
    err = info.value
    assert (err.temporary, err.server_level) == (False, True)
    assert f"SMTP server {smtp_server.address} refused the credentials of {SMTP_USER} (535" in str(err)
    assert "wrong-password-123" not in str(err)
    assert smtp_server.messages == []


@pytest.mark.parametrize(
    ("fault", "temporary", "expected"),
    [
        ("invalid_client", False, "answered 401 invalid_client"),
        ("server_error", True, "answered 500 server_error"),
        ("not_json", False, "with a body that is not a JSON object (content type text/html)"),
        ("missing_token", False, "token response has no 'access_token' (keys: expires_in, token_type)"),
    ],
)
def test_token_endpoint_faults(
    smtp_server: DevSmtpServer,
    token_server: TokenServer,
    smtp_connection: MakeConn,
    make_mail: MakeMail,
    fault: str,
    temporary: bool,
    expected: str,
) -> None:
    token_server.fault = fault
    conn_id = smtp_connection(server=smtp_server, auth_type="oauth2", token_server=token_server)
    with pytest.raises(MailDeliveryError) as info:
        FailnotifySmtpHook(conn_id).send_message(make_mail())
    err = info.value
    assert expected in str(err)
    assert (err.temporary, err.server_level) == (temporary, True)
    if fault != "missing_token":
        assert token_server.url in str(err)
    assert CLIENT_SECRET not in str(err)
    assert smtp_server.messages == [] and smtp_server.auth_successes == 0


def test_wrong_client_secret_is_invalid_client(
    smtp_server: DevSmtpServer, token_server: TokenServer, smtp_connection: MakeConn, make_mail: MakeMail
) -> None:
    conn_id = smtp_connection(
        server=smtp_server, auth_type="oauth2", token_server=token_server, client_secret="not-the-secret-42"
    )
    with pytest.raises(MailDeliveryError, match="answered 401 invalid_client") as info:
        FailnotifySmtpHook(conn_id).send_message(make_mail())
    assert "not-the-secret-42" not in str(info.value)


def test_token_endpoint_down_is_temporary(
    smtp_server: DevSmtpServer, smtp_connection: MakeConn, make_mail: MakeMail
) -> None:
    url = f"http://127.0.0.1:{free_port()}/oauth2/token"
    conn_id = smtp_connection(
        server=smtp_server,
        auth_type="oauth2",
        token_url=url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    with pytest.raises(MailDeliveryError) as info:
        FailnotifySmtpHook(conn_id).send_message(make_mail())
    assert str(info.value) == f"token endpoint {url} unreachable (connection refused)"
    assert info.value.temporary and info.value.server_level


def test_slow_token_endpoint_honours_timeout(
    smtp_server: DevSmtpServer, token_server: TokenServer, smtp_connection: MakeConn, make_mail: MakeMail
) -> None:
    token_server.fault, token_server.delay = "slow", 10
    conn_id = smtp_connection(server=smtp_server, auth_type="oauth2", token_server=token_server, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(MailDeliveryError, match=r"did not answer within 0\.5 s") as info:
        FailnotifySmtpHook(conn_id).send_message(make_mail())
    # Well before the endpoint's 10 s answer; loose for a loaded host (see the never-greets case).
    assert time.monotonic() - started < 8
    assert info.value.temporary


@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic"])
def test_token_auth_methods(
    smtp_server: DevSmtpServer, smtp_connection: MakeConn, make_mail: MakeMail, method: str
) -> None:
    with TokenServer({CLIENT_ID: CLIENT_SECRET}, auth_methods=(method,)) as tokens:
        smtp_server.tokens = tokens
        conn_id = smtp_connection(
            server=smtp_server, auth_type="oauth2", token_server=tokens, token_auth_method=method
        )
        with FailnotifySmtpHook(conn_id) as hook:
            hook.send_message(make_mail())
        assert [(r.auth_method, r.status, r.scope) for r in tokens.requests] == [(method, 200, SCOPE)]
    assert len(smtp_server.messages) == 1


def test_custom_nested_response_parameter(
    smtp_server: DevSmtpServer, smtp_connection: MakeConn, make_mail: MakeMail
) -> None:
    with TokenServer(
        {CLIENT_ID: CLIENT_SECRET}, token_key="result.credentials.bearer", expires_key="result.ttl_seconds"
    ) as tokens:
        smtp_server.tokens = tokens
        mapping = {"accessTokenKey": "result.credentials.bearer", "expiresInKey": "result.ttl_seconds"}
        conn_id = smtp_connection(
            server=smtp_server,
            auth_type="oauth2",
            token_server=tokens,
            response_parameter=json.dumps(mapping),
        )
        with FailnotifySmtpHook(conn_id) as hook:
            hook.send_message(make_mail())
        assert smtp_server.messages[0].auth_mechanism == "XOAUTH2"

        # the default mapping does not find the nested token, and says which keys there are
        other = smtp_connection(
            "failnotify_smtp_default_map", server=smtp_server, auth_type="oauth2", token_server=tokens
        )
        with pytest.raises(MailDeliveryError, match=r"token response has no 'access_token' \(keys: result, "):
            FailnotifySmtpHook(other).send_message(make_mail())


def test_one_token_request_for_many_messages_and_hook_instances(
    smtp_server: DevSmtpServer, token_server: TokenServer, smtp_connection: MakeConn, make_mail: MakeMail
) -> None:
    conn_id = smtp_connection(server=smtp_server, auth_type="oauth2", token_server=token_server)
    for _ in range(3):
        with FailnotifySmtpHook(conn_id) as hook:
            for _ in range(4):
                hook.send_message(make_mail(pdf=False))
    assert len(smtp_server.messages) == 12
    assert token_server.request_count == 1
    assert smtp_server.connection_count == 3 and smtp_server.auth_successes == 3


def test_expired_token_is_refreshed_before_use(
    smtp_server: DevSmtpServer, smtp_connection: MakeConn, make_mail: MakeMail
) -> None:
    # 10 s: the first mail must still use the token within its lifetime on a busy machine (1 s and, in
    # a full suite on a slow host, 3 s did not).
    with TokenServer({CLIENT_ID: CLIENT_SECRET}, expires_in=10) as tokens:
        smtp_server.tokens = tokens
        conn_id = smtp_connection(server=smtp_server, auth_type="oauth2", token_server=tokens)
        with FailnotifySmtpHook(conn_id) as hook:
            hook.send_message(make_mail(pdf=False))
        time.sleep(10.1)  # the token endpoint and the SMTP server check real expiry: its lifetime must pass
        with FailnotifySmtpHook(conn_id) as hook:
            hook.send_message(make_mail(pdf=False))
        assert tokens.request_count == 2
    assert len(smtp_server.messages) == 2
    assert smtp_server.auth_failures == 0  # refreshed because it expired, not after a refusal


def test_535_with_cached_token_refreshes_once_and_retries(
    smtp_server: DevSmtpServer, token_server: TokenServer, smtp_connection: MakeConn, make_mail: MakeMail
) -> None:
    conn_id = smtp_connection(server=smtp_server, auth_type="oauth2", token_server=token_server)
    with FailnotifySmtpHook(conn_id) as hook:
        hook.send_message(make_mail(pdf=False))
    token_server.revoke()  # the server now refuses the cached token
    with FailnotifySmtpHook(conn_id) as hook:
        hook.send_message(make_mail(pdf=False))
    assert token_server.request_count == 2
    assert smtp_server.auth_failures == 1 and smtp_server.auth_successes == 2
    assert len(smtp_server.messages) == 2


def test_535_with_fresh_token_is_not_retried(
    token_server: TokenServer, smtp_connection: MakeConn, make_mail: MakeMail
) -> None:
    with DevSmtpServer(tokens=lambda token: False) as server:  # refuses every token
        conn_id = smtp_connection(server=server, auth_type="oauth2", token_server=token_server)
        with pytest.raises(MailDeliveryError) as info:
            FailnotifySmtpHook(conn_id).send_message(make_mail())
        assert f"SMTP server {server.address} refused the OAuth 2.0 token of {SMTP_USER} (535" in str(
            info.value
        )
        assert (info.value.temporary, info.value.server_level) == (False, True)
        assert token_server.request_count == 1 and server.auth_failures == 1
        # a cached token that is refused: exactly one refresh, one retry, then the error
        with pytest.raises(MailDeliveryError, match="535"):
            FailnotifySmtpHook(conn_id).send_message(make_mail())
        assert token_server.request_count == 2 and server.auth_failures == 3


def test_token_registered_with_airflow_secret_masker(token_server: TokenServer) -> None:
    from airflow.sdk.log import redact

    settings = SmtpSettings(
        host="127.0.0.1",
        from_email=FROM_EMAIL,
        auth_type="oauth2",
        token_url=token_server.url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scope=SCOPE,
        conn_id="masker_test",
    )
    token, cached = get_oauth2_token(settings, force_refresh=True)
    assert not cached and len(token) > 1500
    assert token not in str(redact(f"token={token}"))


# ---------------------------------------------------------------------------------------------------
# server faults
# ---------------------------------------------------------------------------------------------------
def test_server_down_is_temporary_connection_refused(smtp_connection: MakeConn, make_mail: MakeMail) -> None:
    port = free_port()
    conn_id = smtp_connection(host="127.0.0.1", port=port, security="none")
    with pytest.raises(MailDeliveryError) as info:
        FailnotifySmtpHook(conn_id).send_message(make_mail())
    assert str(info.value) == f"SMTP server 127.0.0.1:{port} refused the connection (is it running?)"
    assert (info.value.temporary, info.value.server_level) == (True, True)


def test_server_that_never_greets_times_out(
    smtp_server: DevSmtpServer, smtp_connection: MakeConn, make_mail: MakeMail
) -> None:
    smtp_server.never_greet = True
    conn_id = smtp_connection(server=smtp_server, timeout=1)
    started = time.monotonic()
    with pytest.raises(MailDeliveryError) as info:
        FailnotifySmtpHook(conn_id).send_message(make_mail())
    elapsed = time.monotonic() - started
    assert str(info.value) == f"no answer from {smtp_server.address} within 1 s"
    assert info.value.temporary and info.value.server_level
    # The connection's 1 s, not the default 30 s; loose above (the background session runs niced beside
    # whole Airflow stacks: 3.5 s seen).
    assert 0.9 <= elapsed < 10


def test_server_restarted_on_same_port(
    smtp_server: DevSmtpServer, smtp_connection: MakeConn, make_mail: MakeMail
) -> None:
    conn_id = smtp_connection(server=smtp_server)
    smtp_server.stop()
    with pytest.raises(MailDeliveryError, match="refused the connection") as info:
        FailnotifySmtpHook(conn_id).send_message(make_mail())
    assert info.value.temporary
    smtp_server.start()
    with FailnotifySmtpHook(conn_id) as hook:
        hook.send_message(make_mail())
    assert len(smtp_server.messages) == 1


def test_partial_refusal_returns_refused_recipients(
    smtp_server: DevSmtpServer,
    smtp_connection: MakeConn,
    make_mail: MakeMail,
    caplog: pytest.LogCaptureFixture,
) -> None:
    smtp_server.refuse(["gone@failnotify.test"])
    conn_id = smtp_connection(server=smtp_server)
    with caplog.at_level(logging.WARNING), FailnotifySmtpHook(conn_id) as hook:
        refused = hook.send_message(make_mail(to="ok@failnotify.test, gone@failnotify.test"))
    assert list(refused) == ["gone@failnotify.test"] and refused["gone@failnotify.test"][0] == 550
    assert smtp_server.messages[0].rcpt_tos == ["ok@failnotify.test"]
    assert "refused 1 of 2 recipient(s): gone@failnotify.test (550)" in caplog.text


def test_all_recipients_refused_is_message_level_and_connection_stays_usable(
    smtp_server: DevSmtpServer, smtp_connection: MakeConn, make_mail: MakeMail
) -> None:
    smtp_server.refuse({"a@failnotify.test": "550 5.1.1 no such user", "b@failnotify.test": "450 4.2.1 busy"})
    conn_id = smtp_connection(server=smtp_server)
    with FailnotifySmtpHook(conn_id) as hook:
        with pytest.raises(MailDeliveryError) as info:
            hook.send_message(make_mail(to="a@failnotify.test, b@failnotify.test"))
        assert (info.value.temporary, info.value.server_level) == (False, False)
        assert "refused every recipient: a@failnotify.test (550 5.1.1 no such user)" in str(info.value)
        with pytest.raises(MailDeliveryError) as only_temporary:
            hook.send_message(make_mail(to="b@failnotify.test"))
        assert (only_temporary.value.temporary, only_temporary.value.server_level) == (True, False)
        hook.send_message(make_mail(to="c@failnotify.test"))
    assert [m.rcpt_tos for m in smtp_server.messages] == [["c@failnotify.test"]]
    assert smtp_server.connection_count == 1


@pytest.mark.parametrize(
    ("reply", "temporary"),
    [
        ("554 5.7.1 message rejected", False),
        ("552 5.3.4 too big", False),
        ("451 4.3.0 try again later", True),
    ],
)
def test_data_error_is_message_level(
    smtp_server: DevSmtpServer, smtp_connection: MakeConn, make_mail: MakeMail, reply: str, temporary: bool
) -> None:
    smtp_server.data_error, smtp_server.data_error_times = reply, 1
    conn_id = smtp_connection(server=smtp_server)
    with FailnotifySmtpHook(conn_id) as hook:
        with pytest.raises(MailDeliveryError) as info:
            hook.send_message(make_mail())
        assert (info.value.temporary, info.value.server_level) == (temporary, False)
        assert f"refused the message ({reply})" in str(info.value)
        hook.send_message(make_mail(subject="second"))  # same connection still works
    assert [m.subject for m in smtp_server.messages] == ["second"]


def test_connection_dropped_in_data_is_temporary_and_reconnects(
    smtp_server: DevSmtpServer, smtp_connection: MakeConn, make_mail: MakeMail
) -> None:
    smtp_server.drop_in_data = True
    conn_id = smtp_connection(server=smtp_server)
    hook = FailnotifySmtpHook(conn_id)
    with pytest.raises(MailDeliveryError, match="closed the connection while sending") as info:
        hook.send_message(make_mail())
    assert info.value.temporary and info.value.server_level
    smtp_server.drop_in_data = False
    hook.send_message(make_mail(subject="after"))
    hook.close()
    assert [m.subject for m in smtp_server.messages] == ["after"]
    assert smtp_server.connection_count == 2


def test_auth_required_but_auth_type_none(smtp_connection: MakeConn, make_mail: MakeMail) -> None:
    with DevSmtpServer(users={SMTP_USER: SMTP_PASSWORD}, require_auth=True) as server:
        conn_id = smtp_connection(server=server)
        with pytest.raises(MailDeliveryError) as info:
            FailnotifySmtpHook(conn_id).send_message(make_mail())
    assert f"refused the sender {FROM_EMAIL} (530" in str(info.value)
    assert (info.value.temporary, info.value.server_level) == (False, True)


def test_tls_against_plain_server_and_untrusted_certificate(smtp_connection: MakeConn) -> None:
    with DevSmtpServer() as plain:
        conn_id = smtp_connection(server=plain, security="ssl", timeout=2)
        ok, message = FailnotifySmtpHook(conn_id).test_connection()
        assert not ok and f"TLS with {plain.address} failed" in message
        conn_id = smtp_connection("starttls_on_plain", server=plain, security="starttls")
        ok, message = FailnotifySmtpHook(conn_id).test_connection()
        assert not ok and "does not offer STARTTLS" in message
    with DevSmtpServer(security="ssl") as tls:
        conn_id = smtp_connection("untrusted", host=tls.host, port=tls.port, security="ssl")
        ok, message = FailnotifySmtpHook(conn_id).test_connection()
        assert not ok and f"TLS certificate of {tls.address} is not trusted" in message


# ---------------------------------------------------------------------------------------------------
# connection problems, test_connection, secrets
# ---------------------------------------------------------------------------------------------------
def test_invalid_connection_names_the_field(smtp_connection: MakeConn, make_mail: MakeMail) -> None:
    conn_id = smtp_connection(host="127.0.0.1", port=25, auth_type="oauth2", client_id="x", client_secret="y")
    with pytest.raises(MailDeliveryError) as info:
        FailnotifySmtpHook(conn_id).send_message(make_mail())
    assert "connection 'failnotify_smtp_test' is invalid: token_url: OAuth 2.0 needs the token URL" in str(
        info.value
    )
    assert not info.value.temporary
    conn_id = smtp_connection("no_from", host="127.0.0.1", from_email="")
    ok, message = FailnotifySmtpHook(conn_id).test_connection()
    assert not ok and "from_email: the sender email is required" in message
    conn_id = smtp_connection("bad_map", host="h", response_parameter="{oops")
    assert "response_parameter: not valid JSON" in FailnotifySmtpHook(conn_id).test_connection()[1]
    conn_id = smtp_connection("bad_auth", host="h", auth_type="ntlm")
    assert "auth_type: unknown auth_type 'ntlm'" in FailnotifySmtpHook(conn_id).test_connection()[1]


def test_missing_connection(smtp_connection: MakeConn) -> None:
    ok, message = FailnotifySmtpHook("no_such_connection_here").test_connection()
    assert not ok
    assert "connection 'no_such_connection_here' cannot be read" in message


def test_test_connection_success_and_never_raises(
    smtp_server: DevSmtpServer, token_server: TokenServer, smtp_connection: MakeConn
) -> None:
    conn_id = smtp_connection(server=smtp_server, auth_type="oauth2", token_server=token_server)
    ok, message = FailnotifySmtpHook(conn_id).test_connection()
    assert ok, message
    assert message == (
        f"connected to {smtp_server.address} (security none) with OAuth 2.0 (XOAUTH2) as {SMTP_USER}"
    )
    # even with settings that make no sense at all
    weird = SmtpSettings(host="", port=0, from_email="x@y.z")
    ok, message = FailnotifySmtpHook(settings=weird).test_connection()
    assert ok is False and message


def test_no_secret_in_logs_or_errors(
    smtp_server: DevSmtpServer,
    token_server: TokenServer,
    smtp_connection: MakeConn,
    make_mail: MakeMail,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []
    tokens: list[str] = []

    def remember_and_check(token: str) -> bool:
        tokens.append(token)
        return token_server.is_valid(token)

    smtp_server.tokens = remember_and_check

    oauth = smtp_connection("oauth", server=smtp_server, auth_type="oauth2", token_server=token_server)
    with FailnotifySmtpHook(oauth) as hook:
        hook.send_message(make_mail(pdf=False))
    token_server.revoke()
    with FailnotifySmtpHook(oauth) as hook:  # 535 -> refresh -> retry
        hook.send_message(make_mail(pdf=False))
    token_server.fault = "invalid_client"
    token_server.revoke()
    for conn_id in (
        oauth,
        smtp_connection(
            "oauth_bad",
            server=smtp_server,
            auth_type="oauth2",
            token_server=token_server,
            client_secret="bad-client-secret-77",
        ),
    ):
        with pytest.raises(MailDeliveryError) as info:
            FailnotifySmtpHook(conn_id).send_message(make_mail(pdf=False))
        messages.append(str(info.value))
        messages.append(FailnotifySmtpHook(conn_id).test_connection()[1])
    basic_bad = smtp_connection(
        "basic_bad", server=smtp_server, auth_type="basic", password="bad-password-99"
    )
    with pytest.raises(MailDeliveryError) as info:
        FailnotifySmtpHook(basic_bad).send_message(make_mail(pdf=False))
    messages.append(str(info.value))
    basic = smtp_connection("basic_ok", server=smtp_server, auth_type="basic")
    messages.append(FailnotifySmtpHook(basic).test_connection()[1])

    assert len(tokens) >= 3 and all(len(t) > 1500 for t in tokens)
    secrets = [SMTP_PASSWORD, CLIENT_SECRET, "bad-client-secret-77", "bad-password-99", *tokens]
    captured = capsys.readouterr()  # Airflow's structlog console output, too
    text = "\n".join(
        [caplog.text, *messages, *(str(r.args) for r in caplog.records), captured.out, captured.err]
    )
    assert "urllib3" in caplog.text or "token" in caplog.text  # DEBUG logging really was captured
    assert "invalid_client" in text and "535" in text  # the failures really happened and were described
    for secret in secrets:
        assert secret not in text
        assert secret[:40] not in text


def test_hook_metadata() -> None:
    assert FailnotifySmtpHook.conn_type == "failnotify_smtp"
    assert FailnotifySmtpHook.hook_name == "Failnotify SMTP"
    assert FailnotifySmtpHook.conn_name_attr == "failnotify_smtp_conn_id"
    behaviour = FailnotifySmtpHook.get_ui_field_behaviour()
    assert "extra" in behaviour["hidden-fields"]
    behaviour["hidden-fields"].append("mutated")
    assert "mutated" not in FailnotifySmtpHook.get_ui_field_behaviour()["hidden-fields"]
    # no I/O in __init__: a hook for a connection that does not exist is fine until used
    FailnotifySmtpHook("does_not_exist")


def test_default_to_from_connection(smtp_connection: MakeConn) -> None:
    conn_id = smtp_connection(host="127.0.0.1", to_email=f"{DEFAULT_TO}, x@failnotify.test")
    assert FailnotifySmtpHook(conn_id).settings.to_emails == (DEFAULT_TO, "x@failnotify.test")


def test_whole_mail_timeout_against_stalled_server(smtp_connection: MakeConn, make_mail: MakeMail) -> None:
    """A server that greets and answers EHLO, then goes silent, cannot hold a mail beyond the timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"220 stall ESMTP\r\n")
            conn.recv(1024)
            conn.sendall(b"250 stall\r\n")
            time.sleep(10)  # never answers MAIL FROM (not within the test's bound, at least)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    conn_id = smtp_connection(host="127.0.0.1", port=port, security="none", timeout=1)
    started = time.monotonic()
    try:
        with pytest.raises(MailDeliveryError) as info:
            FailnotifySmtpHook(conn_id).send_message(make_mail(pdf=False))
    finally:
        listener.close()
    assert time.monotonic() - started < 8  # the connection's 1 s, well before the stall ends
    assert "within 1 s" in str(info.value) and info.value.temporary
