"""The scheduler's record of a failed run (listeners/reconcile.py): the run's failure and the failed task
instances it reconciles (killed hard) are one write, so no evaluation sees the one without the other.

Airflow's objects are stand-ins here (a DagRun and its failed TaskInstance as plain values); the two
functions that query Airflow for them are replaced. The store, the sink, the evaluation and the rules are
the real ones; the scheduler-side run against a real Airflow is tests/airflow/test_capture_scheduler.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_failnotify.core import rules
from airflow_failnotify.core.capture import EventRecord
from airflow_failnotify.core.config import parse_registration
from airflow_failnotify.core.model import EventKind, NotificationKind
from airflow_failnotify.listeners import reconcile, writing
from airflow_failnotify.listeners.sink import StoreSink
from airflow_failnotify.service.evaluation import evaluate
from airflow_failnotify.store import Store

NOW = datetime.now(timezone.utc)


class EvaluatingSink(StoreSink):
    """A store sink that runs an evaluation right after every write: the worst moment for one to run."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.writes: list[list[EventKind]] = []
        self.job_failures: list[tuple[str, ...]] = []  # the failed tasks each Job failed draft lists

    def record_events(self, records: Sequence[EventRecord]) -> int:
        inserted = super().record_events(records)
        self.writes.append([r.kind for r in records])
        outcome = evaluate(self.store, rules.evaluate, lambda ids: {}, now=NOW)
        self.job_failures += [
            tuple(str(e.task_id) for e in d.failed_tasks)
            for d in outcome.drafts
            if d.kind is NotificationKind.GLOBAL_IMMEDIATE
        ]
        return inserted


def test_a_failed_run_and_its_killed_task_are_one_write(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save_registration(parse_registration(
        {"integration": "sync_a", "smtp_conn_id": "mail", "recipients": "ops@example.com"}))
    killed = SimpleNamespace(dag_id="sync_a", run_id="r1", task_id="load", map_index=-1, state="failed",
                             try_number=1, max_tries=0, end_date=NOW, rendered_map_index=None)
    dag_run = SimpleNamespace(dag_id="sync_a", run_id="r1", end_date=NOW)
    sink = EvaluatingSink(store)
    monkeypatch.setattr(reconcile, "_failed_task_instances", lambda run: [killed])
    monkeypatch.setattr(reconcile, "_run_session", lambda run: None)  # no task state store to read
    monkeypatch.setattr(writing, "capture_sink", lambda: sink)

    reconcile.record_run_failure(dag_run, "task_failure")

    assert sink.writes == [[EventKind.TASK_FAILED, EventKind.RUN_FAILED]]
    assert sink.job_failures == [("load",)]  # the evaluation after the write lists the killed task
    recorded = _events(store)
    assert [(e["kind"], e["source"]) for e in recorded] == [
        ("task_failed", "reconcile"), ("run_failed", "scheduler")]
    assert reconcile.KILLED_MESSAGE in recorded[0]["error_message"]


def _events(store: Store) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from airflow_failnotify.store import tables as t

    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(select(t.event).order_by(t.event.c.id))]
