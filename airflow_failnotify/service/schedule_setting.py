"""The Settings page's schedule: what applies now and where it comes from, and changing it.

Shared by the FAB Settings page and the JSON API (admin-level in both). The notification DAG reads
the stored value at its next parse (:mod:`airflow_failnotify.service.schedule`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from airflow_failnotify.core import schedule

NOT_A_PRESET = "choose one of the schedules in the list"


@dataclass(frozen=True)
class ScheduleOverview:
    stored: str | None  # the Settings choice, None when cleared
    configured: str  # [failnotify] notification_schedule, "" when it is its default
    effective: str
    effective_label: str
    source: str
    next_run: datetime | None
    last_pass: Any
    now: datetime


def next_run(cron: str, now: datetime | None = None) -> datetime | None:
    """The next time ``cron`` fires after ``now`` (UTC); None for an expression croniter refuses."""
    from croniter import croniter

    start = now or datetime.now(timezone.utc)
    try:
        result: datetime = croniter(cron, start).get_next(datetime)
    except (ValueError, KeyError):
        return None
    return result


def overview(store: Any, *, now: datetime | None = None) -> ScheduleOverview:
    from airflow_failnotify import settings as fn_settings

    stored = store.get_setting(schedule.SETTING_KEY)
    configured = fn_settings.get_option("notification_schedule").strip()
    if configured == schedule.DEFAULT_SCHEDULE:  # the option's own default: not a choice anyone made
        configured = ""
    cron, source = schedule.resolve(stored, configured)
    now = now or datetime.now(timezone.utc)
    return ScheduleOverview(
        stored=stored,
        configured=configured,
        effective=cron,
        effective_label=schedule.label_for(cron),
        source=source,
        next_run=next_run(cron, now),
        last_pass=store.last_pass(),
        now=now,
    )


def set_schedule(store: Any, value: str) -> str:
    """Store the chosen preset ("" clears the setting); ValueError(:data:`NOT_A_PRESET`) otherwise.

    Returns the message the pages show.
    """
    value = value.strip()
    if value and value not in schedule.PRESET_VALUES:
        raise ValueError(NOT_A_PRESET)
    store.set_setting(schedule.SETTING_KEY, value or None)
    if value:
        return (
            f"Post Failure Notification schedule set to {schedule.label_for(value)} ({value} UTC). "
            "The job picks it up at the next parse of its DAG."
        )
    return "The schedule setting was cleared: the configuration (or the default) applies."
