"""The notification DAG's schedule at parse time, and the last known one kept in a local cache file.

The schedule never changes silently (issue 14): when the store cannot be read while the DAG file is
parsed, the DAG keeps the schedule of the last parse that could read it (``<spool_dir>/schedule.json``)
instead of falling back to the configuration or the default, and the file says so; the health output
reports it until a parse reads the store again.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow_failnotify import settings
from airflow_failnotify.core import schedule

log = logging.getLogger(__name__)

CACHE_FILE = "schedule.json"
SOURCE_CACHE = "cache"


@dataclass(frozen=True)
class ParsedSchedule:
    cron: str
    source: str
    note: str = ""  # non-empty when the stored schedule could not be read


def cache_path() -> Path:
    return settings.spool_dir() / CACHE_FILE


def read_cache(path: Path | None = None) -> dict[str, Any] | None:
    try:
        data = json.loads((path or cache_path()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("cron") else None


def _write_cache(data: dict[str, Any], path: Path | None = None) -> None:
    target = path or cache_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, target)
    except OSError as err:
        log.warning("failnotify: cannot write the schedule cache %s: %s", target, err)


def parse_time_schedule(*, now: datetime | None = None) -> ParsedSchedule:
    """(cron, source, note) for the DAG being parsed; see the module docstring."""
    moment = (now or datetime.now(timezone.utc)).isoformat()
    configured = settings.get_option("notification_schedule")
    try:
        from airflow_failnotify.store import get_store

        stored = get_store().get_setting(schedule.SETTING_KEY)
    except Exception as err:  # never fail the parse because the store is away
        cached = read_cache()
        reason = f"the stored schedule could not be read at {moment} ({type(err).__name__}: {err})"
        if cached is not None:
            log.warning("failnotify: %s; keeping the last known schedule %s", reason, cached["cron"])
            note = f"{reason}; the DAG keeps the last known schedule"
            _write_cache({**cached, "fallback": {"at": moment, "reason": reason}})
            return ParsedSchedule(str(cached["cron"]), SOURCE_CACHE, note)
        cron, source = schedule.resolve(None, configured)
        log.warning("failnotify: %s and no schedule was cached; using %s (%s)", reason, cron, source)
        _write_cache(
            {"cron": cron, "source": source, "cached_at": None, "fallback": {"at": moment, "reason": reason}}
        )
        return ParsedSchedule(cron, source, f"{reason}; nothing was cached, so it runs on {source}")
    cron, source = schedule.resolve(stored, configured)
    cached = read_cache()
    if (
        cached is None
        or cached.get("cron") != cron
        or cached.get("fallback")
        or cached.get("source") != source
    ):
        _write_cache({"cron": cron, "source": source, "cached_at": moment, "fallback": None})
    return ParsedSchedule(cron, source)


def effective_schedule() -> ParsedSchedule:
    """What the health reports: the schedule of the last parse when it is cached, else the current one."""
    cached = read_cache()
    if cached is not None:
        fallback = cached.get("fallback") or None
        note = ""
        if fallback:
            note = f"{fallback.get('reason')}; the DAG keeps the last known schedule"
        source = SOURCE_CACHE if fallback and cached.get("cached_at") else str(cached.get("source") or "")
        return ParsedSchedule(str(cached["cron"]), source, note)
    try:
        from airflow_failnotify.store import get_store

        stored = get_store().get_setting(schedule.SETTING_KEY)
    except Exception:
        stored = None
    cron, source = schedule.resolve(stored, settings.get_option("notification_schedule"))
    return ParsedSchedule(cron, source)


def interval_of(cron: str, *, now: datetime | None = None) -> timedelta:
    """The longest gap between two of the next few fire times of ``cron`` (UTC)."""
    from croniter import croniter

    start = now or datetime.now(timezone.utc)
    try:
        it = croniter(cron, start)
        times: list[datetime] = [it.get_next(datetime) for _ in range(6)]
    except (ValueError, KeyError):
        return timedelta(minutes=30)
    return max(b - a for a, b in itertools.pairwise(times))
