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
UNAVAILABLE_MESSAGE = (
    "capture unavailable on {host}: {reason}. The task's own report (error and traceback) waits in that "
    "host's spool; fix the worker's [failnotify] ingest_url / execution API URL; see the task log."
)


def unavailable_note(ti: Any, session: Any) -> dict[str, Any] | None:
    """The task's own note that capture was unavailable on its host (in its task state store)."""
    import json

    from airflow_failnotify.listeners.identity import UNAVAILABLE_KEY

    try:
        from airflow._shared.state import TaskScope
        from airflow.state import get_state_backend

        scope = TaskScope(dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=map_index_of(ti))
        raw = get_state_backend().get(scope, UNAVAILABLE_KEY, session=session)
        note = json.loads(raw) if raw else None
    except Exception as err:  # an Airflow without the task state store, or a broken row
        log.debug("failnotify: no capture note for %s.%s: %s", ti.dag_id, ti.task_id, err)
        return None
    return note if isinstance(note, dict) else None


def _run_session(dag_run: Any) -> Any:
    from sqlalchemy.orm import object_session

    return object_session(dag_run)


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


def _message(ti: Any, session: Any, unavailable: list[str]) -> str:
    note = unavailable_note(ti, session) if session is not None else None
    if note is None:
        return KILLED_MESSAGE
    host = str(note.get("host") or getattr(ti, "hostname", "") or "an unknown host")
    message = UNAVAILABLE_MESSAGE.format(host=host, reason=str(note.get("reason") or "unknown"))
    unavailable.append(f"{ti.dag_id}.{ti.task_id} ({ti.run_id}): {message}")
    return message


def reconcile_records(
    dag_run: Any, recorded: set[tuple[str, int]], unavailable: list[str] | None = None
) -> list[EventRecord]:
    out = []
    session = _run_session(dag_run)
    notes: list[str] = [] if unavailable is None else unavailable
    for ti in _failed_task_instances(dag_run):
        if (ti.task_id, map_index_of(ti)) in recorded:
            continue
        out.append(task_failure_record(None, ti, _message(ti, session, notes), source="reconcile"))
    return out


def record_run_failure(dag_run: Any, msg: str | None) -> None:
    """Record the failed run and, reconciling, its failed task instances that no event recorded.

    One transaction holds both: an evaluation never sees the run's failure without the task failures
    reconciled for it (its "Job failed" mail would list no failed task), and a scheduler killed while
    writing leaves both or neither.
    """
    dag_id = dag_run.dag_id
    run_failed = run_record(dag_run, failed=True, msg=msg)

    def action(sink: CaptureSink) -> int | None:
        if sink.lookup_dag(dag_id) is None:
            return None
        # Reconciliation: failed task instances of the run that no event recorded (killed hard, or
        # capture unavailable on their host: then an Error Management row names the host).
        unavailable: list[str] = []
        missing = reconcile_records(dag_run, sink.recorded_task_failures(dag_id, dag_run.run_id), unavailable)
        store = getattr(sink, "store", None)
        for reason in unavailable:
            if store is not None:
                store.log_error("capture", reason, integration=dag_id)
        # The tasks' failures before the run's, as they happened.
        sink.record_events([*missing, run_failed])
        return len(missing)

    def spooled() -> list[EventRecord]:
        # Without the store we cannot tell which ones the tasks recorded: spool them all; the ones
        # already recorded share their capture key and are ignored when the spool is replayed.
        return [*reconcile_records(dag_run, set()), run_failed]

    ok, reconciled = writing.write(action, spooled)
    if ok and reconciled:
        log.info(
            "failnotify: recorded %d failed task instance(s) of %s %s that no task reported",
            reconciled,
            dag_id,
            dag_run.run_id,
        )
