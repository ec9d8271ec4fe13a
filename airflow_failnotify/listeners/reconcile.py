"""Scheduler-side reconciliation: a failed run records the failed task instances no task reported.

A task killed hard (SIGKILL, out of memory) may never reach the task-side hook. When a run fails, the
scheduler-side hook records the run's failed task instances that no event recorded yet (source
``reconcile``, error a plain string). There is no race with a slow task-side hook for final failures:
the supervisor reports a FAILED state to the API server only after the task process (and so its
listener) has exited, and the run can only fail after that.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow_failnotify.listeners import writing
from airflow_failnotify.listeners.records import map_index_of, run_record, task_failure_record

if TYPE_CHECKING:
    from airflow_failnotify.core.capture import EventRecord
    from airflow_failnotify.listeners.sink import CaptureSink

log = logging.getLogger(__name__)

KILLED_MESSAGE = (
    "The task instance ended failed without reporting an error to failnotify "
    "(killed hard, e.g. SIGKILL or out of memory, or its process died); see the task log."
)


def _failed_task_instances(dag_run: Any) -> list[Any]:
    """The run's failed task instances, through the DagRun's own interface (scheduler / api-server).

    The query runs in the session the DagRun belongs to, without autoflush and without a commit:
    ``get_task_instances()`` without a session would open the thread's scoped session, which in the
    scheduler is the one its loop is using, and commit and close it.
    """
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    if session is not None:
        with session.no_autoflush:
            return list(dag_run.get_task_instances(state=[TaskInstanceState.FAILED], session=session))
    from airflow.utils.session import create_session

    with create_session(scoped=False) as own:
        return list(dag_run.get_task_instances(state=[TaskInstanceState.FAILED], session=own))


def reconcile_records(dag_run: Any, recorded: set[tuple[str, int]]) -> list[EventRecord]:
    out = []
    for ti in _failed_task_instances(dag_run):
        if (ti.task_id, map_index_of(ti)) in recorded:
            continue
        out.append(task_failure_record(None, ti, KILLED_MESSAGE, source="reconcile"))
    return out


def record_run_failure(dag_run: Any, msg: str | None) -> None:
    """Record the failed run and, reconciling, its failed task instances that no event recorded."""
    dag_id = dag_run.dag_id
    run_failed = run_record(dag_run, failed=True, msg=msg)

    def action(sink: CaptureSink) -> int | None:
        if sink.lookup_dag(dag_id) is None:
            return None
        sink.record_events([run_failed])
        # Reconciliation: failed task instances of the run that no event recorded (killed hard).
        missing = reconcile_records(dag_run, sink.recorded_task_failures(dag_id, dag_run.run_id))
        return sink.record_events(missing) if missing else 0

    def spooled() -> list[EventRecord]:
        # Without the store we cannot tell which ones the tasks recorded: spool them all; the ones
        # already recorded share their capture key and are ignored when the spool is replayed.
        return [run_failed, *reconcile_records(dag_run, set())]

    ok, reconciled = writing.write(action, spooled)
    if ok and reconciled:
        log.info(
            "failnotify: recorded %d failed task instance(s) of %s %s that no task reported",
            reconciled,
            dag_id,
            dag_run.run_id,
        )
