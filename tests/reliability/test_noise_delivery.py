"""Noise control on the delivery side, with the real store (SQLite, PostgreSQL) and the dev SMTP server:
coalesced mails, each row recording the mail that carried it, the repeat interval, and a burst."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow_failnotify.core.model import OutboxState
from airflow_failnotify.service.passes import run_notification_pass
from airflow_failnotify.store import Store
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
    task_failed,
)

COALESCE: dict[str, Any] = {"noise": {"coalesce": True}}
TRACE_BYTES = 24_000  # random bytes of one trace (32 KB of text)
SIZE_LIMIT = 75_000  # bytes: a mail with one trace (about 52 KB) fits, with two it does not


def test_a_failed_run_and_its_entity_failures_go_out_as_one_mail(
    store: Store, smtp_server: DevSmtpServer, smtp_connection: Callable[..., str], summary: Summary
) -> None:
    conn = smtp_connection("mail_noise", server=smtp_server, auth_type="basic")
    register(store, conn, **COALESCE)
    store.record_events(
        [task_failed("r1", "load", map_index=i) for i in range(3)] + [run_failed("r1")]
    )
    run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    counts = delivery(store, smtp_server)
    (mail,) = smtp_server.messages
    rows = all_outbox(store)
    summary.record(
        f"a failed run and its 3 entity failures, coalescing on [{store.engine.dialect.name}]",
        "one mail naming both kinds, one PDF; every row records that mail's Message-ID",
        f"{len(smtp_server.messages)} mail: {mail.subject!r}; {counts}",
        ok=counts.exactly_once and len(smtp_server.messages) == 1,
    )
    assert mail.subject == "[Sync] Job failed + 3 entity failures: sync_jira (forward)"
    assert "global_immediate" in mail.message["X-Failnotify-Kind"]
    assert "processing" in mail.message["X-Failnotify-Kind"]
    assert [p.get_filename() for p in mail.message.iter_attachments()] == ["error-trace.pdf"]
    assert {r.sent_message_id for r in rows} == {mail.message["Message-ID"]} and len(rows) == 2
    assert counts.exactly_once, counts


def test_twenty_failing_integrations_give_each_recipient_one_mail_per_integration(
    store: Store, smtp_server: DevSmtpServer, smtp_connection: Callable[..., str], summary: Summary
) -> None:
    """The burst of the issue: 20 integrations, each with a failed run and its entity failure in the
    same pass: 40 mails without coalescing, 20 with it; no failure left out."""
    conn = smtp_connection("mail_burst", server=smtp_server, auth_type="basic")
    names = [f"burst_{n:02d}" for n in range(20)]
    for name in names:
        register(store, conn, integration=name, **COALESCE)
    store.record_events(
        [e for name in names for e in (task_failed("r1", dag_id=name), run_failed("r1", dag_id=name))]
    )
    run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    counts = delivery(store, smtp_server)
    per_recipient = len([m for m in smtp_server.messages if "ops@example.com" in m.rcpt_tos])
    summary.record(
        f"20 integrations failing in one pass, coalescing on [{store.engine.dialect.name}]",
        "each recipient gets <= 20 mails (40 without); every failure in exactly one mail",
        f"{per_recipient} mails to ops@example.com for {counts.due} notifications; {counts}",
        ok=per_recipient == 20 and counts.exactly_once,
    )
    assert per_recipient == 20 and counts.due == 40 and counts.exactly_once, counts


def test_the_repeat_interval_holds_more_of_the_same_and_sends_it_together(
    store: Store, smtp_server: DevSmtpServer, smtp_connection: Callable[..., str], summary: Summary
) -> None:
    conn = smtp_connection("mail_repeat", server=smtp_server, auth_type="basic")
    register(store, conn, noise={"coalesce": True, "repeat_interval_minutes": 60})
    start = datetime.now(timezone.utc)
    store.record_events([run_failed("r1", start)])
    run_notification_pass(trigger="cli", store=store, dag_status=no_status, clock=lambda: start)
    store.record_events([run_failed("r2", start + timedelta(minutes=5))])
    store.record_events([run_failed("r3", start + timedelta(minutes=6))])
    soon = start + timedelta(minutes=10)
    held = run_notification_pass(trigger="cli", store=store, dag_status=no_status, clock=lambda: soon)
    waiting = [r for r in all_outbox(store) if r.state is OutboxState.PENDING]
    later = start + timedelta(minutes=61)
    run_notification_pass(trigger="cli", store=store, dag_status=no_status, clock=lambda: later)
    subjects = [m.subject for m in smtp_server.messages]
    counts = delivery(store, smtp_server)
    summary.record(
        f"the same failure again within the 60 min repeat interval [{store.engine.dialect.name}]",
        "held (not an attempt), then both sent in one mail when the interval ends",
        f"held {held.held}, {len(waiting)} waiting until {waiting[0].hold_until if waiting else None}; "
        f"mails {subjects}",
        ok=held.held == 2 and len(subjects) == 2 and counts.exactly_once,
    )
    assert held.held == 2 and all(r.hold_until == start + timedelta(minutes=60) for r in waiting)
    first, together = "[Sync] Job failed: sync_jira (forward)", "[Sync] 2 job failures: sync_jira (forward)"
    assert subjects == [first, together]
    assert counts.exactly_once, counts


def test_a_new_kind_in_the_episode_is_not_held(
    store: Store, smtp_server: DevSmtpServer, smtp_connection: Callable[..., str]
) -> None:
    conn = smtp_connection("mail_newkind", server=smtp_server, auth_type="basic")
    register(store, conn, noise={"coalesce": True, "repeat_interval_minutes": 60})
    start = datetime.now(timezone.utc)
    store.record_events([run_failed("r1", start)])
    run_notification_pass(trigger="cli", store=store, dag_status=no_status, clock=lambda: start)
    store.record_events([entity_failed("r2", "CUST-1", at=start + timedelta(minutes=5))])
    soon = start + timedelta(minutes=10)
    passed = run_notification_pass(trigger="cli", store=store, dag_status=no_status, clock=lambda: soon)
    assert passed.held == 0 and len(smtp_server.messages) == 2


def test_the_immediate_path_waits_the_group_wait_so_a_runs_failures_go_out_together(
    store: Store, smtp_server: DevSmtpServer, smtp_connection: Callable[..., str]
) -> None:
    conn = smtp_connection("mail_wait", server=smtp_server, auth_type="basic")
    register(store, conn, noise={"coalesce": True, "group_wait_seconds": 5})
    store.record_events([task_failed("r1", "load")])  # the task's own event comes first
    waited: list[float] = []

    def meanwhile(seconds: float) -> None:  # the run's failure arrives during the wait
        waited.append(seconds)
        store.record_events([run_failed("r1")])

    summary = run_notification_pass(trigger="immediate", store=store, dag_status=no_status, sleep=meanwhile)
    assert waited == [5.0] and summary.due == 2
    (mail,) = smtp_server.messages
    assert mail.subject == "[Sync] Job failed + 1 entity failure: sync_jira (forward)"


def test_a_scheduled_pass_does_not_wait(
    store: Store, smtp_server: DevSmtpServer, smtp_connection: Callable[..., str]
) -> None:
    conn = smtp_connection("mail_nowait", server=smtp_server, auth_type="basic")
    register(store, conn, noise={"coalesce": True, "group_wait_seconds": 5})
    store.record_events([run_failed("r1")])
    waited: list[float] = []
    run_notification_pass(trigger="schedule", store=store, dag_status=no_status, sleep=waited.append)
    assert waited == [] and len(smtp_server.messages) == 1


def test_a_combined_mail_refused_as_too_big_goes_out_as_its_parts(
    sqlite_store: Store, smtp_connection: Callable[..., str], summary: Summary, caplog: Any
) -> None:
    """Two failures held by the repeat interval make one mail with both traces in its PDF; the server's
    size limit refuses it (552), so the pass sends its notifications one by one instead: each row in
    exactly one mail, no failed attempt charged."""
    store = sqlite_store
    with DevSmtpServer(size_limit=SIZE_LIMIT) as server:
        conn = smtp_connection("mail_small_combined", server=server, auth_type="none")
        register(store, conn, noise={"coalesce": True, "repeat_interval_minutes": 60})
        start = datetime.now(timezone.utc)
        errors = ("KeyError: 'id'", "IndexError: list index out of range", "TypeError: None")  # not folded
        for n, minutes in ((1, 0), (2, 5), (3, 6)):  # the first is sent; the repeat interval holds two
            at = start + timedelta(minutes=minutes)
            trace = secrets.token_urlsafe(TRACE_BYTES)  # incompressible: the PDF is as big as the trace
            store.record_events([task_failed(f"r{n}", error=errors[n - 1], traceback=trace, at=at)])
            run_notification_pass(trigger="cli", store=store, dag_status=no_status, clock=lambda at=at: at)
        later = start + timedelta(minutes=61)
        with caplog.at_level("WARNING", logger="airflow_failnotify.core.delivery"):
            run_notification_pass(trigger="cli", store=store, dag_status=no_status, clock=lambda: later)
        counts = delivery(store, server)
        sizes = [len(m.message.as_bytes()) for m in server.messages]
    split = [r for r in caplog.records if "refused as too big; sent apart" in r.getMessage()]
    summary.record(
        "a combined mail over the server's size limit (repeat interval batch of two entity failures)",
        "refused once as a whole, then its notifications sent apart; every row in exactly one mail",
        f"{len(split)} split; mails of {sizes} bytes (limit {SIZE_LIMIT}); {counts}",
        ok=len(split) == 1 and counts.exactly_once,
    )
    assert len(split) == 1, (sizes, SIZE_LIMIT)
    assert counts.exactly_once and counts.due == 3, counts
    assert all(size <= SIZE_LIMIT for size in sizes)
    rows = all_outbox(store)
    assert [r.attempts for r in rows] == [1, 1, 1], "the refusal of the whole is no failed attempt of a part"
    assert len({r.sent_message_id for r in rows}) == 3 and not any(r.last_error for r in rows)


def test_a_pass_killed_between_the_parts_of_a_split_mail_leaves_one_duplicate_and_loses_nothing(
    store: Store, smtp_connection: Callable[..., str], summary: Summary, tmp_path: Path
) -> None:
    """The combined mail of the case above, refused as too big, goes out as its parts; the pass is killed
    -9 right after the server accepted the first part, before its "sent" mark. Both rows stay claimed
    until the lease ends; the next pass splits them again and sends both parts: the first once more
    (the mail that was on the wire: 1 duplicate, the same Message-ID), the second once."""
    with DevSmtpServer(size_limit=SIZE_LIMIT) as server:
        conn = smtp_connection("mail_small_killed", server=server, auth_type="none")
        register(store, conn, noise={"coalesce": True, "repeat_interval_minutes": 60})
        start = datetime.now(timezone.utc)
        errors = ("KeyError: 'id'", "IndexError: list index out of range", "TypeError: None")
        for n, minutes in ((1, 0), (2, 5), (3, 6)):  # the first is sent; the repeat interval holds two
            at = start + timedelta(minutes=minutes)
            trace = secrets.token_urlsafe(TRACE_BYTES)
            store.record_events([task_failed(f"r{n}", error=errors[n - 1], traceback=trace, at=at)])
            run_notification_pass(trigger="cli", store=store, dag_status=no_status, clock=lambda at=at: at)
        assert len(server.messages) == 1
        later = start + timedelta(minutes=61)
        pass_killed_after_the_first_accept(store, later, tmp_path)
        on_the_wire = len(server.messages) - 1
        left = sorted(r.state.value for r in all_outbox(store))
        after_lease = later + timedelta(seconds=61)  # past the dead pass's 60 s lease
        run_notification_pass(trigger="cli", store=store, dag_status=no_status, clock=lambda: after_lease)
        counts = delivery(store, server)
        ids = [m.message["Message-ID"] for m in server.messages]
    summary.record(
        f"kill -9 of a pass between the parts of a combined mail refused as too big "
        f"[{store.engine.dialect.name}]",
        "the next pass after the lease sends both parts; <= 1 duplicate (the part on the wire), 0 lost",
        f"parts on the wire at the kill {on_the_wire}; rows then {left}; {counts}",
        ok=counts.lost == 0 and counts.duplicates <= 1 and counts.due == counts.sent,
    )
    assert on_the_wire == 1 and left == ["sending", "sending", "sent"], (on_the_wire, left)
    assert counts.due == counts.sent == 3 and counts.lost == 0 and counts.duplicates == 1, counts
    assert len(ids) == 4 and len(set(ids)) == 3  # the duplicate is the same mail: the same Message-ID
