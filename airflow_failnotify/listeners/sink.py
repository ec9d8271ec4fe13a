"""Where captured events go: the :class:`CaptureSink` interface, its store implementation, the factory.

The listener (:mod:`airflow_failnotify.listeners.capture`), ``record_entity_failure()`` and the spool
replay reach the package's store only through a sink obtained from :func:`capture_sink`. Today the
only sink is :class:`StoreSink` (direct SQL into the store, with the listener's short timeout); a
sink that sends events through an API (workers without store credentials) is a new class here and a
configuration choice in :func:`capture_sink`.

Errors a sink raises tell the writer (:mod:`airflow_failnotify.listeners.writing`) what to do:
``StoreNotReadyError`` (not migrated yet), ``StoreUnavailableError``, ``OSError`` or ``TimeoutError``
(or the database driver's connection and lock errors) mean an outage and the items are spooled;
anything else is a bug or bad data and is logged.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from airflow_failnotify.core.capture import EventRecord
    from airflow_failnotify.core.model import Direction
    from airflow_failnotify.store.store import Store

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

    url = settings.store_url()
    key = (os.getpid(), url)
    sink = _sinks.get(key)
    if sink is None:
        with _sinks_lock:
            sink = _sinks.get(key)
            if sink is None:
                sink = _store_sink(url)
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
