"""Gathers the health facts (store, Airflow's database, local files) and evaluates them: one report for
the CLI, the JSON endpoint, the views' banner, the metrics and the watchdog.

Runs in processes that may read Airflow's database (scheduler, api-server, CLI), never in a task. Every
source that fails becomes "unknown" in the report rather than an exception.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow_failnotify import settings
from airflow_failnotify.core.health import (
    HealthFacts,
    HealthReport,
    NotificationDagFacts,
    RegistrationFlag,
    RegistrationProblem,
    ScheduleFacts,
    Thresholds,
    evaluate_health,
)
from airflow_failnotify.core.model import DagPresence, Registration
from airflow_failnotify.exceptions import FailnotifyError, StoreNotReadyError
from airflow_failnotify.service.schedule import effective_schedule, interval_of

log = logging.getLogger(__name__)

WATCHDOG_FOLDER = "watchdog"
STORE_DOWN_FILE = "store-down.json"


def watchdog_dir() -> Path:
    return settings.spool_dir() / WATCHDOG_FOLDER


def thresholds(interval: timedelta) -> Thresholds:
    """The [failnotify] watchdog_* options, defaults from the schedule's interval (issue 14)."""

    def seconds(key: str) -> timedelta | None:
        value = settings.get_optional_float(key)
        return None if value is None else timedelta(seconds=value)

    return Thresholds.for_interval(
        interval,
        pass_late_after=seconds("watchdog_pass_late_after"),
        store_down_after=seconds("watchdog_store_down_after") or timedelta(minutes=5),
        pending_late_after=seconds("watchdog_pending_late_after"),
        failing_runs=settings.get_int("watchdog_failing_runs"),
    )


# --- host-local facts --------------------------------------------------------------------------


def _store_unreachable_since(reachable: bool, now: datetime) -> datetime | None:
    """The first moment a process of this host saw the store unreachable in the current outage."""
    path = watchdog_dir() / STORE_DOWN_FILE
    if reachable:
        path.unlink(missing_ok=True)
        return None
    try:
        since = datetime.fromisoformat(json.loads(path.read_text(encoding="utf-8"))["since"])
        return since
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"since": now.isoformat()}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        log.warning("failnotify: cannot record the store outage in %s: %s", path, err)
    return now


def spool_size(directory: Path | None = None) -> tuple[int, int]:
    """(files, records) waiting in the capture spool (its own files only, not the outage reports)."""
    folder = directory or settings.spool_dir()
    files = records = 0
    try:
        candidates = [p for p in folder.iterdir() if p.is_file() and p.name.startswith("spool-")]
    except OSError:
        return 0, 0
    for path in candidates:
        if not path.name.endswith((".jsonl", ".replaying")):
            continue
        files += 1
        try:
            with path.open("rb") as handle:
                records += sum(1 for line in handle if line.strip())
        except OSError:
            continue
    return files, records


def outage_reports() -> int:
    from airflow_failnotify.service.store_errors import outages_file

    try:
        with outages_file().open("rb") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return 0


# --- registrations -------------------------------------------------------------------------------


def registration_flags(
    registrations: Iterable[Registration],
    presence: dict[str, DagPresence] | None,
    connection_exists: Callable[[str], bool] | None,
) -> tuple[RegistrationFlag, ...]:
    """Registrations whose DAG is missing or broken, or whose connection does not resolve."""
    flags: list[RegistrationFlag] = []
    resolved: dict[str, bool] = {}
    for reg in registrations:
        for direction in reg.directions():
            dag_id = reg.dag_id_for(direction)
            state = None if presence is None else presence.get(dag_id, DagPresence.MISSING)
            if state is DagPresence.MISSING:
                flags.append(
                    RegistrationFlag(
                        reg.integration, direction.value, dag_id, RegistrationProblem.DAG_MISSING
                    )
                )
            elif state is DagPresence.BROKEN:
                flags.append(
                    RegistrationFlag(reg.integration, direction.value, dag_id, RegistrationProblem.DAG_BROKEN)
                )
            conn_id = reg.settings_for(direction).smtp_conn_id
            if connection_exists is not None:
                if conn_id not in resolved:
                    resolved[conn_id] = connection_exists(conn_id)
                if not resolved[conn_id]:
                    flags.append(
                        RegistrationFlag(
                            reg.integration,
                            direction.value,
                            dag_id,
                            RegistrationProblem.CONNECTION_MISSING,
                            conn_id,
                        )
                    )
    return tuple(flags)


def _airflow_presence(dag_ids: list[str]) -> dict[str, DagPresence] | None:
    try:
        from airflow_failnotify.lookups.airflow_health import dag_presence

        return dag_presence(dag_ids)
    except Exception as err:
        log.warning("failnotify health: cannot read the DAGs from Airflow's database (%s)", err)
        return None


def _notification_dag() -> NotificationDagFacts | None:
    try:
        from airflow_failnotify.lookups.airflow_health import notification_dag_facts

        return notification_dag_facts()
    except Exception as err:
        log.warning("failnotify health: cannot read the notification DAG from Airflow's database (%s)", err)
        return None


_CONNECTIONS: dict[str, tuple[float, bool]] = {}
CONNECTION_CACHE_SECONDS = 60.0


def _connection_exists(conn_id: str) -> bool:
    from airflow_failnotify.lookups.connections import connection_exists

    return connection_exists(conn_id)


def cached_connection_exists(conn_id: str) -> bool:
    """:func:`_connection_exists`, remembered for a minute (the watchdog asks at every tick)."""
    hit = _CONNECTIONS.get(conn_id)
    if hit is not None and time.monotonic() - hit[0] < CONNECTION_CACHE_SECONDS:
        return hit[1]
    found = _connection_exists(conn_id)
    _CONNECTIONS[conn_id] = (time.monotonic(), found)
    return found


# --- the report ----------------------------------------------------------------------------------


def gather_facts(
    store: Any = None,
    *,
    now: datetime | None = None,
    read_airflow: bool = True,
    check_connections: bool = True,
    connection_exists: Callable[[str], bool] | None = None,
) -> HealthFacts:
    now = now or datetime.now(timezone.utc)
    parsed = effective_schedule()
    schedule = ScheduleFacts(parsed.cron, parsed.source, interval_of(parsed.cron, now=now), parsed.note)
    files, records = spool_size()
    values: dict[str, Any] = {
        "now": now,
        "schedule": schedule,
        "spool_files": files,
        "spool_records": records,
        "outage_reports": outage_reports(),
        "notification_dag": _notification_dag() if read_airflow else None,
    }
    registrations: list[Registration] = []
    try:
        if store is None:
            from airflow_failnotify.store import get_store

            store = get_store()
        store.check_ready()
        last = store.last_pass()
        counts = store.outbox_counts()
        registrations = store.list_registrations()
        values.update(
            last_pass_at=last.finished_at if last is not None else None,
            pending=counts.get("pending", 0) + counts.get("sending", 0),
            failed=counts.get("failed", 0),
            oldest_pending_at=store.oldest_pending_at(now=now),
            registrations=len(registrations),
        )
        values["store_unreachable_since"] = _store_unreachable_since(True, now)
    except StoreNotReadyError as err:
        text = str(err)
        if "revision" in text or "no failnotify tables" in text:  # reachable, but not migrated
            values.update(
                store_not_migrated=True, store_unreachable_since=_store_unreachable_since(True, now)
            )
        else:  # e.g. the SQLite file is gone: unreachable, for now
            values.update(store_error=text, store_unreachable_since=_store_unreachable_since(False, now))
    except FailnotifyError as err:
        values.update(store_error=str(err), store_unreachable_since=_store_unreachable_since(False, now))
    if registrations:
        dag_ids = sorted({r.dag_id_for(d) for r in registrations for d in r.directions()})
        presence = _airflow_presence(dag_ids) if read_airflow else None
        values["flags"] = registration_flags(
            registrations, presence, (connection_exists or _connection_exists) if check_connections else None
        )
    return HealthFacts(**values)


def health_report(store: Any = None, *, now: datetime | None = None, **options: Any) -> HealthReport:
    facts = gather_facts(store, now=now, **options)
    return evaluate_health(facts, thresholds(facts.schedule.interval))


_CACHE: dict[str, tuple[float, HealthReport]] = {}
_CACHE_LOCK = threading.Lock()


def cached_health_report(max_age: float = 10.0) -> HealthReport:
    """:func:`health_report`, computed at most once per ``max_age`` seconds in this process (views, API)."""
    with _CACHE_LOCK:
        hit = _CACHE.get("report")
        if hit is not None and time.monotonic() - hit[0] < max_age:
            return hit[1]
    report = health_report()
    with _CACHE_LOCK:
        _CACHE["report"] = (time.monotonic(), report)
    return report


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()
    _CONNECTIONS.clear()


def flags_for(integrations: Iterable[str], store: Any = None) -> dict[str, list[RegistrationFlag]]:
    """Flags of some registrations (the views and ``failnotify config list``), by integration."""
    if store is None:
        from airflow_failnotify.store import get_store

        store = get_store()
    wanted = set(integrations)
    registrations = [r for r in store.list_registrations() if r.integration in wanted]
    if not registrations:
        return {}
    dag_ids = sorted({r.dag_id_for(d) for r in registrations for d in r.directions()})
    out: dict[str, list[RegistrationFlag]] = {}
    for flag in registration_flags(registrations, _airflow_presence(dag_ids), _connection_exists):
        out.setdefault(flag.integration, []).append(flag)
    return out
