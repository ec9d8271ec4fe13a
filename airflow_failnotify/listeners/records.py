"""Building :class:`~airflow_failnotify.core.capture.EventRecord` values from what Airflow hands a listener.

A task instance is a ``RuntimeTaskInstance`` in the task process (or ``airflow dags test``) and an ORM
``TaskInstance`` in the scheduler and the api-server; only attributes both have are read, each with a
default. Huge messages and tracebacks are capped, keeping both ends.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_failnotify.core.capture import EventRecord

MAX_TRACEBACK_CHARS = 1_000_000
MAX_MESSAGE_CHARS = 65_536


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


def map_index_of(task_instance: Any) -> int:
    value = getattr(task_instance, "map_index", -1)
    return -1 if value is None else int(value)


def source_of(previous_state: Any, task_instance: Any) -> str:
    if type(task_instance).__module__.startswith("airflow.sdk"):
        return "task"  # RuntimeTaskInstance: the task process (or `dags test`)
    # ORM TaskInstance: the api-server (a person set the state: previous_state None) or the scheduler.
    return "api" if previous_state is None else "scheduler"


def _is_final(state: str, try_number: Any, max_tries: Any) -> bool:
    if state in ("up_for_retry", "failed"):
        return state == "failed"
    # unknown state (should not happen): decide from the tries
    return try_number is None or max_tries is None or int(try_number) > int(max_tries)


def task_failure_record(
    previous_state: Any, task_instance: Any, error: BaseException | str | None, *, source: str | None = None
) -> EventRecord:
    from airflow_failnotify.core.capture import EventRecord
    from airflow_failnotify.core.model import EventKind

    message, trace, not_accessible = error_fields(error)
    map_index = map_index_of(task_instance)
    rendered = getattr(task_instance, "rendered_map_index", None)
    state = _state_value(getattr(task_instance, "state", None))
    try_number = getattr(task_instance, "try_number", None)
    max_tries = getattr(task_instance, "max_tries", None)
    return EventRecord(
        kind=EventKind.TASK_FAILED,
        dag_id=task_instance.dag_id,
        run_id=task_instance.run_id,
        occurred_at=as_utc(getattr(task_instance, "end_date", None)),
        source=source or source_of(previous_state, task_instance),
        task_id=task_instance.task_id,
        map_index=map_index,
        entity=entity_name(task_instance.task_id, map_index, rendered),
        try_number=None if try_number is None else int(try_number),
        max_tries=None if max_tries is None else int(max_tries),
        is_final=_is_final(state, try_number, max_tries),
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
