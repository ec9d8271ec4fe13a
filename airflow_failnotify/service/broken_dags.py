"""Broken DAGs of registered integrations: Airflow's import errors become events, and the pass learns
which DAGs are broken.

The watchdog (scheduler) reads Airflow's import-error records for the registered DAGs at every tick
(:func:`sync_import_errors`). A DAG's *broken episode* starts when it is first seen broken and ends when
its import error is gone; the episodes live in the store's ``setting`` table (key ``broken_dags``,
compared and set, so two schedulers agree on one start). Each episode is one ``dag_import_error``
event (idempotent by its capture key), which the rules turn into one "Broken DAG" notification through
the normal outbox. The notification task cannot read Airflow's database (the Task SDK answers 404 for a
broken DAG, like a missing one), so :func:`with_known_broken` marks the DAGs of open episodes broken for
the rules, which then send no inactivity mail for them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from airflow_failnotify.core.capture import EventRecord
from airflow_failnotify.core.model import DagPresence, DagStatus, EventKind
from airflow_failnotify.lookups.airflow_health import ImportErrorRecord
from airflow_failnotify.lookups.dags import DagStatusProvider
from airflow_failnotify.store import Store

log = logging.getLogger(__name__)

SETTING_KEY = "broken_dags"
SOURCE = "import_error"
MAX_ERROR_CHARS = 20_000


def known_broken(store: Store) -> dict[str, dict[str, Any]]:
    """Open broken episodes by DAG id: ``{"error_id": ..., "since": iso, "filename": ...}``."""
    return _decode(store.get_setting(SETTING_KEY))


def _decode(text: str | None) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _episodes(
    before: Mapping[str, dict[str, Any]], errors: Mapping[str, ImportErrorRecord], now: datetime
) -> dict[str, dict[str, Any]]:
    episodes: dict[str, dict[str, Any]] = {}
    for dag_id, error in errors.items():
        known = before.get(dag_id)
        if known is not None and known.get("error_id") == error.id:
            episodes[dag_id] = known
        else:
            episodes[dag_id] = {"error_id": error.id, "since": now.isoformat(), "filename": error.filename}
    return episodes


def sync_import_errors(
    store: Store, errors: Mapping[str, ImportErrorRecord], *, now: datetime, attempts: int = 3
) -> int:
    """Record a ``dag_import_error`` event per new broken episode; returns the events recorded."""
    for _ in range(attempts):
        raw = store.get_setting(SETTING_KEY)
        before = _decode(raw)
        episodes = _episodes(before, errors, now)
        if episodes == before:
            break
        if store.compare_and_set_setting(SETTING_KEY, raw, json.dumps(episodes, sort_keys=True), now=now):
            break
    else:
        log.warning("failnotify: the broken DAG episodes kept changing under this watchdog; next tick")
        return 0
    records = [
        EventRecord(
            kind=EventKind.DAG_IMPORT_ERROR,
            dag_id=dag_id,
            run_id=f"import-error-{episode['since']}",
            occurred_at=datetime.fromisoformat(episode["since"]),
            source=SOURCE,
            entity=errors[dag_id].filename or None,
            error_message=errors[dag_id].stacktrace[:MAX_ERROR_CHARS],
        )
        for dag_id, episode in sorted(episodes.items())
    ]
    return store.record_events(records, now=now) if records else 0


def with_known_broken(provider: DagStatusProvider, store: Store) -> DagStatusProvider:
    """``provider``, with the DAGs of open broken episodes marked broken."""

    def lookup(dag_ids: Sequence[str]) -> Mapping[str, DagStatus]:
        statuses = dict(provider(dag_ids))
        try:
            broken = known_broken(store)
        except Exception as err:  # the pass itself reports a store that cannot be read
            log.warning("failnotify: broken DAGs unknown (%s)", err)
            return statuses
        for dag_id in dag_ids:
            if dag_id in broken:
                statuses[dag_id] = replace(statuses.get(dag_id, DagStatus()), presence=DagPresence.BROKEN)
        return statuses

    return lookup
