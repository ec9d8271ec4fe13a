"""The store on SQLite and on a real PostgreSQL: configuration, capture, evaluation, outbox."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from airflow_failnotify.core.config import ConfigValidationError, parse_registration
from airflow_failnotify.core.model import (
    Direction,
    DirectionState,
    EventKind,
    FailureEvent,
    NotificationDraft,
    NotificationKind,
    OutboxState,
    Registration,
)
from airflow_failnotify.exceptions import StoreNotReadyError
from airflow_failnotify.service.evaluation import evaluate
from airflow_failnotify.store import EventRecord, Store
from airflow_failnotify.store.engine import create_store_engine

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def reg(name: str = "sync_a", **overrides: object) -> Registration:
    data: dict[str, object] = {"integration": name, "smtp_conn_id": "mail", "recipients": "ops@example.com"}
    data.update(overrides)
    return parse_registration(data)


def task_failure(
    dag_id: str = "sync_a", run_id: str = "r1", task_id: str = "t", try_number: int = 1, at: datetime = T0
) -> EventRecord:
    return EventRecord(
        kind=EventKind.TASK_FAILED,
        dag_id=dag_id,
        run_id=run_id,
        occurred_at=at,
        source="task",
        task_id=task_id,
        try_number=try_number,
        max_tries=1,
        error_message="ValueError: boom",
        traceback="Traceback ...",
    )


@dataclass
class Result:
    drafts: list[NotificationDraft]
    states: dict[tuple[str, Direction], DirectionState] = field(default_factory=dict)


def one_draft_per_event(
    registrations: Sequence[Registration],
    states: Mapping[object, DirectionState],
    events: Sequence[FailureEvent],
    status: Mapping[str, object],
    now: datetime,
) -> Result:
    """A stand-in for the rules that makes the store's own guarantees visible."""
    return Result(
        [
            NotificationDraft(
                kind=NotificationKind.PROCESSING,
                integration=e.integration,
                direction=e.direction,
                dedupe_key=f"p:{e.id}",
                created_at=now,
                events=(e,),
            )
            for e in events
        ]
    )


def test_unmigrated_store_gives_the_one_clear_message(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bare = Store(create_store_engine(f"sqlite:///{tmp_path / 'x.db'}"))
    with pytest.raises(StoreNotReadyError, match="failnotify db migrate"):
        bare.list_registrations()


def test_migrate_is_idempotent(store: Store) -> None:
    assert store.migrate() == ("0005", "0005")


def test_registration_round_trip_update_keeps_registered_at(store: Store) -> None:
    first = reg(backward_integration="sync_b", same_for_backward=False, backward={"cc": "cc@example.com"})
    assert store.save_registration(first).added == ["sync_a"]
    stored = store.get_registration("sync_a")
    assert stored is not None and stored.registered_at is not None
    assert stored.settings_for(Direction.BACKWARD).cc == ("cc@example.com",)
    assert store.lookup_dag("sync_b") == ("sync_a", Direction.BACKWARD)

    plan = store.save_registration(reg(subject_prefix="[X]"))
    assert plan.updated == ["sync_a"]
    again = store.get_registration("sync_a")
    assert again is not None
    assert again.registered_at == stored.registered_at
    assert again.backward_integration is None
    assert store.lookup_dag("sync_b") is None
    assert store.save_registration(reg(subject_prefix="[X]")).unchanged == ["sync_a"]


def test_registrations_of_reads_only_the_named_integrations(store: Store) -> None:
    store.save_registrations(
        [reg("sync_a"), reg("sync_b", backward_integration="sync_b_back"), reg("sync_c")]
    )
    found = store.registrations_of({"sync_c", "sync_b", "not_registered"})
    assert [r.integration for r in found] == ["sync_b", "sync_c"]
    assert found == [r for r in store.list_registrations() if r.integration in {"sync_b", "sync_c"}]
    assert store.registrations_of([]) == []


def test_dag_conflict_with_stored_registration_writes_nothing(store: Store) -> None:
    store.save_registration(reg("sync_a", backward_integration="sync_b"))
    with pytest.raises(ConfigValidationError, match="already used by integration 'sync_a'"):
        store.save_registrations([reg("sync_c"), reg("sync_b")])
    assert [r.integration for r in store.list_registrations()] == ["sync_a"]


def test_replace_and_dry_run(store: Store) -> None:
    store.save_registrations([reg("a"), reg("b")])
    plan = store.save_registrations([reg("b", cc="x@example.com"), reg("c")], replace_all=True, dry_run=True)
    assert (plan.added, plan.updated, plan.removed) == (["c"], ["b"], ["a"])
    assert [r.integration for r in store.list_registrations()] == ["a", "b"]
    store.save_registrations([reg("b"), reg("c")], replace_all=True)
    assert [r.integration for r in store.list_registrations()] == ["b", "c"]


def test_bulk_configures_only_new_integrations(store: Store) -> None:
    store.save_registration(reg("a", backward_integration="a_back"))
    configured, skipped = store.register_new_only([reg("a"), reg("a_back"), reg("n1"), reg("n2")])
    assert configured == ["n1", "n2"]
    assert skipped == {"a": "already configured", "a_back": "already the backward DAG of a"}


def test_capture_is_idempotent_and_only_for_registered_dags(store: Store) -> None:
    store.save_registration(reg())
    assert store.record_events([task_failure(), task_failure(), task_failure(dag_id="other")]) == 1
    events, total = store.list_events()
    assert total == 1 and events[0].integration == "sync_a" and events[0].error_message == "ValueError: boom"
    assert store.recorded_task_failures("sync_a", "r1") == {("t", -1)}


def test_evaluation_writes_each_failure_once_even_when_run_twice(store: Store) -> None:
    store.save_registration(reg())
    store.record_events([task_failure(task_id="t1"), task_failure(task_id="t2")])
    first = evaluate(store, one_draft_per_event, lambda dags: {}, now=T0)
    second = evaluate(store, one_draft_per_event, lambda dags: {}, now=T0)
    assert (first.evaluated_events, len(first.outbox_ids)) == (2, 2)
    assert (second.evaluated_events, second.outbox_ids) == (0, [])
    assert store.outbox_counts()["pending"] == 2


def test_concurrent_evaluations_never_double(store: Store) -> None:
    store.save_registration(reg())
    store.record_events([task_failure(task_id=f"t{i}") for i in range(50)])
    results = []

    def run() -> None:
        results.append(evaluate(store, one_draft_per_event, lambda dags: {}, now=T0))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.evaluated_events for r in results) == 50
    assert store.outbox_counts()["pending"] == 50


def test_a_failure_appears_in_one_notification_of_a_kind(store: Store) -> None:
    store.save_registration(reg())
    store.record_events([task_failure()])

    def same_event_twice(regs, states, events, status, now):  # type: ignore[no-untyped-def]
        return Result(
            [
                NotificationDraft(
                    kind=NotificationKind.PROCESSING,
                    integration="sync_a",
                    direction=Direction.FORWARD,
                    dedupe_key=f"p:{n}",
                    created_at=now,
                    events=tuple(events),
                )
                for n in range(2)
            ]
        )

    outcome = evaluate(store, same_event_twice, lambda dags: {}, now=T0)
    assert len(outcome.outbox_ids) == 1


def test_rule_state_is_persisted_with_extra_fields(store: Store) -> None:
    store.save_registration(reg())
    state = DirectionState(
        integration="sync_a",
        direction=Direction.FORWARD,
        consecutive_failure_event_ids=(3, 4),
        notified_spell_start=T0,
        was_paused=True,
    )

    def keep(regs, states, events, status, now):  # type: ignore[no-untyped-def]
        return Result([], {("sync_a", Direction.FORWARD): state})

    evaluate(store, keep, lambda dags: {}, now=T0)
    seen: list[Mapping[object, DirectionState]] = []

    def look(regs, states, events, status, now):  # type: ignore[no-untyped-def]
        seen.append(dict(states))
        return Result([])

    store.record_events([task_failure(at=T0 + timedelta(minutes=5))])
    evaluate(store, look, lambda dags: {}, now=T0)
    loaded = seen[0][("sync_a", Direction.FORWARD)]
    assert loaded.consecutive_failure_event_ids == (3, 4)
    assert loaded.notified_spell_start == T0 and loaded.was_paused
    assert loaded.last_activity_at == T0 + timedelta(minutes=5)


def test_claim_lease_sent_failed_and_requeue(store: Store) -> None:
    store.save_registration(reg())
    store.record_events([task_failure(task_id="a"), task_failure(task_id="b")])
    evaluate(store, one_draft_per_event, lambda dags: {}, now=T0)
    claimed = store.claim("w1", limit=10, lease_seconds=60, now=T0)
    assert [c.state for c in claimed] == [OutboxState.SENDING] * 2
    assert claimed[0].draft.events[0].task_id == "a"
    assert store.claim("w2", limit=10, lease_seconds=60, now=T0) == []
    assert store.mark_sent(claimed[0].id, claimed[0].claim_token)
    assert not store.mark_sent(claimed[0].id, claimed[0].claim_token)  # never twice
    state = store.mark_attempt_failed(
        claimed[1].id, "550 refused", claim_token=claimed[1].claim_token, attempts=1, state=OutboxState.FAILED
    )
    assert state is OutboxState.FAILED
    assert store.requeue(claimed[1].id)
    assert not store.requeue(claimed[0].id)  # a sent one is never re-sent
    # A pass that died: its lease expires and another pass takes the notification.
    again = store.claim("w3", limit=10, lease_seconds=60, now=T0)
    assert [c.id for c in again] == [claimed[1].id]
    later = store.claim("w4", limit=10, lease_seconds=60, now=T0 + timedelta(minutes=2))
    assert [c.id for c in later] == [claimed[1].id]


def test_concurrent_claims_take_disjoint_sets(store: Store) -> None:
    store.save_registration(reg())
    store.record_events([task_failure(task_id=f"t{i}") for i in range(40)])
    evaluate(store, one_draft_per_event, lambda dags: {}, now=T0)
    taken: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while batch := store.claim(name, limit=3, lease_seconds=60):
            with lock:
                taken.extend(item.id for item in batch)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 40 and len(set(taken)) == 40


def test_unregister_closes_unsent_and_logs_it(store: Store) -> None:
    store.save_registration(reg())
    store.record_events([task_failure()])
    evaluate(store, one_draft_per_event, lambda dags: {}, now=T0)
    assert store.unregister("sync_a")
    assert store.outbox_counts()["closed"] == 1
    errors, _ = store.list_errors(integration="sync_a")
    assert "closed because sync_a was unregistered" in errors[0].reason
    assert not store.unregister("sync_a")


def test_settings_and_passes(store: Store) -> None:
    assert store.get_setting("schedule") is None
    store.set_setting("schedule", "*/5 * * * *")
    assert store.get_setting("schedule") == "*/5 * * * *"
    pass_id = store.start_pass("cli", now=T0)
    store.finish_pass(pass_id, {"sent": 3}, now=T0 + timedelta(seconds=1))
    last = store.last_pass()
    assert last is not None and last.summary == {"sent": 3} and last.finished_at == T0 + timedelta(seconds=1)


def test_task_record_improves_a_reconciled_plain_string_row(store: Store) -> None:
    store.save_registration(reg())
    reconciled = EventRecord(
        kind=EventKind.TASK_FAILED,
        dag_id="sync_a",
        run_id="r1",
        occurred_at=T0,
        source="reconcile",
        task_id="t",
        try_number=1,
        max_tries=1,
        error_message="task was killed",
    )
    store.record_events([reconciled])
    late = task_failure()  # the task's own record, replayed from a spool after the reconciliation
    assert store.record_events([late]) == 0
    events, total = store.list_events()
    assert (
        total == 1
        and events[0].traceback == "Traceback ..."
        and events[0].error_message == "ValueError: boom"
    )


def test_very_long_ids_are_recorded(store: Store) -> None:
    store.save_registration(reg())
    long_record = EventRecord(
        kind=EventKind.ENTITY_FAILED,
        dag_id="sync_a",
        run_id="r" * 250,
        occurred_at=T0,
        source="entity_api",
        task_id="t" * 250,
        entity="e" * 500,
        try_number=0,
    )
    assert store.record_events([long_record, long_record]) == 1


def test_a_locked_sqlite_store_raises_store_unavailable_within_the_timeout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3
    import time

    from airflow_failnotify.exceptions import StoreUnavailableError

    path = tmp_path / "locked.db"
    store = Store(create_store_engine(f"sqlite:///{path}", timeout=0.5))
    store.migrate()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="locked"):
            store.set_setting("x", "1")
        assert time.monotonic() - started < 5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.set_setting("x", "1")
    assert store.get_setting("x") == "1"
