"""The store: one object over the package's own tables, assembled from one module per concern.

Rows become the pure core's dataclasses (core/model.py) on the way out and come from them on
the way in (store/codecs.py), so the rules and the renderers never see SQLAlchemy.
"""

from __future__ import annotations

import threading

from airflow_failnotify.store.audit import AuditStore
from airflow_failnotify.store.engine import create_store_engine
from airflow_failnotify.store.errors import ErrorStore
from airflow_failnotify.store.evaluation import EvaluationStore
from airflow_failnotify.store.events import EventStore
from airflow_failnotify.store.health import HealthStore
from airflow_failnotify.store.outbox import OutboxStore
from airflow_failnotify.store.overview import OverviewStore
from airflow_failnotify.store.registrations import RegistrationStore
from airflow_failnotify.store.silences import SilenceStore


class Store(
    RegistrationStore,
    EventStore,
    EvaluationStore,
    OutboxStore,
    ErrorStore,
    AuditStore,
    OverviewStore,
    HealthStore,
    SilenceStore,
):
    """Configuration, capture, the evaluation's unit of work, outbox, error log and passes, audit, overview,
    health reads and silences: one concern module each."""


_STORES: dict[str, Store] = {}
_STORES_LOCK = threading.Lock()


def get_store(url: str | None = None, *, timeout: float | None = None) -> Store:
    """The process-wide store for ``url`` (default: ``[failnotify] sql_alchemy_conn``)."""
    from airflow_failnotify import settings

    resolved = url or settings.store_url()
    with _STORES_LOCK:
        store = _STORES.get(resolved)
        if store is None:
            settings.check_store_fits_executor(resolved)
            wait = settings.get_float("store_timeout") if timeout is None else timeout
            store = Store(create_store_engine(resolved, timeout=wait))
            _STORES[resolved] = store
        return store


def reset_stores() -> None:
    """Forget cached stores (tests, and a forked process that must not share connections)."""
    with _STORES_LOCK:
        for store in _STORES.values():
            store.engine.dispose()
        _STORES.clear()
