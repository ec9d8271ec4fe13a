"""The Airflow listener that records failures, outcomes and activity of registered integrations.

Registered by the plugin (``listeners = [this module]``); Airflow calls the hooks below in the
task process (task instance hooks, with a ``RuntimeTaskInstance`` and the live exception), in the
scheduler (DAG run hooks, and task failures it detects itself, with an ORM ``TaskInstance`` and a
string), in the api-server (a person marking a run or task failed) and in ``airflow dags test``.

This module holds only the hooks; the work is done by its neighbours:

* :mod:`~airflow_failnotify.listeners.records` builds the events from task instances and DAG runs;
* :mod:`~airflow_failnotify.listeners.writing` writes them to the capture sink
  (:mod:`~airflow_failnotify.listeners.sink`) within a bounded time, spooling on an outage;
* :mod:`~airflow_failnotify.listeners.reconcile` records, when a run fails, the failed task
  instances no task reported (killed hard).

Rules every hook follows (STYLE.md, "Listeners"):

* exact hookspec argument names (pluggy passes them by name);
* filter early: the notification DAG and unregistered DAGs cost one cached lookup;
* never raise into Airflow: everything is caught and logged as one warning without secrets;
* never block longer than :data:`~airflow_failnotify.listeners.sink.LISTENER_TIMEOUT`: the capture
  sink waits at most that long for a connection or a lock; past it the event goes to the local spool
  (:mod:`airflow_failnotify.listeners.spool`) and the next successful write replays it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from airflow.listeners import hookimpl

from airflow_failnotify.listeners import reconcile, writing
from airflow_failnotify.listeners.records import as_utc, run_record, task_failure_record

if TYPE_CHECKING:
    from airflow_failnotify.core.capture import EventRecord

log = logging.getLogger(__name__)

NOTIFICATION_DAG_ID = "failnotify_post_failure_notification"


def _guard(name: str, body: Callable[[], None]) -> None:
    try:
        body()
    except Exception as err:
        log.warning("failnotify: the %s listener failed (ignored): %s", name, writing.describe(err))


def ignored(dag_id: str | None) -> bool:
    """No capture for a missing DAG id nor for the notification DAG itself."""
    return not dag_id or dag_id == NOTIFICATION_DAG_ID


@hookimpl
def on_task_instance_running(previous_state: Any, task_instance: Any) -> None:
    def body() -> None:
        if not ignored(task_instance.dag_id):
            writing.bind_task(task_instance)
            writing.record_activity(task_instance.dag_id, as_utc(getattr(task_instance, "start_date", None)))

    _guard("on_task_instance_running", body)


@hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    def body() -> None:
        if not ignored(task_instance.dag_id):
            writing.bind_task(task_instance)
            writing.record_activity(task_instance.dag_id, as_utc(getattr(task_instance, "end_date", None)))

    _guard("on_task_instance_success", body)


@hookimpl
def on_task_instance_failed(
    previous_state: Any, task_instance: Any, error: BaseException | str | None
) -> None:
    def body() -> None:
        if ignored(task_instance.dag_id):
            return
        writing.bind_task(task_instance)
        built: list[EventRecord] = []

        def records() -> list[EventRecord]:
            if not built:  # built once, only for a registered DAG or for the spool
                built.append(task_failure_record(previous_state, task_instance, error))
            return built

        writing.record(records, task_instance.dag_id)

    _guard("on_task_instance_failed", body)


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    def body() -> None:
        if not ignored(dag_run.dag_id):
            writing.record_activity(dag_run.dag_id, as_utc(getattr(dag_run, "start_date", None)))

    _guard("on_dag_run_running", body)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    def body() -> None:
        if not ignored(dag_run.dag_id):
            writing.record(lambda: [run_record(dag_run, failed=False, msg=msg)], dag_run.dag_id)

    _guard("on_dag_run_success", body)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    def body() -> None:
        if not ignored(dag_run.dag_id):
            reconcile.record_run_failure(dag_run, msg)

    _guard("on_dag_run_failed", body)


def iter_hooks() -> Iterable[str]:
    """Names of the hooks this module implements (used by tests)."""
    return (
        "on_task_instance_running",
        "on_task_instance_success",
        "on_task_instance_failed",
        "on_dag_run_running",
        "on_dag_run_success",
        "on_dag_run_failed",
    )
