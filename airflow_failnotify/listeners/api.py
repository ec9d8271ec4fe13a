"""``record_entity_failure()``: report one failed entity from inside a task without failing the task.

Exported lazily as ``airflow_failnotify.record_entity_failure``. It finds the DAG, run, task and map
index from the running task's context (the Task SDK's ``get_current_context()``), and records through
the same bounded, spooling path and capture sink as the listener
(:mod:`airflow_failnotify.listeners.writing`).
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_failnotify.core.capture import EventRecord
from airflow_failnotify.core.model import Direction, EventKind
from airflow_failnotify.listeners import writing
from airflow_failnotify.listeners.capture import NOTIFICATION_DAG_ID
from airflow_failnotify.listeners.records import error_fields, now

log = logging.getLogger(__name__)

MAX_ENTITY_ID_CHARS = 500  # the events table's entity column

__all__ = ["record_entity_failure"]


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number (int), got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be 0 or more, got {value}")
    return value


def _direction(value: Direction | str | None) -> Direction | None:
    if value is None or isinstance(value, Direction):
        return value
    try:
        return Direction(str(value).strip().lower())
    except ValueError:
        choices = ", ".join(repr(d.value) for d in Direction)
        raise ValueError(f"direction must be one of {choices} or None, got {value!r}") from None


def _running_task_instance() -> Any:
    try:
        from airflow.sdk import get_current_context

        context = get_current_context()
        return context["ti"]
    except Exception as err:
        raise RuntimeError(
            "record_entity_failure() must be called inside a running Airflow task (it reads the DAG, "
            "run and task from the task's context); no task context was found"
        ) from err


def record_entity_failure(
    entity_id: str,
    error: BaseException | str,
    *,
    retry_count: int,
    max_retries: int,
    direction: Direction | str | None = None,
) -> bool:
    """Record that ``entity_id`` failed inside the running task (a processing failure).

    :param entity_id: what failed, e.g. a record or project id (1 to 500 characters).
    :param error: the exception (classified: ``EntityNotAccessible``, ``PermissionError`` and HTTP
        401/403/404 anywhere in its chain are "not accessible"), or a message (never "not accessible").
    :param retry_count: retries already made for this entity (0 on the first attempt).
    :param max_retries: how many retries it gets; the failure is final when
        ``retry_count >= max_retries`` (so ``max_retries=0`` makes the first failure final).
    :param direction: ``"forward"``/``"backward"`` to assert which direction of the integration the
        running DAG is; None (default) takes it from the registration.
    :return: True when recorded (or, with the store unreachable, spooled for a later replay); False
        when the running DAG is not a registered integration.
    :raises ValueError: bad arguments, or ``direction`` does not match the running DAG's direction.
    :raises RuntimeError: called outside a running task.

    It never raises because of the store: a store that is down, locked or not migrated makes it
    spool the report (and log one warning), within a small time bound.
    """
    if not isinstance(entity_id, str) or not entity_id.strip():
        raise ValueError(f"entity_id must be a non-empty string, got {entity_id!r}")
    if len(entity_id) > MAX_ENTITY_ID_CHARS:
        raise ValueError(f"entity_id must be at most {MAX_ENTITY_ID_CHARS} characters, got {len(entity_id)}")
    if not isinstance(error, (BaseException, str)):
        raise ValueError(f"error must be an exception or a string, got {type(error).__name__}")
    retries = _count("retry_count", retry_count)
    maximum = _count("max_retries", max_retries)
    wanted = _direction(direction)

    ti = _running_task_instance()
    dag_id: str = ti.dag_id
    if dag_id == NOTIFICATION_DAG_ID:
        return False
    writing.bind_task(ti)

    answered, found = writing.lookup(dag_id)
    if answered:
        if found is None:
            log.debug("failnotify: %s is not a registered integration; entity failure not recorded", dag_id)
            return False
        if wanted is not None and found[1] is not wanted:
            raise ValueError(
                f"direction={wanted.value!r} does not match the running DAG {dag_id!r}, which is the "
                f"{found[1].value} direction of integration {found[0]!r}"
            )

    message, trace, not_accessible = error_fields(error)
    map_index = getattr(ti, "map_index", -1)
    record = EventRecord(
        kind=EventKind.ENTITY_FAILED,
        dag_id=dag_id,
        run_id=ti.run_id,
        occurred_at=now(),
        source="entity_api",
        task_id=ti.task_id,
        map_index=-1 if map_index is None else int(map_index),
        entity=entity_id,
        try_number=retries,
        max_tries=maximum,
        is_final=retries >= maximum,
        not_accessible=not_accessible,
        error_message=message,
        traceback=trace,
    )
    ok, recorded = writing.write(lambda sink: sink.record_events([record]), lambda: [record])
    # Spooled (ok False) counts as accepted: the replay records it if the DAG is registered.
    return bool(recorded is not None) if ok else True
