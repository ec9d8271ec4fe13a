"""The package's own store: tables, engine, migrations and every query (persistence only)."""

from __future__ import annotations

from airflow_failnotify.core.capture import EventRecord
from airflow_failnotify.store.records import (
    ALL_INTEGRATIONS,
    ErrorRow,
    HeldNotifications,
    ImportPlan,
    OutboxItem,
    PassRow,
    Silence,
)
from airflow_failnotify.store.registrations import Actor
from airflow_failnotify.store.session import utcnow, worker_name
from airflow_failnotify.store.store import Store, get_store, reset_stores

__all__ = [
    "ALL_INTEGRATIONS",
    "Actor",
    "ErrorRow",
    "EventRecord",
    "HeldNotifications",
    "ImportPlan",
    "OutboxItem",
    "PassRow",
    "Silence",
    "Store",
    "get_store",
    "reset_stores",
    "utcnow",
    "worker_name",
]
