"""What the watchdog reads from the outbox: how late the mail waiting longest is (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow_failnotify.core import rules
from airflow_failnotify.core.config import parse_registration
from airflow_failnotify.core.model import EventKind
from airflow_failnotify.service.evaluation import evaluate
from airflow_failnotify.store import EventRecord, Store

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def one_pending(store: Store, written_at: datetime) -> int:
    """One pending Job failed notification of sync_a, written at ``written_at``; its outbox id."""
    store.save_registration(parse_registration(
        {"integration": "sync_a", "smtp_conn_id": "mail", "recipients": "ops@example.com"}))
    store.record_events([EventRecord(kind=EventKind.RUN_FAILED, dag_id="sync_a", run_id="r1",
                                     occurred_at=written_at, source="scheduler")], now=written_at)
    (outbox_id,) = evaluate(store, rules.evaluate, lambda ids: {}, now=written_at).outbox_ids
    return outbox_id


def hold(store: Store, outbox_id: int, until: datetime, now: datetime) -> None:
    """What the repeat interval does to a mail: claim it, then give it back held until ``until``."""
    (item,) = store.claim("pass", limit=10, lease_seconds=60, now=now, ids=[outbox_id])
    assert item.claim_token is not None
    store.release([outbox_id], item.claim_token, hold_until=until, now=now)


def test_a_mail_counts_from_when_it_was_written(store: Store) -> None:
    one_pending(store, T0)
    assert store.oldest_pending_at(now=T0 + 2 * HOUR) == T0


def test_a_mail_held_by_the_repeat_interval_is_not_late_while_held(store: Store) -> None:
    outbox_id = one_pending(store, T0)
    hold(store, outbox_id, T0 + HOUR, now=T0)
    assert store.oldest_pending_at(now=T0 + 59 * timedelta(minutes=1)) is None


def test_once_its_hold_ends_a_mail_counts_from_the_end_of_the_hold(store: Store) -> None:
    outbox_id = one_pending(store, T0)
    hold(store, outbox_id, T0 + HOUR, now=T0)
    # 90 minutes after it was written (past the default 70-minute bound), but due for 30 minutes only.
    assert store.oldest_pending_at(now=T0 + 90 * timedelta(minutes=1)) == T0 + HOUR
