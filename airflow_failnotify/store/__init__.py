"""The package's own store: tables, engine, migrations and every query."""

from __future__ import annotations

from airflow_failnotify.store.store import (
    ErrorRow,
    EvaluationOutcome,
    EventRecord,
    ImportPlan,
    OutboxItem,
    PassRow,
    Store,
    get_store,
    message_id_for,
    reset_stores,
    utcnow,
    worker_name,
)

__all__ = [
    "ErrorRow",
    "EvaluationOutcome",
    "EventRecord",
    "ImportPlan",
    "OutboxItem",
    "PassRow",
    "Store",
    "get_store",
    "message_id_for",
    "reset_stores",
    "utcnow",
    "worker_name",
]
