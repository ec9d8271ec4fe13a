"""The Airflow listener that records failures, outcomes and activity of registered integrations.

Registered by the plugin (``listeners = [this module]``); Airflow calls the hooks below in the
task process (task instance hooks, with a ``RuntimeTaskInstance`` and the live exception), in the
scheduler (DAG run hooks, and task failures it detects itself, with an ORM ``TaskInstance`` and a
string), in the api-server (a person marking a run or task failed) and in ``airflow dags test``.

Rules every hook follows (STYLE.md, "Listeners"):

* exact hookspec argument names (pluggy passes them by name);
* filter early: the notification DAG and unregistered DAGs cost one cached lookup;
* never raise into Airflow: everything is caught and logged as one warning without secrets;
* never block longer than :data:`LISTENER_TIMEOUT`: the listener's store engine waits at most that
  long for a connection or a lock; past it the event goes to the local spool
  (:mod:`airflow_failnotify.listeners.spool`) and the next successful write replays it.

Reconciliation: a task killed hard may never reach the task-side hook. When a run fails, the
scheduler-side hook records the run's failed task instances that no event recorded yet (source
``reconcile``, error a plain string). There is no race with a slow task-side hook for final
failures: the supervisor reports a FAILED state to the API server only after the task process (and
so its listener) has exited, and the run can only fail after that.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.listeners import hookimpl

from airflow_failnotify.listeners import spool

if TYPE_CHECKING:
    from airflow_failnotify.core.capture import EventRecord
    from airflow_failnotify.core.model import Direction
    from airflow_failnotify.store.store import Store

log = logging.getLogger(__name__)

NOTIFICATION_DAG_ID = "failnotify_post_failure_notification"
# Upper bound (seconds) for one store wait in a listener: connect, SQLite lock, PostgreSQL lock.
# The configured [failnotify] store_timeout applies when it is shorter.
LISTENER_TIMEOUT = 2.0
MAX_TRACEBACK_CHARS = 1_000_000
MAX_MESSAGE_CHARS = 65_536
KILLED_MESSAGE = (
    "The task instance ended failed without reporting an error to failnotify "
    "(killed hard, e.g. SIGKILL or out of memory, or its process died); see the task log."
)

T = TypeVar("T")

_stores: dict[tuple[int, str], Store] = {}
_stores_lock = threading.Lock()
_warned: set[str] = set()


# ---------------------------------------------------------------------------------------------
# Store access with a bound, and the spool
# ---------------------------------------------------------------------------------------------


def listener_store() -> Store:
    """This process's store for listeners: like ``get_store()`` but with the listener's shorter bound.

    ``get_store`` caches one store per URL with the timeout of its first caller, so the listener
    keeps its own engine (per process: a forked child must not reuse its parent's connections).
    """
    from airflow_failnotify import settings
    from airflow_failnotify.store.engine import create_store_engine
    from airflow_failnotify.store.store import Store

    url = settings.store_url()
    key = (os.getpid(), url)
    store = _stores.get(key)
    if store is None:
        with _stores_lock:
            store = _stores.get(key)
            if store is None:
                settings.check_store_fits_executor(url)
                timeout = min(settings.get_float("store_timeout"), LISTENER_TIMEOUT)
                store = Store(create_store_engine(url, timeout=max(0.1, timeout)))
                for old in [k for k in _stores if k[0] != key[0]]:
                    del _stores[old]  # a parent's store: never dispose it from the child
                _stores[key] = store
    return store


def reset_listener_stores() -> None:
    """Forget this process's listener stores (tests that change the store URL in-process)."""
    with _stores_lock:
        for (pid, _url), store in list(_stores.items()):
            if pid == os.getpid():
                store.engine.dispose()
        _stores.clear()


def is_transient(err: BaseException) -> bool:
    """A store problem worth spooling for (it will go away), as opposed to a bug or bad data."""
    from sqlalchemy import exc as sa_exc

    from airflow_failnotify.exceptions import ConfigurationError, StoreNotReadyError, StoreUnavailableError

    if isinstance(
        err, (StoreUnavailableError, StoreNotReadyError, ConfigurationError, OSError, TimeoutError)
    ):
        return True
    if isinstance(
        err, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, sa_exc.DisconnectionError)
    ):
        return True
    # "no such table" comes as OperationalError on SQLite (above), ProgrammingError on PostgreSQL.
    return isinstance(err, sa_exc.ProgrammingError) and "does not exist" in str(err)


_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def describe(err: BaseException) -> str:
    """One line about a store error, without SQL parameters (event data) or a URL password."""
    orig = getattr(err, "orig", None)  # sqlalchemy.exc.DBAPIError: the driver's own message only
    base = orig if isinstance(orig, BaseException) else err
    text = f"{type(base).__name__}: {base}".splitlines()[0] if str(base) else type(base).__name__
    return _URL_PASSWORD.sub(r"\1***@", text)[:500]


def _warn(key: str, message: str, *args: Any) -> None:
    """Warn once per process and kind of problem; later ones go to debug (no log flood)."""
    if key in _warned:
        log.debug(message, *args)
        return
    _warned.add(key)
    log.warning(message, *args)


def _spool(
    items: Sequence[EventRecord | spool.SpooledActivity], reason: str, *, announce: bool = True
) -> Path | None:
    if not items:
        return None
    try:
        path = spool.spool(items)
    except Exception as err:  # the disk too: nothing more we can do without blocking Airflow
        log.warning(
            "failnotify: could not record %d item(s) (%s) nor spool them (%s); they are lost",
            len(items),
            reason,
            describe(err),
        )
        return None
    if announce:
        _warn(
            f"spooled:{reason}",
            "failnotify: store unavailable (%s); %d item(s) spooled to %s, "
            "replayed at the next successful write",
            reason,
            len(items),
            path,
        )
    return path


def _store_failed(err: BaseException, items: Sequence[EventRecord | spool.SpooledActivity]) -> None:
    from airflow_failnotify.exceptions import StoreNotReadyError

    if isinstance(err, StoreNotReadyError):
        path = _spool(items, "store not migrated", announce=False)
        _warn(
            "not-ready",
            "failnotify: %s. Failure capture spools its events (%s) until then.",
            err,
            path.parent if path else "spool not writable",
        )
    elif is_transient(err):
        _spool(items, describe(err))
    else:
        log.warning("failnotify: could not record %d item(s): %s", len(items), describe(err))


def replay_spool(store: Store, *, deadline: float | None = None) -> int:
    """Replay this machine's spool files into ``store`` (after a successful write)."""
    if not spool.has_spooled():
        return 0
    try:
        return spool.replay(
            store.record_events, store.record_activity, deadline=deadline, transient=is_transient
        )
    except Exception as err:
        log.warning("failnotify: spool replay stopped, it is retried at the next write: %s", describe(err))
        return 0


def write(
    action: Callable[[Store], T], spooled: Callable[[], Sequence[EventRecord | spool.SpooledActivity]]
) -> tuple[bool, T | None]:
    """Run ``action`` against the listener store; on a store problem spool ``spooled()`` instead.

    Returns (True, result) when the store answered, (False, None) otherwise. Never raises.
    """
    started = time.monotonic()
    try:
        store = listener_store()
        store.check_ready()
        result = action(store)
    except Exception as err:
        try:
            _store_failed(err, spooled())
        except Exception as inner:
            log.warning("failnotify: could not record an event: %s", describe(inner))
        return False, None
    try:
        replay_spool(store, deadline=started + LISTENER_TIMEOUT)
    except Exception as err:  # pragma: no cover - replay_spool catches already
        log.warning("failnotify: spool replay failed: %s", describe(err))
    return True, result


def record(records: Callable[[], Sequence[EventRecord]], dag_id: str) -> bool:
    """Record events of ``dag_id`` if it is registered (filtered first, before building them)."""

    def action(store: Store) -> bool:
        if store.lookup_dag(dag_id) is None:
            return False
        store.record_events(records())
        return True

    ok, recorded = write(action, records)
    return bool(ok and recorded)


def record_activity(dag_id: str, at: datetime | None = None) -> None:
    when = at or now()
    write(lambda store: store.record_activity(dag_id, when), lambda: [spool.SpooledActivity(dag_id, when)])


def lookup(dag_id: str) -> tuple[bool, tuple[str, Direction] | None]:
    """(store answered, (integration, direction) or None)."""
    return write(lambda store: store.lookup_dag(dag_id), lambda: [])


# ---------------------------------------------------------------------------------------------
# Building records
# ---------------------------------------------------------------------------------------------


def now() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: Any) -> datetime:
    """A plain aware UTC datetime from Airflow's (pendulum or naive-UTC) datetimes; now when missing."""
    if not isinstance(value, datetime):
        return now()
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(value.timestamp(), tz=timezone.utc)


def cap(text: str, limit: int, what: str) -> str:
    """Keep the first and last parts of a huge text, with a note of what was cut."""
    if len(text) <= limit:
        return text
    head = limit * 3 // 10
    tail = limit - head - 200
    omitted = len(text) - head - tail
    return (
        f"{text[:head]}\n\n... [failnotify: {omitted} characters of this {what} omitted, "
        f"{len(text)} in all; the first and last parts are kept] ...\n\n{text[-tail:]}"
    )


def error_fields(error: BaseException | str | None) -> tuple[str, str, bool]:
    """(message, traceback, not_accessible) of an exception or a string (never not accessible)."""
    from airflow_failnotify.core.classify import format_error, is_not_accessible

    message, trace = format_error(error)
    not_accessible = isinstance(error, BaseException) and is_not_accessible(error)
    message = cap(message, MAX_MESSAGE_CHARS, "message")
    return message, cap(trace, MAX_TRACEBACK_CHARS, "traceback"), not_accessible


def entity_name(task_id: str, map_index: int, rendered_map_index: str | None) -> str:
    if rendered_map_index:
        return str(rendered_map_index)
    return f"{task_id}[{map_index}]" if map_index >= 0 else task_id


def _state_value(state: Any) -> str:
    return str(getattr(state, "value", state) or "")


def _map_index(task_instance: Any) -> int:
    value = getattr(task_instance, "map_index", -1)
    return -1 if value is None else int(value)


def _source_of(previous_state: Any, task_instance: Any) -> str:
    if type(task_instance).__module__.startswith("airflow.sdk"):
        return "task"  # RuntimeTaskInstance: the task process (or `dags test`)
    # ORM TaskInstance: the api-server (a person set the state: previous_state None) or the scheduler.
    return "api" if previous_state is None else "scheduler"


def task_failure_record(
    previous_state: Any, task_instance: Any, error: BaseException | str | None, *, source: str | None = None
) -> EventRecord:
    from airflow_failnotify.core.capture import EventRecord
    from airflow_failnotify.core.model import EventKind

    message, trace, not_accessible = error_fields(error)
    map_index = _map_index(task_instance)
    rendered = getattr(task_instance, "rendered_map_index", None)
    state = _state_value(getattr(task_instance, "state", None))
    try_number = getattr(task_instance, "try_number", None)
    max_tries = getattr(task_instance, "max_tries", None)
    if state in ("up_for_retry", "failed"):
        is_final = state == "failed"
    else:  # unknown state (should not happen): decide from the tries
        is_final = try_number is None or max_tries is None or int(try_number) > int(max_tries)
    return EventRecord(
        kind=EventKind.TASK_FAILED,
        dag_id=task_instance.dag_id,
        run_id=task_instance.run_id,
        occurred_at=as_utc(getattr(task_instance, "end_date", None)),
        source=source or _source_of(previous_state, task_instance),
        task_id=task_instance.task_id,
        map_index=map_index,
        entity=entity_name(task_instance.task_id, map_index, rendered),
        try_number=None if try_number is None else int(try_number),
        max_tries=None if max_tries is None else int(max_tries),
        is_final=is_final,
        not_accessible=not_accessible,
        error_message=message,
        traceback=trace,
    )


def run_record(dag_run: Any, *, failed: bool, msg: str | None) -> EventRecord:
    from airflow_failnotify.core.capture import EventRecord
    from airflow_failnotify.core.model import EventKind

    manual = bool(msg and "manually set" in msg)
    return EventRecord(
        kind=EventKind.RUN_FAILED if failed else EventKind.RUN_SUCCEEDED,
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        occurred_at=as_utc(getattr(dag_run, "end_date", None)),
        source="api" if manual else "scheduler",
        error_message=cap(msg or "", MAX_MESSAGE_CHARS, "message"),
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
        if (ti.task_id, _map_index(ti)) in recorded:
            continue
        out.append(task_failure_record(None, ti, KILLED_MESSAGE, source="reconcile"))
    return out


# ---------------------------------------------------------------------------------------------
# The hooks (exact hookspec argument names)
# ---------------------------------------------------------------------------------------------


def _guard(name: str, body: Callable[[], None]) -> None:
    try:
        body()
    except Exception as err:
        log.warning("failnotify: the %s listener failed (ignored): %s", name, describe(err))


def _ignored(dag_id: str | None) -> bool:
    return not dag_id or dag_id == NOTIFICATION_DAG_ID


@hookimpl
def on_task_instance_running(previous_state: Any, task_instance: Any) -> None:
    def body() -> None:
        if not _ignored(task_instance.dag_id):
            record_activity(task_instance.dag_id, as_utc(getattr(task_instance, "start_date", None)))

    _guard("on_task_instance_running", body)


@hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    def body() -> None:
        if not _ignored(task_instance.dag_id):
            record_activity(task_instance.dag_id, as_utc(getattr(task_instance, "end_date", None)))

    _guard("on_task_instance_success", body)


@hookimpl
def on_task_instance_failed(
    previous_state: Any, task_instance: Any, error: BaseException | str | None
) -> None:
    def body() -> None:
        if _ignored(task_instance.dag_id):
            return
        built: list[EventRecord] = []

        def records() -> list[EventRecord]:
            if not built:  # built once, only for a registered DAG or for the spool
                built.append(task_failure_record(previous_state, task_instance, error))
            return built

        record(records, task_instance.dag_id)

    _guard("on_task_instance_failed", body)


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    def body() -> None:
        if not _ignored(dag_run.dag_id):
            record_activity(dag_run.dag_id, as_utc(getattr(dag_run, "start_date", None)))

    _guard("on_dag_run_running", body)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    def body() -> None:
        if not _ignored(dag_run.dag_id):
            record(lambda: [run_record(dag_run, failed=False, msg=msg)], dag_run.dag_id)

    _guard("on_dag_run_success", body)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    def body() -> None:
        dag_id = dag_run.dag_id
        if _ignored(dag_id):
            return
        run_failed = run_record(dag_run, failed=True, msg=msg)

        def action(store: Store) -> int | None:
            if store.lookup_dag(dag_id) is None:
                return None
            store.record_events([run_failed])
            # Reconciliation: failed task instances of the run that no event recorded (killed hard).
            missing = reconcile_records(dag_run, store.recorded_task_failures(dag_id, dag_run.run_id))
            return store.record_events(missing) if missing else 0

        def spooled() -> list[EventRecord]:
            # Without the store we cannot tell which ones the tasks recorded: spool them all; the ones
            # already recorded share their capture key and are ignored when the spool is replayed.
            return [run_failed, *reconcile_records(dag_run, set())]

        ok, reconciled = write(action, spooled)
        if ok and reconciled:
            log.info(
                "failnotify: recorded %d failed task instance(s) of %s %s that no task reported",
                reconciled,
                dag_id,
                dag_run.run_id,
            )

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
