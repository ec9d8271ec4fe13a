"""A notification pass end to end: real store (SQLite and PostgreSQL), real rules, real rendering,
real SMTP server with real AUTH. Events are recorded through the store's capture API (the listener's
own tests run real Airflow)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from pypdf import PdfReader

from airflow_failnotify.core.config import parse_registration
from airflow_failnotify.core.model import EventKind, OutboxState
from airflow_failnotify.service.passes import run_notification_pass
from airflow_failnotify.store import EventRecord, Store
from devtools.smtp_server import DevSmtpServer
from tests.fixtures.waiting import wait_until
from tests.reliability.helpers import ONE_MAIL_PER_NOTIFICATION

NOW = datetime.now(timezone.utc)


def no_status(dag_ids: object) -> dict[str, object]:
    return {}


def register(store: Store, conn_id: str, **overrides: object) -> None:
    data: dict[str, object] = {
        "integration": "sync_jira",
        "smtp_conn_id": conn_id,
        "recipients": "ops@example.com, lead@example.com",
        "cc": "audit@example.com",
        "subject_prefix": "[Sync]",
        "noise": ONE_MAIL_PER_NOTIFICATION,
    }
    data.update(overrides)
    store.save_registration(parse_registration(data))


def run_failed(run_id: str, at: datetime = NOW, dag_id: str = "sync_jira") -> EventRecord:
    return EventRecord(
        kind=EventKind.RUN_FAILED,
        dag_id=dag_id,
        run_id=run_id,
        occurred_at=at,
        source="scheduler",
        error_message="task failed",
    )


def task_failed(
    run_id: str,
    task_id: str,
    *,
    map_index: int = -1,
    error: str = "ValueError: bad record",
    not_accessible: bool = False,
) -> EventRecord:
    return EventRecord(
        kind=EventKind.TASK_FAILED,
        dag_id="sync_jira",
        run_id=run_id,
        occurred_at=NOW,
        source="task",
        task_id=task_id,
        map_index=map_index,
        try_number=1,
        max_tries=1,
        is_final=True,
        not_accessible=not_accessible,
        error_message=error,
        traceback=f'Traceback (most recent call last):\n  File "sync.py", line 7\n{error}\n',
    )


@pytest.fixture
def basic_conn(smtp_server: DevSmtpServer, smtp_connection: Callable[..., str]) -> str:
    return smtp_connection("mail_basic", server=smtp_server, auth_type="basic")


def test_job_and_entity_failures_arrive_with_subject_recipients_body_and_pdf(
    store: Store, smtp_server: DevSmtpServer, basic_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__BASE_URL", "https://airflow.example.com")
    register(store, basic_conn)
    store.record_events(
        [
            task_failed("manual__1", "load_issue", map_index=3, error="ValueError: <script>bad</script>"),
            run_failed("manual__1"),
        ]
    )
    summary = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    assert (summary.due, summary.sent, summary.pending, summary.failed) == (2, 2, 0, 0)
    by_subject = {m.message["Subject"]: m for m in smtp_server.messages}
    assert set(by_subject) == {
        "[Sync] Job failed: sync_jira (forward)",
        "[Sync] 1 entity failure: sync_jira (forward)",
    }
    entity = by_subject["[Sync] 1 entity failure: sync_jira (forward)"]
    assert set(entity.rcpt_tos) == {"ops@example.com", "lead@example.com", "audit@example.com"}
    assert entity.message["Cc"] == "audit@example.com"
    assert entity.auth_identity == "robot@failnotify.test" and entity.auth_mechanism in ("PLAIN", "LOGIN")
    html = entity.message.get_body(("html",)).get_content()
    assert "&lt;script&gt;" in html and "<script>bad" not in html
    assert "https://airflow.example.com/dags/sync_jira/runs/manual__1/tasks/load_issue/mapped/3" in html
    pdfs = [p for p in entity.message.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert [p.get_filename() for p in pdfs] == ["error-trace.pdf"]
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdfs[0].get_content())).pages)
    assert 'File "sync.py", line 7' in text
    job = by_subject["[Sync] Job failed: sync_jira (forward)"]
    assert not list(job.message.iter_attachments())
    # Nothing is sent twice: the next pass finds nothing to do.
    again = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    assert (again.due, again.sent) == (0, 0) and len(smtp_server.messages) == 2


def test_smtp_down_for_two_passes_then_up_delivers_each_once(
    store: Store, smtp_server: DevSmtpServer, basic_conn: str
) -> None:
    register(store, basic_conn)
    store.record_events([run_failed(f"r{i}", NOW + timedelta(seconds=i)) for i in range(3)])
    smtp_server.stop()
    for _ in range(2):
        down = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
        assert down.sent == 0 and down.pending == 3
        assert len(down.errors) == 1 and basic_conn in str(down.errors[0]["server"])
    errors, total = store.list_errors(category="send")
    assert total == 2  # one row per server per pass, not one per message
    assert "127.0.0.1" in errors[0].reason
    items, _ = store.list_outbox(state=OutboxState.PENDING)
    # The oldest is the one charged when the server cannot be reached; the others wait untried.
    assert sorted(i.attempts for i in items) == [0, 0, 2]
    smtp_server.start()
    up = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    assert up.sent == 3 and up.pending == 0
    assert len(smtp_server.messages) == 3
    assert store.outbox_counts()["sent"] == 3


def test_recipient_refused_among_accepted_is_sent_and_logged(
    store: Store, smtp_server: DevSmtpServer, basic_conn: str
) -> None:
    register(store, basic_conn)
    smtp_server.refuse(["lead@example.com"])
    store.record_events([run_failed("r1")])
    summary = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    assert summary.sent == 1
    assert set(smtp_server.messages[0].rcpt_tos) == {"ops@example.com", "audit@example.com"}
    errors, _ = store.list_errors()
    assert "lead@example.com" in errors[0].reason


def test_every_recipient_refused_fails_after_max_attempts_and_retry_resends(
    store: Store, smtp_server: DevSmtpServer, basic_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__MAX_ATTEMPTS", "2")
    register(store, basic_conn, recipients="nobody@example.com", cc="")
    smtp_server.refuse(["nobody@example.com"])
    store.record_events([run_failed("r1"), run_failed("r2", NOW + timedelta(seconds=1))])
    first = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    assert (first.sent, first.pending, first.failed) == (0, 2, 0)  # one bad mail does not stop the other
    second = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    assert (second.failed, store.outbox_counts()["failed"]) == (2, 2)
    failed, _ = store.list_outbox(state=OutboxState.FAILED)
    assert "refused every recipient" in (failed[0].last_error or "")
    smtp_server.refuse_recipients.clear()
    assert store.requeue(failed[0].id)
    retried = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    assert retried.sent == 1 and len(smtp_server.messages) == 1


def test_unknown_connection_keeps_the_notification_pending_with_a_reason(store: Store) -> None:
    register(store, "no_such_connection")
    store.record_events([run_failed("r1")])
    summary = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    assert (summary.sent, summary.pending) == (0, 1)
    errors, _ = store.list_errors()
    assert "no_such_connection" in errors[0].reason


def test_message_id_is_stable_across_resends(
    store: Store, smtp_server: DevSmtpServer, basic_conn: str
) -> None:
    register(store, basic_conn)
    store.record_events([run_failed("r1")])
    run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    item = store.list_outbox()[0][0]
    assert smtp_server.messages[0].message["Message-ID"] == item.message_id


@pytest.mark.postgres
def test_concurrent_passes_on_postgres_never_send_twice(
    postgres_url: str, smtp_server: DevSmtpServer, basic_conn: str
) -> None:
    from airflow_failnotify.store.engine import create_store_engine

    stores = [Store(create_store_engine(postgres_url)) for _ in range(3)]
    stores[0].migrate()
    register(stores[0], basic_conn)
    stores[0].record_events([run_failed(f"r{i}", NOW + timedelta(seconds=i)) for i in range(60)])
    summaries = []

    def one_pass(store: Store) -> None:
        summaries.append(run_notification_pass(trigger="cli", store=store, dag_status=no_status))

    threads = [threading.Thread(target=one_pass, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(s.sent for s in summaries) == 60
    ids = [m.message["Message-ID"] for m in smtp_server.messages]
    assert len(ids) == 60 and len(set(ids)) == 60


PASS_SCRIPT = """
import sys
from airflow_failnotify.service.passes import run_notification_pass
from airflow_failnotify.store import Store
from airflow_failnotify.store.engine import create_store_engine
run_notification_pass(trigger="cli", store=Store(create_store_engine(sys.argv[1])), dag_status=lambda d: {})
"""


def test_kill_9_during_a_pass_loses_nothing(
    store_url: str, store: Store, smtp_server: DevSmtpServer, basic_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__LEASE_SECONDS", "10")
    register(store, basic_conn)
    store.record_events([run_failed(f"r{i:03d}", NOW + timedelta(seconds=i)) for i in range(100)])
    env = {**os.environ, "AIRFLOW__FAILNOTIFY__LEASE_SECONDS": "10"}
    proc = subprocess.Popen([sys.executable, "-c", PASS_SCRIPT, store_url], env=env)
    wait_until(
        lambda: len(smtp_server.messages) >= 20 or proc.poll() is not None,
        timeout=60,
        interval=0.005,
        message="20 mails of the pass to be killed",
    )
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    delivered_before = len(smtp_server.messages)
    assert 0 < delivered_before < 100, "the pass must be killed in the middle"
    # The killed pass's claims expire with their lease; a later pass sends the rest.
    later = datetime.now(timezone.utc) + timedelta(seconds=11)
    run_notification_pass(trigger="cli", store=store, dag_status=no_status, clock=lambda: later)
    ids = [m.message["Message-ID"] for m in smtp_server.messages]
    assert len(set(ids)) == 100, "every notification delivered"
    assert len(ids) - len(set(ids)) <= 1, "at most the one message on the wire is sent twice"
    assert store.outbox_counts()["sent"] == 100


def test_failnotify_run_json(
    store_url: str, store: Store, smtp_server: DevSmtpServer, basic_conn: str
) -> None:
    register(store, basic_conn)
    store.record_events([run_failed("r1")])
    env = {**os.environ, "AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN": store_url}
    out = subprocess.run(
        [sys.executable, "-m", "airflow_failnotify", "run", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert {"evaluated_events", "due", "sent", "pending", "failed", "errors"} <= set(summary)
    assert (summary["due"], summary["sent"]) == (1, 1)


def test_failnotify_run_exits_2_on_an_unmigrated_store(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'empty.db'}"}
    out = subprocess.run(
        [sys.executable, "-m", "airflow_failnotify", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "failnotify db migrate" in out.stderr and "Traceback" not in out.stderr
