"""Evaluation (service/evaluation.py) on the real store: job failures carry their runs' failed tasks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_failnotify.core import rules
from airflow_failnotify.core.config import parse_registration
from airflow_failnotify.core.model import EventKind, NotificationKind
from airflow_failnotify.service.evaluation import evaluate
from airflow_failnotify.store import EventRecord, Store
from airflow_failnotify.store.engine import create_store_engine

NOW = datetime.now(timezone.utc)


def task_failed(run_id: str, task_id: str, *, try_number: int = 1, final: bool = True, source: str = "task",
                error: str = "ValueError: bad") -> EventRecord:
    return EventRecord(kind=EventKind.TASK_FAILED, dag_id="sync_a", run_id=run_id,
                       occurred_at=NOW - timedelta(seconds=10), source=source, task_id=task_id,
                       try_number=try_number, max_tries=1, is_final=final, error_message=error)


def run_failed(run_id: str) -> EventRecord:
    return EventRecord(kind=EventKind.RUN_FAILED, dag_id="sync_a", run_id=run_id, occurred_at=NOW,
                       source="scheduler", error_message="task_failure")


def test_a_job_failure_draft_carries_the_runs_final_task_failures(store: Store) -> None:
    store.save_registration(parse_registration(
        {"integration": "sync_a", "smtp_conn_id": "mail", "recipients": "ops@example.com"}))
    store.record_events([
        task_failed("r1", "extract", try_number=1, final=False, error="first try"),
        task_failed("r1", "extract", try_number=2, error="ValueError: second try"),
        task_failed("r1", "load", source="reconcile", error="killed hard"),  # recorded by the scheduler
        task_failed("r2", "other"),  # another run
        run_failed("r1"),
    ])
    outcome = evaluate(store, rules.evaluate, lambda ids: {}, now=NOW)
    (job,) = [d for d in outcome.drafts if d.kind is NotificationKind.GLOBAL_IMMEDIATE]
    assert [(e.task_id, e.try_number, e.error_message) for e in job.failed_tasks] == [
        ("extract", 2, "ValueError: second try"), ("load", 1, "killed hard")]
    items, _ = store.list_outbox()
    (stored,) = [i for i in items if i.kind is NotificationKind.GLOBAL_IMMEDIATE]
    assert stored.draft.failed_tasks == job.failed_tasks  # kept in the payload: every send says the same


def test_a_job_failure_of_a_run_without_task_failures_lists_none(store: Store) -> None:
    store.save_registration(parse_registration(
        {"integration": "sync_a", "smtp_conn_id": "mail", "recipients": "ops@example.com"}))
    store.record_events([run_failed("r1")])
    outcome = evaluate(store, rules.evaluate, lambda ids: {}, now=NOW)
    (job,) = [d for d in outcome.drafts if d.kind is NotificationKind.GLOBAL_IMMEDIATE]
    assert job.failed_tasks == () and job.episode_key == job.dedupe_key


def test_the_audit_trail_on_this_backend(store: Store) -> None:
    from airflow_failnotify.store import Actor

    reg = parse_registration(
        {"integration": "sync_a", "smtp_conn_id": "mail", "recipients": "ops@example.com"}
    )
    store.save_registration(reg, actor=Actor("alice", "ui"))
    store.unregister("sync_a", actor=Actor("cli:bob", "cli"))
    entries, total = store.list_audit(integration="sync_a")
    assert total == 2
    assert [(e.actor, e.action) for e in entries] == [("cli:bob", "unregister"), ("alice", "register")]


@pytest.mark.postgres
def test_on_postgresql_an_evaluation_sends_as_many_statements_for_4_as_for_40_failed_runs(
    postgres_url: str,
) -> None:
    """What the drafts ask (covered events, existing keys, failed tasks) and what they write goes to the
    server in bulk: ten times the notifications, not ten times the round trips. (SQLite, in process,
    inserts the notifications one statement each: its driver returns ids only that way, in order.)"""
    from sqlalchemy import event

    store = Store(create_store_engine(postgres_url, timeout=5))
    store.migrate()
    store.save_registrations([
        parse_registration({"integration": name, "smtp_conn_id": "mail", "recipients": "ops@example.com"})
        for name in ("sync_a", "sync_b")
    ])

    def failed_runs(dag_id: str, count: int, tag: str) -> list[EventRecord]:
        return [
            record
            for i in range(count)
            for record in (
                EventRecord(kind=EventKind.TASK_FAILED, dag_id=dag_id, run_id=f"{tag}{i}", occurred_at=NOW,
                            source="task", task_id="load", try_number=1, max_tries=0, error_message="bad"),
                EventRecord(kind=EventKind.RUN_FAILED, dag_id=dag_id, run_id=f"{tag}{i}", occurred_at=NOW,
                            source="scheduler", error_message="task_failure"),
            )
        ]

    store.record_events(failed_runs("sync_a", 1, "first") + failed_runs("sync_b", 1, "first"))
    evaluate(store, rules.evaluate, lambda ids: {}, now=NOW)  # both directions have a state and a count
    statements: list[str] = []

    def count(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        statements.append(sql)

    written = []
    for dag_id, runs in (("sync_a", 4), ("sync_b", 40)):
        store.record_events(failed_runs(dag_id, runs, "next"))
        statements.clear()
        event.listen(store.engine, "before_cursor_execute", count)
        try:
            outcome = evaluate(store, rules.evaluate, lambda ids: {}, now=NOW)
        finally:
            event.remove(store.engine, "before_cursor_execute", count)
        written.append((len(outcome.outbox_ids), len(statements)))
    store.engine.dispose()
    (few, few_statements), (many, many_statements) = written
    assert (few, many) == (4 + 1, 40 + 1)  # a job failure per run and one processing mail
    assert many_statements == few_statements
