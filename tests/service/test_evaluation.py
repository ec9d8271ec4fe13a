"""Evaluation (service/evaluation.py) on the real store: job failures carry their runs' failed tasks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow_failnotify.core import rules
from airflow_failnotify.core.config import parse_registration
from airflow_failnotify.core.model import EventKind, NotificationKind
from airflow_failnotify.service.evaluation import evaluate
from airflow_failnotify.store import EventRecord, Store

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
