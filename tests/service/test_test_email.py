"""The one test mail (Test button and ``failnotify test-email``) through the real dev SMTP server."""

from __future__ import annotations

from collections.abc import Callable

from airflow_failnotify.core.config import parse_registration
from airflow_failnotify.exceptions import MailDeliveryError
from airflow_failnotify.service.test_email import send_test_email, send_test_emails
from devtools.smtp_server import DevSmtpServer, free_port
from tests.fixtures.mail import FROM_EMAIL

MakeConn = Callable[..., str]


def test_test_button_mail_goes_to_the_direction_recipients_and_cc(
    smtp_server: DevSmtpServer, smtp_connection: MakeConn
) -> None:
    conn_id = smtp_connection(server=smtp_server)
    reg = parse_registration(
        {
            "integration": "sync_c",
            "smtp_conn_id": conn_id,
            "recipients": "ops@example.com",
            "cc": "lead@example.com",
            "subject_prefix": "[Sync]",
        }
    )
    (outcome,) = send_test_emails(reg)
    assert outcome.ok and outcome.direction == "forward" and outcome.error is None
    assert outcome.message == f"Test email sent through {conn_id} to ops@example.com, lead@example.com."
    (received,) = smtp_server.messages
    assert received.rcpt_tos == ["ops@example.com", "lead@example.com"]
    assert received.subject == "[Sync] Test notification: sync_c (forward)"
    assert received.message["From"] == FROM_EMAIL and received.message["Cc"] == "lead@example.com"


def test_connection_test_mail_names_the_connection_and_its_server(
    smtp_server: DevSmtpServer, smtp_connection: MakeConn
) -> None:
    conn_id = smtp_connection("conn_test_mail", server=smtp_server)
    outcome = send_test_email(conn_id, ["a@failnotify.test"])
    assert outcome.ok and outcome.refused == {}
    (received,) = smtp_server.messages
    msg = received.message
    assert received.subject == "failnotify test email via conn_test_mail"
    assert msg["Message-ID"].startswith("<test-") and msg["Auto-Submitted"] == "auto-generated"
    text = msg.get_body(("plain",))
    assert text is not None
    assert f"the connection conn_test_mail ({smtp_server.address}, none)" in text.get_content()


def test_a_failure_is_an_outcome_not_an_exception(smtp_connection: MakeConn) -> None:
    port = free_port()
    conn_id = smtp_connection(host="127.0.0.1", port=port)
    outcome = send_test_email(conn_id, ["a@failnotify.test"])
    assert not outcome.ok and isinstance(outcome.error, MailDeliveryError)
    assert outcome.message.startswith(f"Not sent: SMTP server 127.0.0.1:{port} refused the connection")
