"""The email channel against the real dev SMTP server: a Notification in, a MIME mail out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import pytest

from airflow_failnotify.channels.email import open_email_transport
from airflow_failnotify.core.notification import Attachment, Notification
from airflow_failnotify.exceptions import MailDeliveryError
from devtools.smtp_server import DevSmtpServer, free_port
from tests.fixtures.mail import FROM_EMAIL, SMTP_USER, pdf_bytes

MakeConn = Callable[..., str]
WHEN = datetime(2026, 11, 27, 21, 47, 57, tzinfo=timezone.utc)


def notification(**overrides: object) -> Notification:
    fields: dict[str, object] = {
        "subject": "Job failed: sync_jira (forward)",
        "text": "A job failed.\n",
        "html": "<p>A job <b>failed</b>.</p>",
        "to": ("ops@failnotify.test",),
        "cc": ("lead@failnotify.test",),
        "message_id": "<abc123@failnotify>",
        "date": WHEN,
    }
    fields.update(overrides)
    return Notification(**fields)  # type: ignore[arg-type]


def test_sends_a_notification_as_mime_from_the_connection_sender(
    smtp_server: DevSmtpServer, smtp_connection: MakeConn
) -> None:
    conn_id = smtp_connection(server=smtp_server, auth_type="basic")
    pdf = pdf_bytes("trace")
    with open_email_transport(conn_id) as transport:
        assert transport.sender == FROM_EMAIL
        refused = transport.send(
            notification(attachments=(Attachment("error-trace.pdf", pdf, "application/pdf"),))
        )
    assert refused == {}
    (received,) = smtp_server.messages
    assert received.mail_from == FROM_EMAIL and received.auth_identity == SMTP_USER
    assert received.rcpt_tos == ["ops@failnotify.test", "lead@failnotify.test"]
    msg = received.message
    assert msg["From"] == FROM_EMAIL and msg["Subject"] == "Job failed: sync_jira (forward)"
    assert msg["Message-ID"] == "<abc123@failnotify>" and msg["Auto-Submitted"] == "auto-generated"
    html = msg.get_body(("html",))
    assert html is not None and "<b>failed</b>" in html.get_content()
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_content_type() == "application/pdf" and attachment.get_content() == pdf


def test_many_notifications_share_one_connection(
    smtp_server: DevSmtpServer, smtp_connection: MakeConn
) -> None:
    conn_id = smtp_connection(server=smtp_server)
    with open_email_transport(conn_id) as transport:
        for n in range(3):
            transport.send(notification(subject=f"mail {n}", message_id=f"<m{n}@failnotify>"))
    assert [m.subject for m in smtp_server.messages] == ["mail 0", "mail 1", "mail 2"]
    assert smtp_server.connection_count == 1


def test_returns_the_refused_recipients(smtp_server: DevSmtpServer, smtp_connection: MakeConn) -> None:
    smtp_server.refuse(["lead@failnotify.test"])
    conn_id = smtp_connection(server=smtp_server)
    with open_email_transport(conn_id) as transport:
        refused = transport.send(notification())
    assert list(refused) == ["lead@failnotify.test"] and refused["lead@failnotify.test"][0] == 550
    assert smtp_server.messages[0].rcpt_tos == ["ops@failnotify.test"]


def test_an_invalid_connection_fails_on_opening(smtp_connection: MakeConn) -> None:
    conn_id = smtp_connection(host="127.0.0.1", auth_type="oauth2")
    with pytest.raises(MailDeliveryError, match=r"token_url: OAuth 2\.0 needs the token URL"):
        with open_email_transport(conn_id):
            pass


def test_a_server_that_is_down_fails_on_sending(smtp_connection: MakeConn) -> None:
    port = free_port()
    conn_id = smtp_connection(host="127.0.0.1", port=port)
    with open_email_transport(conn_id) as transport:  # nothing is connected before the first send
        with pytest.raises(MailDeliveryError, match=rf"127\.0\.0\.1:{port} refused the connection") as info:
            transport.send(notification())
    assert info.value.temporary


def test_a_connection_type_no_channel_claims_goes_through_email(
    smtp_server: DevSmtpServer, smtp_connection: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a second channel registered, the connection's type picks it; any other type is email."""
    from contextlib import contextmanager

    from airflow_failnotify import channels

    opened: list[str] = []

    @contextmanager
    def other_channel(conn_id: str):  # type: ignore[no-untyped-def]
        opened.append(conn_id)
        yield None

    monkeypatch.setitem(channels.CHANNELS, "failnotify_other", other_channel)
    conn_id = smtp_connection("mail_channel", server=smtp_server, auth_type="basic")
    note = Notification(
        subject="channel test", text="t", html="<p>t</p>", to=("ops@example.com",), cc=(), message_id="<c@t>"
    )
    with channels.open_transport(conn_id) as transport:
        assert transport.send(note) == {}
    monkeypatch.setenv(
        "AIRFLOW_CONN_OTHER_CHAN", '{"conn_type": "failnotify_other", "host": "example.invalid"}'
    )
    with channels.open_transport("other_chan"):
        pass
    assert opened == ["other_chan"] and len(smtp_server.messages) == 1
