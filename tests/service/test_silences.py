"""Silences (service/silences.py) on the real store, SQLite and PostgreSQL: held, released, audited."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_failnotify.core import rules
from airflow_failnotify.core.config import parse_registration
from airflow_failnotify.core.model import EventKind, OutboxState
from airflow_failnotify.service.evaluation import evaluate
from airflow_failnotify.service.silences import SilenceError, release_expired, silence, unsilence
from airflow_failnotify.store import ALL_INTEGRATIONS, Actor, EventRecord, Store

NOW = datetime.now(timezone.utc).replace(microsecond=0)
ALICE = Actor("alice", "ui")


def registered(store: Store, *names: str) -> None:
    for name in names:
        store.save_registration(
            parse_registration({"integration": name, "smtp_conn_id": "mail", "recipients": "ops@example.com"})
        )


def fail(store: Store, dag_id: str, run_id: str, at: datetime) -> None:
    store.record_events(
        [
            EventRecord(
                kind=EventKind.RUN_FAILED,
                dag_id=dag_id,
                run_id=run_id,
                occurred_at=at,
                source="scheduler",
                error_message="task_failure",
            )
        ]
    )
    evaluate(store, rules.evaluate, lambda ids: {}, now=at)


def states(store: Store, integration: str) -> list[OutboxState]:
    items, _ = store.list_outbox(integration=integration)
    return sorted(item.state for item in items)


def test_notifications_of_a_silenced_integration_are_written_silenced_and_held(store: Store) -> None:
    registered(store, "sync_a", "sync_b")
    until = NOW + timedelta(hours=1)
    silence(store, "sync_a", until, "maintenance window", ALICE, NOW)
    fail(store, "sync_a", "r1", NOW + timedelta(minutes=1))
    fail(store, "sync_b", "r1", NOW + timedelta(minutes=1))
    assert states(store, "sync_a") == [OutboxState.SILENCED]
    assert states(store, "sync_b") == [OutboxState.PENDING]
    assert store.oldest_pending_at() is not None  # sync_b's row only
    (held,) = store.held_notifications()
    assert (held.integration, held.count, held.hold_until) == ("sync_a", 1, until)
    # Not claimable: delivery takes pending rows only.
    claimed = store.claim("w", limit=10, lease_seconds=300, now=NOW + timedelta(minutes=2))
    assert {item.integration for item in claimed} == {"sync_b"}


def test_expiry_releases_the_held_rows_with_one_error_row_per_integration(store: Store) -> None:
    registered(store, "sync_a", "sync_b")
    until = NOW + timedelta(hours=1)
    silence(store, ALL_INTEGRATIONS, until, "planned outage", ALICE, NOW)
    for run in ("r1", "r2", "r3"):
        fail(store, "sync_a", run, NOW + timedelta(minutes=5))
    fail(store, "sync_b", "r1", NOW + timedelta(minutes=6))
    assert release_expired(store, until - timedelta(seconds=1)) == []  # still silenced
    released = release_expired(store, until)
    assert [(r.integration, r.count) for r in released] == [("sync_a", 3), ("sync_b", 1)]
    assert states(store, "sync_a") == [OutboxState.PENDING] * 3
    errors, total = store.list_errors(category="silence")
    assert total == 2
    reasons = sorted(e.reason for e in errors)
    assert reasons[0].startswith("silence of sync_a ended: 3 notifications held since ")
    assert reasons[0].endswith("are sent now")
    assert store.list_silences() == []  # the expired silence is gone
    assert release_expired(store, until + timedelta(minutes=1)) == []  # nothing twice
    assert store.list_errors(category="silence")[1] == 2


def test_extending_a_silence_moves_the_hold_and_an_integration_silence_outlives_the_global_one(
    store: Store,
) -> None:
    registered(store, "sync_a")
    silence(store, ALL_INTEGRATIONS, NOW + timedelta(minutes=30), "outage", ALICE, NOW)
    fail(store, "sync_a", "r1", NOW + timedelta(minutes=1))
    later = NOW + timedelta(hours=2)
    silence(store, "sync_a", later, "vendor down until tonight", ALICE, NOW + timedelta(minutes=2))
    (held,) = store.held_notifications()
    assert held.hold_until == later
    assert release_expired(store, NOW + timedelta(minutes=31)) == []  # the global one ended, its own holds
    assert [r.count for r in release_expired(store, later)] == [1]


def test_unsilence_releases_at_once_and_every_change_is_audited(store: Store) -> None:
    registered(store, "sync_a")
    silence(store, "sync_a", NOW + timedelta(hours=1), "deploy", ALICE, NOW)
    silence(store, "sync_a", NOW + timedelta(hours=3), "deploy, longer", ALICE, NOW + timedelta(minutes=1))
    fail(store, "sync_a", "r1", NOW + timedelta(minutes=2))
    released = unsilence(store, "sync_a", Actor("cli:bob", "cli"), NOW + timedelta(minutes=3))
    assert [r.count for r in released] == [1]
    assert states(store, "sync_a") == [OutboxState.PENDING]
    entries, _ = store.list_audit(integration="sync_a")
    silence_entries = [e for e in entries if e.action in ("silence", "unsilence")]
    assert [(e.actor, e.action) for e in silence_entries] == [
        ("cli:bob", "unsilence"),
        ("alice", "silence"),
        ("alice", "silence"),
    ]
    changed = {c.field: (c.before, c.after) for c in silence_entries[1].changes}
    assert changed["silence.reason"] == ("deploy", "deploy, longer")
    with pytest.raises(SilenceError, match="not silenced"):
        unsilence(store, "sync_a", ALICE, NOW + timedelta(minutes=4))


@pytest.mark.parametrize(
    ("integration", "until", "reason", "fragment"),
    [
        ("sync_a", NOW - timedelta(minutes=1), "r", "in the future"),
        ("sync_a", NOW + timedelta(days=400), "r", "366 days"),
        ("sync_a", NOW + timedelta(hours=1), "  ", "reason is required"),
        ("nope", NOW + timedelta(hours=1), "r", "not registered"),
    ],
)
def test_bad_silences_are_refused(
    sqlite_store: Store, integration: str, until: datetime, reason: str, fragment: str
) -> None:
    registered(sqlite_store, "sync_a")
    with pytest.raises(SilenceError, match=fragment):
        silence(sqlite_store, integration, until, reason, ALICE, NOW)
    assert sqlite_store.list_silences() == []


def test_the_watchdog_health_ignores_silenced_rows(store: Store) -> None:
    from airflow_failnotify.core.health import HealthStatus
    from airflow_failnotify.service.health import health_report

    registered(store, "sync_a")
    silence(store, "sync_a", NOW + timedelta(days=2), "long outage", ALICE, NOW - timedelta(days=1))
    fail(store, "sync_a", "r1", NOW - timedelta(days=1))  # held for a day: far past any pending-age bound
    assert store.oldest_pending_at() is None
    report = health_report(store, now=NOW, read_airflow=False, check_connections=False)
    (outbox,) = [c for c in report.checks if c.name == "outbox"]
    assert outbox.status is HealthStatus.OK and outbox.message.startswith("0 pending")


def test_unregister_closes_held_rows(store: Store) -> None:
    registered(store, "sync_a")
    silence(store, "sync_a", NOW + timedelta(hours=1), "deploy", ALICE, NOW)
    fail(store, "sync_a", "r1", NOW + timedelta(minutes=1))
    store.unregister("sync_a")
    assert states(store, "sync_a") == [OutboxState.CLOSED]
