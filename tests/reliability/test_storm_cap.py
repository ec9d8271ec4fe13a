"""The recipient-level storm cap on the delivery side, with the real store (SQLite, PostgreSQL) and the
dev SMTP server: at most N mails per recipient set per window, the rest in one digest when it ends;
each row counted through the mail that carried it (due, sent, received, duplicates, lost)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_failnotify.core import rules
from airflow_failnotify.core.model import OutboxState
from airflow_failnotify.core.storm import StormCap
from airflow_failnotify.service.evaluation import evaluate
from airflow_failnotify.service.passes import PassSummary, run_notification_pass
from airflow_failnotify.store import Store
from airflow_failnotify.store.engine import create_store_engine
from devtools.smtp_server import DevSmtpServer
from tests.fixtures.soak import Summary
from tests.reliability.helpers import (
    all_outbox,
    delivery,
    entity_failed,
    no_status,
    pass_killed_after_the_first_accept,
    register,
    run_failed,
    run_failures,
    task_failed,
)


def _cap(monkeypatch: pytest.MonkeyPatch, mails: int, minutes: int = 60) -> StormCap:
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__STORM_CAP_MAILS", str(mails))
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__STORM_CAP_WINDOW_MINUTES", str(minutes))
    return StormCap(mails=mails, window_minutes=minutes)


def _pass(store: Store, at: datetime, **kw: Any) -> PassSummary:
    return run_notification_pass(trigger="cli", store=store, dag_status=no_status, clock=lambda: at, **kw)


def _states(store: Store) -> dict[OutboxState, int]:
    counts: dict[OutboxState, int] = {}
    for row in all_outbox(store):
        counts[row.state] = counts.get(row.state, 0) + 1
    return counts


def _to(server: DevSmtpServer, address: str) -> list[str]:
    return [m.subject for m in server.messages if address in m.rcpt_tos]


def test_thirty_notifications_to_one_recipient_set_give_five_mails_and_one_digest(
    store: Store,
    smtp_server: DevSmtpServer,
    smtp_connection: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    summary: Summary,
) -> None:
    cap = _cap(monkeypatch, 5)
    conn = smtp_connection("mail_storm", server=smtp_server, auth_type="basic")
    register(store, conn)
    now = datetime.now(timezone.utc)
    _, window_end = cap.window_of(now)
    store.record_events(run_failures(30))
    first = _pass(store, now)
    held = [r for r in all_outbox(store) if r.state is OutboxState.STORM_HELD]
    during = delivery(store, smtp_server)
    assert len(smtp_server.messages) == 5 and first.sent == 5 and first.storm_held == 25
    assert len(held) == 25 and all(r.hold_until == window_end for r in held)
    reason = "held by the storm cap: 5 mail(s) to ops@example.com"
    assert all((r.last_error or "").startswith(reason) for r in held)
    assert during.pending == 0 and store.oldest_pending_at() is None  # held is not late: no watchdog alarm

    _pass(store, now + (window_end - now) / 2)  # the window is still full: nothing goes
    assert len(smtp_server.messages) == 5
    _pass(store, window_end + timedelta(minutes=1))
    counts = delivery(store, smtp_server)
    *singles, digest = smtp_server.messages
    since = min(r.created_at for r in held)
    summary.record(
        f"30 notifications to one recipient set, storm cap 5/60 min [{store.engine.dialect.name}]",
        "5 single mails, then 1 digest carrying the other 25 when the window ends; 0 lost, 0 duplicates",
        f"{len(singles)} single + digest {digest.subject!r}; {counts}",
        ok=len(singles) == 5 and counts.exactly_once and counts.received == 6,
    )
    assert digest.subject.startswith("[Sync] Storm digest: 25 notifications for ops@example.com since ")
    assert digest.subject.endswith(since.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    body = digest.message.get_body(("plain",)).get_content()
    assert body.count("Job failed: sync_jira (forward)") >= 25
    assert {r.sent_message_id for r in all_outbox(store) if r.id in {h.id for h in held}} == {
        digest.message["Message-ID"]
    }
    assert counts.due == counts.sent == 30 and counts.received == counts.mails == 6
    assert counts.duplicates == counts.lost == 0 and counts.exactly_once, counts


def test_two_recipient_sets_are_capped_independently(
    store: Store,
    smtp_server: DevSmtpServer,
    smtp_connection: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    summary: Summary,
) -> None:
    cap = _cap(monkeypatch, 2)
    conn = smtp_connection("mail_storm_two", server=smtp_server, auth_type="basic")
    register(store, conn, integration="sync_a", recipients="a-team@example.com")
    register(store, conn, integration="sync_b", recipients="b-team@example.com")
    now = datetime.now(timezone.utc)
    _, window_end = cap.window_of(now)
    store.record_events(run_failures(5, dag_id="sync_a", prefix="a"))
    store.record_events(run_failures(3, dag_id="sync_b", prefix="b"))
    _pass(store, now)
    assert len(_to(smtp_server, "a-team@example.com")) == len(_to(smtp_server, "b-team@example.com")) == 2
    _pass(store, window_end)
    counts = delivery(store, smtp_server)
    a, b = _to(smtp_server, "a-team@example.com"), _to(smtp_server, "b-team@example.com")
    summary.record(
        f"two recipient sets, storm cap 2/60 min [{store.engine.dialect.name}]",
        "each set gets 2 mails and then its own digest (5 -> 2 + digest of 3; 3 -> 2 + digest of 1)",
        f"a-team {len(a)} mails, b-team {len(b)} mails; {counts}",
        ok=len(a) == len(b) == 3 and counts.exactly_once,
    )
    assert "Storm digest: 3 notifications for a-team@example.com" in a[-1]
    assert "Storm digest: 1 notification for b-team@example.com" in b[-1]
    assert len(a) == len(b) == 3 and counts.due == 8 and counts.exactly_once, counts


def test_integrations_that_mail_the_same_people_share_the_cap_and_one_digest(
    store: Store,
    smtp_server: DevSmtpServer,
    smtp_connection: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A team's integrations through two servers; one of them writes To and Cc the other way round and
    in capitals: one recipient set. The digest names both integrations and has one PDF."""
    cap = _cap(monkeypatch, 3)
    first = smtp_connection("mail_storm_x", server=smtp_server, auth_type="basic")
    second = smtp_connection("mail_storm_y", server=smtp_server, auth_type="basic")
    register(store, first, integration="sync_a", recipients="ops@example.com", cc="lead@example.com")
    register(store, second, integration="sync_b", recipients="LEAD@example.com", cc="Ops@example.com")
    now = datetime.now(timezone.utc)
    _, window_end = cap.window_of(now)
    store.record_events(run_failures(3, dag_id="sync_a", prefix="a"))
    store.record_events([run_failed("b1", dag_id="sync_b"), entity_failed("b2", "CUST-7", dag_id="sync_b")])
    _pass(store, now)
    assert len(smtp_server.messages) == 3
    _pass(store, window_end)
    counts = delivery(store, smtp_server)
    digest = smtp_server.messages[-1]
    who = "lead@example.com, ops@example.com"
    assert digest.subject.startswith(f"[Sync] Storm digest: 2 notifications for {who} since ")
    body = digest.message.get_body(("plain",)).get_content()
    assert "Job failed: sync_b (forward)" in body and "1 entity failure: sync_b (forward)" in body
    assert [p.get_filename() for p in digest.message.iter_attachments()] == ["error-trace.pdf"]
    assert len(smtp_server.messages) == 4 and counts.exactly_once, counts


def test_the_count_holds_across_passes_and_processes(
    store: Store,
    store_url: str,
    smtp_server: DevSmtpServer,
    smtp_connection: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second pass runs on a store of its own (another process, another scheduler): it counts the
    mails the first one sent from the outbox's sent rows."""
    cap = _cap(monkeypatch, 5)
    conn = smtp_connection("mail_storm_passes", server=smtp_server, auth_type="basic")
    register(store, conn)
    now = datetime.now(timezone.utc)
    _, window_end = cap.window_of(now)
    store.record_events(run_failures(3, prefix="first"))
    _pass(store, now)
    other = Store(create_store_engine(store_url, timeout=5))
    try:
        other.record_events(run_failures(4, prefix="second"))
        later = _pass(other, now + (window_end - now) / 2)
    finally:
        other.engine.dispose()
    assert later.sent == 2 and later.storm_held == 2
    assert len(smtp_server.messages) == 5 and _states(store)[OutboxState.STORM_HELD] == 2
    _pass(store, window_end)
    counts = delivery(store, smtp_server)
    assert len(smtp_server.messages) == 6 and counts.exactly_once, counts


def test_a_coalesced_mail_counts_once_however_many_rows_it_carries(
    store: Store,
    smtp_server: DevSmtpServer,
    smtp_connection: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cap = _cap(monkeypatch, 2)
    conn = smtp_connection("mail_storm_coalesce", server=smtp_server, auth_type="basic")
    register(store, conn, noise={"coalesce": True, "repeat_interval_minutes": 0})  # the cap alone
    now = datetime.now(timezone.utc)
    _, window_end = cap.window_of(now)
    store.record_events([task_failed("r1", "load"), run_failed("r1")])
    _pass(store, now)  # one mail, two rows
    store.record_events([run_failed("r2")])
    second = _pass(store, now + (window_end - now) / 2)
    assert second.sent == 1 and second.storm_held == 0
    counts = delivery(store, smtp_server)
    assert len(smtp_server.messages) == 2 and counts.due == 3 and counts.exactly_once, counts


def test_a_digest_whose_server_is_down_stays_one_digest_for_the_next_pass(
    store: Store,
    smtp_server: DevSmtpServer,
    smtp_connection: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cap = _cap(monkeypatch, 1)
    conn = smtp_connection("mail_storm_down", server=smtp_server, auth_type="basic")
    register(store, conn)
    now = datetime.now(timezone.utc)
    _, window_end = cap.window_of(now)
    store.record_events(run_failures(4))
    _pass(store, now)
    smtp_server.stop()
    try:
        _pass(store, window_end)
        rows = [r for r in all_outbox(store) if r.state is OutboxState.STORM_HELD]
        assert len(rows) == 3 and all(r.attempts == 1 for r in rows)  # charged once, still held together
    finally:
        smtp_server.start()
    _pass(store, window_end + timedelta(minutes=5))
    counts = delivery(store, smtp_server)
    subjects = [m.subject for m in smtp_server.messages]
    assert len(subjects) == 2 and "Storm digest: 3 notifications" in subjects[1]
    assert counts.exactly_once, counts


def test_a_digest_too_big_for_the_server_goes_out_as_its_notifications_one_by_one(
    sqlite_store: Store, smtp_connection: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two entity failures with incompressible traces: each mail fits the server's limit, their digest
    (one PDF with both traces) does not; the size fallback sends them apart, each row once."""
    store = sqlite_store
    cap = _cap(monkeypatch, 1)
    with DevSmtpServer(size_limit=75_000) as server:
        conn = smtp_connection("mail_storm_big", server=server, auth_type="none")
        register(store, conn)
        now = datetime.now(timezone.utc)
        _, window_end = cap.window_of(now)
        errors = ("KeyError: 'id'", "IndexError: list index out of range", "TypeError: None")  # not folded
        held = 0
        for n in range(3):  # one entity-failure notification per pass: the first is sent, two are held
            trace = secrets.token_urlsafe(24_000)  # incompressible: the PDF is as big as the trace
            store.record_events([task_failed(f"r{n}", error=errors[n], traceback=trace)])
            held += _pass(store, now + (window_end - now) * n / 4).storm_held
        assert len(server.messages) == 1 and held == 2
        _pass(store, window_end)
        counts = delivery(store, server)
        subjects = [m.subject for m in server.messages]
    assert len(subjects) == 3 and not any("Storm digest" in s for s in subjects)
    assert counts.due == 3 and counts.exactly_once, counts


def test_turning_the_cap_off_sends_what_it_held_at_the_next_pass(
    store: Store,
    smtp_server: DevSmtpServer,
    smtp_connection: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _cap(monkeypatch, 1)
    conn = smtp_connection("mail_storm_off", server=smtp_server, auth_type="basic")
    register(store, conn)
    now = datetime.now(timezone.utc)
    store.record_events(run_failures(3))
    _pass(store, now)
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__STORM_CAP_MAILS", "0")
    _pass(store, now)  # the same window: what was held goes now, as one digest
    counts = delivery(store, smtp_server)
    subjects = [m.subject for m in smtp_server.messages]
    assert len(subjects) == 2 and "Storm digest: 2 notifications" in subjects[1]
    assert "The storm cap held the notifications below" in smtp_server.messages[1].message.get_body(
        ("plain",)
    ).get_content()
    assert counts.exactly_once, counts


def test_send_now_is_not_held_by_the_cap_and_unregister_closes_held_rows(
    store: Store,
    smtp_server: DevSmtpServer,
    smtp_connection: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _cap(monkeypatch, 1)
    conn = smtp_connection("mail_storm_manual", server=smtp_server, auth_type="basic")
    register(store, conn)
    now = datetime.now(timezone.utc)
    store.record_events(run_failures(2))
    _pass(store, now)
    assert _states(store) == {OutboxState.SENT: 1, OutboxState.STORM_HELD: 1}
    store.record_events([run_failed("manual")])
    evaluate(store, rules.evaluate, no_status, now=now)  # due, not delivered yet
    (pending,) = [r for r in all_outbox(store) if r.state is OutboxState.PENDING]
    sent = _pass(store, now, only_ids=[pending.id], evaluate=False)
    assert sent.sent == 1 and len(smtp_server.messages) == 2
    store.unregister("sync_jira")
    assert _states(store) == {OutboxState.SENT: 2, OutboxState.CLOSED: 1}


def test_a_pass_killed_while_sending_the_digest_leaves_one_duplicate_and_loses_nothing(
    store: Store,
    smtp_server: DevSmtpServer,
    smtp_connection: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    summary: Summary,
    tmp_path: Path,
) -> None:
    """kill -9 of the pass between the server's accept of the digest and its "sent" mark: the digest's
    rows stay claimed until the lease ends; the next pass sends the digest again (the mail that was on
    the wire: at most 1 duplicate, the same Message-ID), and every held notification is sent."""
    cap = _cap(monkeypatch, 2)
    conn = smtp_connection("mail_storm", server=smtp_server, auth_type="basic")
    register(store, conn)
    now = datetime.now(timezone.utc)
    _, window_end = cap.window_of(now)
    store.record_events(run_failures(12))
    assert _pass(store, now).storm_held == 10
    at = window_end + timedelta(minutes=1)
    pass_killed_after_the_first_accept(store, at, tmp_path)
    digests = [m for m in smtp_server.messages if "Storm digest" in m.subject]
    assert len(digests) == 1  # on the wire when the pass died
    assert {r.state for r in all_outbox(store) if r.state is not OutboxState.SENT} == {OutboxState.SENDING}

    _pass(store, at + timedelta(seconds=61))  # past the dead pass's 60 s lease
    counts = delivery(store, smtp_server)
    digests = [m for m in smtp_server.messages if "Storm digest" in m.subject]
    summary.record(
        f"kill -9 of a pass between the digest's accept and its sent mark [{store.engine.dialect.name}]",
        "the next pass after the lease sends it once more; <= 1 duplicate, 0 lost",
        f"digests received {len(digests)}; {counts}",
        ok=counts.lost == 0 and counts.duplicates <= 1 and counts.due == counts.sent,
    )
    assert len(digests) == 2 and len({m.message["Message-ID"] for m in digests}) == 1
    assert counts.due == counts.sent == 12 and counts.lost == 0 and counts.duplicates == 1, counts
