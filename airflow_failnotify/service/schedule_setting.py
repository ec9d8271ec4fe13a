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
    fallback: str  # what applies when the setting is cleared
    configured_label: str
    custom: str  # a stored value that is not a preset (offered as it is, so saving keeps it)
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
    fallback, _ = schedule.resolve(None, configured)
    now = now or datetime.now(timezone.utc)
    return ScheduleOverview(
        stored=stored,
        configured=configured,
        effective=cron,
        effective_label=schedule.label_for(cron),
        source=source,
        fallback=fallback,
        configured_label=schedule.label_for(fallback),
        custom=stored if stored and stored not in schedule.PRESET_VALUES else "",
        next_run=next_run(cron, now),
        last_pass=store.last_pass(),
        now=now,
    )


NOTHING_CHANGED = "Nothing changed: the schedule setting is as it was."


def set_schedule(store: Any, value: str, *, actor: Any = None) -> tuple[bool, str]:
    """Store the chosen preset ("" clears the setting); ValueError(:data:`NOT_A_PRESET`) otherwise.

    The stored value itself is accepted even when it is not a preset (saving the page untouched keeps
    it). Returns (changed, the message the pages show); an unchanged value writes nothing.
    """
    value = value.strip()
    stored = store.get_setting(schedule.SETTING_KEY)
    if value and value not in schedule.PRESET_VALUES and value != stored:
        raise ValueError(NOT_A_PRESET)
    if not store.set_setting(schedule.SETTING_KEY, value or None, actor=actor):
        return False, NOTHING_CHANGED
    if value:
        return True, (
            f"Post Failure Notification schedule set to {schedule.label_for(value)} ({value} UTC). "
            "The job picks it up at the next parse of its DAG."
        )
    return True, "The schedule setting was cleared: the configuration (or the default) applies."
