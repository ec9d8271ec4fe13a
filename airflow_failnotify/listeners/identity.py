"""The task process's proof of identity for the ingest API: a secret written to its own task state store.

A task process holds no credential of its own (the Execution API token stays with the supervisor), but
every Task SDK request it makes goes through the supervisor with that token, and the Execution API's
task state store routes only accept the token's own task instance (``Security(require_auth,
scopes=["ti:self"])`` in ``api_fastapi/execution_api/routes/task_state_store.py``: the JWT ``sub`` must
equal the path's task instance id; the supervisor puts the id the task names in the path, so naming
another id is refused with 403).

So, once per task try: the task makes a random nonce, stores ``sha256(nonce)`` under
:data:`PROOF_KEY_PREFIX` ``<ti id>`` in its own task state store, and sends ``(ti id, nonce)`` with every
ingest request. The api-server reads the hash from the state store of the task instance named, which
only that task instance could have written, and accepts events of that task instance only
(:mod:`airflow_failnotify.api.verify`). The nonce never leaves the process except to the ingest API and
to the host's spool (so spooled events stay provable after the task has ended).

The proof is made in ``on_task_instance_running`` (the supervisor has just reached the Execution API),
never at import and never outside a task process.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

log = logging.getLogger(__name__)

PROOF_KEY_PREFIX = "failnotify-capture/"
UNAVAILABLE_KEY = "failnotify-capture-unavailable"
# How long a proof stays in the task state store: spooled events of that try can be replayed that long.
PROOF_RETENTION = timedelta(days=7)


def proof_key(ti_id: str) -> str:
    return f"{PROOF_KEY_PREFIX}{ti_id}"


def digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TaskIdentity:
    """Who a task process is (one try of one task instance) and the nonce that proves it."""

    ti_id: str
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    nonce: str
    host: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskIdentity:
        return cls(
            ti_id=str(data["ti_id"]),
            dag_id=str(data["dag_id"]),
            run_id=str(data["run_id"]),
            task_id=str(data["task_id"]),
            map_index=int(data["map_index"]),
            try_number=int(data["try_number"]),
            nonce=str(data["nonce"]),
            host=str(data.get("host") or ""),
        )


def in_task_process() -> bool:
    """A task process run by a Task SDK supervisor (ORM blocked), not ``airflow dags test`` nor a server."""
    if os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") != "airflow-db-not-allowed:///":
        return False
    try:
        from airflow.sdk.execution_time import task_runner
    except ImportError:  # pragma: no cover - the Task SDK ships with Airflow 3
        return False
    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


def hostname() -> str:
    try:
        from airflow.sdk.api.client import get_hostname

        typed: Callable[[], object] = get_hostname  # untyped upstream
        return str(typed())
    except Exception:
        return socket.getfqdn()


_lock = threading.Lock()
_current: dict[int, TaskIdentity] = {}


def current() -> TaskIdentity | None:
    """This process's identity, if :func:`establish` has made one."""
    return _current.get(os.getpid())


def _is_runtime_ti(task_instance: Any) -> bool:
    in_sdk = type(task_instance).__module__.startswith("airflow.sdk")
    return in_sdk and bool(getattr(task_instance, "id", None))


def _send_state(ti_id: str, key: str, value: Any, expires_at: datetime | None) -> None:
    from uuid import UUID

    from airflow.sdk.execution_time.comms import SetTaskStateStore
    from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

    # The raw message the SDK's TaskStateStoreAccessor sends, so the value lands in Airflow's own
    # state store even when a worker-side offload backend ([workers] state_store_backend) is set.
    SUPERVISOR_COMMS.send(SetTaskStateStore(ti_id=UUID(ti_id), key=key, value=value, expires_at=expires_at))


def establish(task_instance: Any) -> TaskIdentity | None:
    """Make (once per process and try) the identity of the running task instance and store its proof.

    Returns None outside a task process, or when the proof could not be stored (logged as an error).
    """
    if not _is_runtime_ti(task_instance) or not in_task_process():
        return current()
    ti_id = str(task_instance.id)
    existing = current()
    if existing is not None and existing.ti_id == ti_id:
        return existing
    with _lock:
        existing = current()
        if existing is not None and existing.ti_id == ti_id:
            return existing
        map_index = getattr(task_instance, "map_index", -1)
        identity = TaskIdentity(
            ti_id=ti_id,
            dag_id=str(task_instance.dag_id),
            run_id=str(task_instance.run_id),
            task_id=str(task_instance.task_id),
            map_index=-1 if map_index is None else int(map_index),
            try_number=int(getattr(task_instance, "try_number", 0) or 0),
            nonce=secrets.token_urlsafe(32),
            host=hostname(),
        )
        expires = datetime.now(timezone.utc) + PROOF_RETENTION
        try:
            _send_state(ti_id, proof_key(ti_id), {"sha256": digest(identity.nonce)}, expires)
        except Exception as err:
            log.error(
                "failnotify: could not store this task's capture proof in its task state store (%s: %s); "
                "its failures cannot be sent to the ingest API and only the scheduler's reconciliation "
                "will see them",
                type(err).__name__,
                str(err)[:300],
            )
            return None
        _current[os.getpid()] = identity
        return identity


def report_unavailable(identity: TaskIdentity, reason: str) -> bool:
    """Leave a note in the task's own state store that capture is unavailable on this host.

    The scheduler's reconciliation reads it (it has the metadata DB) and says "capture unavailable on
    <host>" instead of "killed hard", with an Error Management row naming the host.
    """
    note = {"host": identity.host, "reason": reason[:500], "at": datetime.now(timezone.utc).isoformat()}
    try:
        _send_state(identity.ti_id, UNAVAILABLE_KEY, note, datetime.now(timezone.utc) + PROOF_RETENTION)
    except Exception as err:
        log.warning("failnotify: could not leave the capture-unavailable note: %s", type(err).__name__)
        return False
    return True


def forget() -> None:
    """Drop this process's identity (tests)."""
    _current.pop(os.getpid(), None)
