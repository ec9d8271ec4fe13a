"""FailnotifySmtpNotifier through a real SMTP server, rendered with a real DAG's template environment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_failnotify.exceptions import MailDeliveryError
from airflow_failnotify.notifications.smtp import FailnotifySmtpNotifier
from devtools.smtp_server import DevSmtpServer
from tests.fixtures.mail import DEFAULT_TO, FROM_EMAIL, pdf_bytes


def failure_context() -> dict[str, Any]:
    from airflow.sdk import DAG

    dag = DAG("sync_customers", schedule=None, start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))
    ti = SimpleNamespace(task_id="load", map_index=3, try_number=2)
    return {"dag": dag, "run_id": "manual__2024-01-01", "ti": ti, "exception": ValueError("bad <row> & co")}


def test_template_fields_are_a_tuple() -> None:
    assert isinstance(FailnotifySmtpNotifier.template_fields, tuple)
    assert {"to", "cc", "subject", "html_content", "failnotify_smtp_conn_id"} <= set(
        FailnotifySmtpNotifier.template_fields
    )


def test_notifier_renders_and_sends(
    smtp_server: DevSmtpServer, smtp_connection: Callable[..., str], tmp_path: Path
) -> None:
    conn_id = smtp_connection("notifier_conn", server=smtp_server, auth_type="basic")
    attachment = tmp_path / "trace.pdf"
    attachment.write_bytes(pdf_bytes())
    notifier = FailnotifySmtpNotifier(
        failnotify_smtp_conn_id="{{ 'notifier_conn' }}",
        to="{{ dag.dag_id }}@failnotify.test",
        cc=["cc@failnotify.test"],
        subject="{{ dag.dag_id }}\nfailed",
        files=[str(attachment)],
    )
    before_render = notifier.hook
    assert notifier.hook is before_render  # cached
    notifier(failure_context())
    assert notifier.hook is not before_render  # the rendered connection id's hook, cached in turn
    assert notifier.hook is notifier.hook and notifier.hook.failnotify_smtp_conn_id == "notifier_conn"
    (received,) = smtp_server.messages
    msg = received.message
    assert msg["Subject"] == "sync_customers failed"
    assert msg["To"] == "sync_customers@failnotify.test" and msg["Cc"] == "cc@failnotify.test"
    assert msg["From"] == FROM_EMAIL
    html_part = msg.get_body(("html",))
    assert html_part is not None
    html = html_part.get_content()
    assert "<b>sync_customers</b>" in html and "<b>load</b>" in html and "[3]" in html
    assert "bad &lt;row&gt; &amp; co" in html
    (pdf,) = list(msg.iter_attachments())
    assert pdf.get_content_type() == "application/pdf" and pdf.get_content() == attachment.read_bytes()
    assert conn_id == notifier.failnotify_smtp_conn_id


def test_notifier_defaults_to_connection_recipients(
    smtp_server: DevSmtpServer, smtp_connection: Callable[..., str]
) -> None:
    smtp_connection(server=smtp_server)
    context = failure_context()
    del context["ti"], context["exception"]  # a DAG-level callback
    FailnotifySmtpNotifier(failnotify_smtp_conn_id="failnotify_smtp_test")(context)
    (received,) = smtp_server.messages
    assert received.rcpt_tos == [DEFAULT_TO]
    assert received.subject == "[Airflow] sync_customers failed (manual__2024-01-01)"


def test_notifier_raises_delivery_error(
    smtp_server: DevSmtpServer, smtp_connection: Callable[..., str]
) -> None:
    smtp_server.data_error = "554 5.7.1 rejected"
    smtp_connection(server=smtp_server)
    with pytest.raises(MailDeliveryError, match=r"refused the message \(554 5.7.1 rejected\)"):
        FailnotifySmtpNotifier(failnotify_smtp_conn_id="failnotify_smtp_test")(failure_context())
