"""Job failures (immediate and threshold mails): the failed task instances of each run they report.

Pure: imports nothing from Airflow, SQLAlchemy or Flask. The service reads the run's recorded task
failures when it writes the draft (:attr:`NotificationDraft.failed_tasks`); this module picks what a
mail lists per run and how each task instance reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_failnotify.core.model import FailureEvent, NotificationDraft
from airflow_failnotify.core.text import entity_label, first_line, one_line, task_url, try_label

__all__ = [
    "NO_FAILED_TASK",
    "failed_tasks_of_events",
    "failed_tasks_of_run",
    "task_context",
    "task_instance_label",
]

NO_FAILED_TASK = "no task failed (e.g. a run timeout or a manual mark)"


def task_instance_label(event: FailureEvent) -> str:
    """A failed task instance as mails name it: ``extract``, ``push[3]``, ``sync_entity[CUST-1003]``."""
    task_id = event.task_id or ""
    if event.map_index is None or event.map_index < 0:
        return one_line(task_id or entity_label(event))
    entity = event.entity or ""
    if not entity or entity == f"{task_id}[{event.map_index}]":
        return one_line(f"{task_id}[{event.map_index}]")
    return one_line(f"{task_id}[{entity}]")


def _latest_tries(events: Sequence[FailureEvent]) -> list[FailureEvent]:
    """One event per task instance (task id, map index): its latest try, in the order first seen."""
    latest: dict[tuple[str | None, int], FailureEvent] = {}
    for event in events:
        key = (event.task_id, event.map_index)
        known = latest.get(key)
        if known is None or (event.try_number or 0) > (known.try_number or 0):
            latest[key] = event
    return list(latest.values())


def task_context(event: FailureEvent, *, dag_id: str, base_url: str | None) -> dict[str, Any]:
    return {
        "label": task_instance_label(event),
        "task_id": one_line(event.task_id or ""),
        "try": try_label(event),
        "error": first_line(event.error_message) or "no error text recorded",
        "log_url": task_url(
            base_url, event.dag_id or dag_id, event.run_id, event.task_id or "", event.map_index
        ),
    }


def failed_tasks_of_events(tasks: Sequence[FailureEvent], dag_id: str, run_id: str) -> list[FailureEvent]:
    """The failed task instances listed for one run among ``tasks`` (the latest try of each)."""
    return _latest_tries([e for e in tasks if e.run_id == run_id and (e.dag_id or dag_id) == dag_id])


def failed_tasks_of_run(draft: NotificationDraft, dag_id: str, run_id: str) -> list[FailureEvent]:
    """The failed task instances a job-failure draft lists for one run (mails and Error Management alike)."""
    return failed_tasks_of_events(draft.failed_tasks, dag_id, run_id)
