"""Where captured events go: the :class:`CaptureSink` interface, its store implementation, the factory.

The listener (:mod:`airflow_failnotify.listeners.capture`), ``record_entity_failure()`` and the spool
replay reach the package's store only through a sink obtained from :func:`capture_sink`:

* :class:`StoreSink`: direct SQL into the store, with the listener's short timeout (schedulers,
  api-servers, triggerers, ``airflow dags test``, and task processes on ``capture_path = store``);
* :class:`ApiSink`: task processes on the api path send their own task instance's events to the
  api-server's ingest endpoint (:mod:`airflow_failnotify.api.ingest`) with the proof of identity of
  :mod:`airflow_failnotify.listeners.identity`; they need no store URL and open no store connection.

Errors a sink raises tell the writer (:mod:`airflow_failnotify.listeners.writing`) what to do:
``StoreNotReadyError`` (not migrated yet), ``StoreUnavailableError``, ``OSError`` or ``TimeoutError``
(or the database driver's connection and lock errors) mean an outage and the items are spooled;
anything else is a bug or bad data and is logged.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import requests

    from airflow_failnotify.core.capture import EventRecord
    from airflow_failnotify.core.model import Direction
    from airflow_failnotify.listeners.identity import TaskIdentity
    from airflow_failnotify.store.store import Store

log = logging.getLogger(__name__)

# Upper bound (seconds) for one store wait in a listener: connect, SQLite lock, PostgreSQL lock.
# The configured [failnotify] store_timeout applies when it is shorter.
LISTENER_TIMEOUT = 2.0


class CaptureSink(Protocol):
    """The operations failure capture needs from wherever its events are kept."""

    def check_ready(self) -> None:
        """Raise ``StoreNotReadyError`` when the sink cannot take events yet (schema not migrated)."""

    def lookup_dag(self, dag_id: str) -> tuple[str, Direction] | None:
        """(integration, direction) of a registered DAG, None for any other DAG."""

    def record_events(self, records: Sequence[EventRecord]) -> int:
        """Record events of registered DAGs (others are ignored), idempotently; the number inserted."""

    def record_activity(self, dag_id: str, at: datetime) -> bool:
        """A run or task of ``dag_id`` started or finished at ``at``; False if it is not registered."""

    def recorded_task_failures(self, dag_id: str, run_id: str) -> set[tuple[str, int]]:
        """(task_id, map_index) of the task failures already recorded for one run."""

    def close(self) -> None:
        """Release what the sink holds (connections); it is not used afterwards."""

    def spool_target(self) -> tuple[Path, dict[str, Any] | None]:
        """Where items this sink could not take are spooled, and the identity spooled with them."""


class StoreSink:
    """A :class:`CaptureSink` writing straight into the package's store (SQLite or PostgreSQL)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def check_ready(self) -> None:
        self.store.check_ready()

    def lookup_dag(self, dag_id: str) -> tuple[str, Direction] | None:
        return self.store.lookup_dag(dag_id)

    def record_events(self, records: Sequence[EventRecord]) -> int:
        return self.store.record_events(records)

    def record_activity(self, dag_id: str, at: datetime) -> bool:
        return self.store.record_activity(dag_id, at)

    def recorded_task_failures(self, dag_id: str, run_id: str) -> set[tuple[str, int]]:
        return self.store.recorded_task_failures(dag_id, run_id)

    def close(self) -> None:
        self.store.engine.dispose()

    def spool_target(self) -> tuple[Path, dict[str, Any] | None]:
        from airflow_failnotify import settings

        return settings.spool_dir(), None


INGEST_SPOOL_SUBDIR = "ingest"


class ApiSink:
    """A :class:`CaptureSink` sending one task instance's events to the api-server's ingest endpoint.

    Every request carries the task's :class:`~airflow_failnotify.listeners.identity.TaskIdentity`
    (its task instance id and nonce); the api-server accepts events of that task instance only. A
    spool replay of an earlier task (same host) is sent with that task's own identity, kept in the
    spool (:meth:`with_identity`).
    """

    def __init__(self, url: str, identity: TaskIdentity | None, *, timeout: float = LISTENER_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.identity = identity
        self.timeout = timeout
        self._session: requests.Session | None = None
        self._registered: dict[str, tuple[str, Direction] | None] = {}

    def with_identity(self, identity: TaskIdentity) -> ApiSink:
        other = ApiSink(self.url, identity, timeout=self.timeout)
        other._session = self._session
        return other

    def _post(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        import requests

        from airflow_failnotify.exceptions import CaptureUnavailableError, IngestRefusedError

        if self.identity is None:
            raise CaptureUnavailableError(
                "this task process has no capture identity (its proof could not be stored in its task "
                "state store); see the error above in this task's log"
            )
        if self._session is None:
            self._session = requests.Session()
        payload = {"identity": self.identity.to_json(), **body}
        try:
            response = self._session.post(
                f"{self.url}/v1/{route}", json=payload, timeout=(self.timeout, self.timeout)
            )
        except requests.RequestException as err:
            raise CaptureUnavailableError(
                f"ingest endpoint {self.url} unreachable: {type(err).__name__}"
            ) from err
        if response.status_code in (401, 403, 422):
            raise IngestRefusedError(f"ingest endpoint refused the request ({response.status_code}): "
                                     f"{response.text[:300]}")
        if response.status_code != 200:
            missing = response.status_code == 404
            hint = " (is airflow-failnotify installed on the api-server?)" if missing else ""
            raise CaptureUnavailableError(
                f"ingest endpoint {self.url} answered HTTP {response.status_code}{hint}"
            )
        data = response.json()
        return data if isinstance(data, dict) else {}

    def check_ready(self) -> None:
        return None

    def lookup_dag(self, dag_id: str) -> tuple[str, Direction] | None:
        from airflow_failnotify.core.model import Direction

        if dag_id in self._registered:
            return self._registered[dag_id]
        if self.identity is not None and dag_id != self.identity.dag_id:
            return None  # the api only answers for the caller's own DAG
        found = self._post("lookup", {}).get("registration")
        value = None if not found else (str(found["integration"]), Direction(found["direction"]))
        self._registered[dag_id] = value
        return value

    def record_events(self, records: Sequence[EventRecord]) -> int:
        if not records:
            return 0
        data = self._post("events", {"events": [r.to_json() for r in records]})
        return int(data.get("inserted", 0))

    def record_activity(self, dag_id: str, at: datetime) -> bool:
        return bool(self._post("activity", {"dag_id": dag_id, "at": at.isoformat()}).get("registered"))

    def recorded_task_failures(self, dag_id: str, run_id: str) -> set[tuple[str, int]]:
        raise NotImplementedError("reconciliation runs in the scheduler, on the store path")

    def dag_status(self, dag_ids: Sequence[str]) -> dict[str, Any]:
        """The api-server's status of ``dag_ids`` (notification DAG tasks only), by DAG id, as JSON."""
        found = self._post("dag-status", {"dag_ids": list(dag_ids)}).get("status")
        if not isinstance(found, dict):
            raise ValueError("the api-server's DAG status answer has no 'status' object")
        return found

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def spool_target(self) -> tuple[Path, dict[str, Any] | None]:
        from airflow_failnotify import settings

        identity = None if self.identity is None else self.identity.to_json()
        return settings.spool_dir() / INGEST_SPOOL_SUBDIR, identity


def uses_api_path() -> bool:
    """Whether this process sends its captured events to the ingest API instead of the store."""
    from airflow_failnotify import settings
    from airflow_failnotify.listeners.identity import in_task_process

    choice = settings.capture_path()
    if choice == "store" or not in_task_process():
        return False
    if choice == "api":
        return True
    # auto: a distributed executor's workers are other machines; they must not need the store.
    return settings.is_distributed_executor()


def _store_sink(url: str) -> StoreSink:
    """A store sink with the listener's shorter bound on every wait."""
    from airflow_failnotify import settings
    from airflow_failnotify.store.engine import create_store_engine
    from airflow_failnotify.store.store import Store

    settings.check_store_fits_executor(url)
    timeout = min(settings.get_float("store_timeout"), LISTENER_TIMEOUT)
    return StoreSink(Store(create_store_engine(url, timeout=max(0.1, timeout))))


_sinks: dict[tuple[int, str], CaptureSink] = {}
_sinks_lock = threading.Lock()


def capture_sink() -> CaptureSink:
    """This process's sink for failure capture (the one place that chooses the kind of sink).

    ``get_store`` caches one store per URL with the timeout of its first caller, so capture keeps its
    own engine, one per process: a forked child must not reuse its parent's connections.
    """
    from airflow_failnotify import settings
    from airflow_failnotify.listeners import identity

    api = uses_api_path()
    url = settings.ingest_url() if api else settings.store_url()
    key = (os.getpid(), url)
    sink = _sinks.get(key)
    if api and sink is not None and isinstance(sink, ApiSink) and sink.identity is not identity.current():
        sink.identity = identity.current()  # the proof was made after the sink (or for a new try)
    if sink is None:
        with _sinks_lock:
            sink = _sinks.get(key)
            if sink is None:
                sink = ApiSink(url, identity.current()) if api else _store_sink(url)
                for old in [k for k in _sinks if k[0] != key[0]]:
                    del _sinks[old]  # a parent's sink: never close it from the child
                _sinks[key] = sink
    return sink


def reset_capture_sinks() -> None:
    """Forget this process's sinks (tests that change the store URL in-process)."""
    with _sinks_lock:
        for (pid, _url), sink in list(_sinks.items()):
            if pid == os.getpid():
                sink.close()
        _sinks.clear()
