"""Who is calling the ingest API: the task instance whose own task state store holds the proof.

Runs in the api-server, which has Airflow's metadata database. The caller names a task instance id and
sends its nonce; the task instance is looked up (its current try in ``task_instance``, an earlier try in
``task_instance_history``), and the proof is read from that task instance's task state store, which
only a holder of that task instance's Execution API token could have written
(:mod:`airflow_failnotify.listeners.identity`). The database's values, not the caller's, say which
DAG, run, task and try the caller is.
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_failnotify.core.capture import EventRecord
from airflow_failnotify.core.model import EventKind
from airflow_failnotify.listeners.identity import digest, proof_key

TASK_SOURCES = ("task", "entity_api")


class Refused(Exception):
    """The request does not come from, or is not about, the caller's own task instance."""

    def __init__(self, reason: str, *, dag_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.dag_id = dag_id


@dataclass(frozen=True)
class Caller:
    """The task instance (one try) that proved its identity, as Airflow's metadata database says."""

    ti_id: str
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    hostname: str

    def owns(self, record: EventRecord) -> bool:
        return (record.dag_id, record.run_id, record.task_id, record.map_index) == (
            self.dag_id,
            self.run_id,
            self.task_id,
            self.map_index,
        )


def _task_instance(session: Any, ti_id: uuid.UUID) -> Any:
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from sqlalchemy import select

    found = session.get(TaskInstance, ti_id)
    if found is not None:
        return found
    return session.scalars(
        select(TaskInstanceHistory).where(TaskInstanceHistory.task_instance_id == ti_id).limit(1)
    ).first()


def _stored_digest(session: Any, ti: Any, key: str) -> str | None:
    from airflow._shared.state import TaskScope
    from airflow.state import get_state_backend

    map_index = -1 if ti.map_index is None else int(ti.map_index)
    scope = TaskScope(dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=map_index)
    raw = get_state_backend().get(scope, key, session=session)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return None
    found = value.get("sha256") if isinstance(value, dict) else None
    return found if isinstance(found, str) else None


def identify(identity: Mapping[str, Any] | None) -> Caller:
    """The caller, or :class:`Refused` when the identity is missing, unknown or not proven."""
    from airflow.utils.session import create_session

    if not isinstance(identity, Mapping):
        raise Refused("no task identity in the request")
    nonce = identity.get("nonce")
    try:
        ti_id = uuid.UUID(str(identity.get("ti_id")))
    except ValueError:
        raise Refused("the task instance id is not a UUID") from None
    if not isinstance(nonce, str) or not 20 <= len(nonce) <= 200:
        raise Refused("no valid proof in the request")
    with create_session(scoped=False) as session:
        ti = _task_instance(session, ti_id)
        if ti is None:
            raise Refused(f"unknown task instance {ti_id}")
        stored = _stored_digest(session, ti, proof_key(str(ti_id)))
        caller = Caller(
            ti_id=str(ti_id),
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            map_index=-1 if ti.map_index is None else int(ti.map_index),
            try_number=int(ti.try_number or 0),
            hostname=str(ti.hostname or ""),
        )
    if stored is None or not hmac.compare_digest(stored, digest(nonce)):
        raise Refused(
            f"the proof does not match the state store of task instance {ti_id} "
            f"({caller.dag_id}.{caller.task_id})",
            dag_id=caller.dag_id,
        )
    return caller


def check_events(caller: Caller, records: Sequence[EventRecord]) -> None:
    """Every event must be a task-side failure of the caller's own task instance (and try)."""
    for record in records:
        if not caller.owns(record):
            raise Refused(
                f"task instance {caller.dag_id}.{caller.task_id} ({caller.run_id}) sent an event of "
                f"{record.dag_id}.{record.task_id} ({record.run_id}, map index {record.map_index})",
                dag_id=caller.dag_id,
            )
        if record.kind not in (EventKind.TASK_FAILED, EventKind.ENTITY_FAILED):
            raise Refused(f"a task may not report {record.kind.value} events", dag_id=caller.dag_id)
        if record.source not in TASK_SOURCES:
            raise Refused(f"a task may not report events of source {record.source!r}", dag_id=caller.dag_id)
        if record.kind is EventKind.TASK_FAILED and record.try_number != caller.try_number:
            raise Refused(
                f"try {record.try_number} reported by try {caller.try_number} of "
                f"{caller.dag_id}.{caller.task_id}",
                dag_id=caller.dag_id,
            )
