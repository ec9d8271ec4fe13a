"""Builds the Post Failure Notification DAG (``failnotify_post_failure_notification``).

A deployment's DAG file is three lines (see ``dags/failure_notification.py``). The schedule
is read at every parse, so a change made in the Settings view or in airflow.cfg applies at
the next parse with no restart.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_failnotify import settings
from airflow_failnotify.constants import NOTIFICATION_DAG_ID

log = logging.getLogger(__name__)

IMMEDIATE_ASSET = "failnotify_failures"


def current_schedule() -> tuple[str, str]:
    """(cron, source): the Settings view's value, else [failnotify] notification_schedule, else default.

    When the store cannot be read, the last known schedule (cached at the previous parse) is kept,
    never a silent fallback to the default (service/schedule.py; the health output reports it).
    """
    from airflow_failnotify.service.schedule import parse_time_schedule

    parsed = parse_time_schedule()
    return parsed.cron, parsed.source


def build_notification_dag(*, with_immediate_trigger: bool = True) -> Any:
    from airflow.sdk import DAG, Asset, AssetWatcher
    from airflow.sdk.definitions.timetables.assets import AssetOrTimeSchedule
    from airflow.sdk.definitions.timetables.trigger import CronTriggerTimetable

    from airflow_failnotify.operators.notification import FailureNotificationOperator
    from airflow_failnotify.triggers.store_events import StoreEventTrigger

    cron, source = current_schedule()
    timetable = CronTriggerTimetable(cron, timezone="UTC")
    schedule_arg: Any = timetable
    if with_immediate_trigger:
        trigger = StoreEventTrigger(
            poll_seconds=settings.get_float("immediate_poll_seconds"),
            max_backoff_seconds=settings.get_float("immediate_backoff_max_seconds"),
        )
        watcher = AssetWatcher(name="failnotify_store_watcher", trigger=trigger)
        schedule_arg = AssetOrTimeSchedule(
            timetable=timetable, assets=[Asset(IMMEDIATE_ASSET, watchers=[watcher])]
        )
    with DAG(
        dag_id=NOTIFICATION_DAG_ID,
        description=f"Post Failure Notification: evaluate and send failure emails ({cron} UTC, {source})",
        schedule=schedule_arg,
        start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        is_paused_upon_creation=False,
        max_active_runs=4,  # claims make overlapping passes safe; a stuck run must not block the next
        dagrun_timeout=timedelta(minutes=30),
        tags=["failnotify"],
        doc_md=__doc__,
        default_args={"retries": 0, "owner": "failnotify"},
    ) as dag:
        FailureNotificationOperator(
            task_id="post_failure_notification", execution_timeout=timedelta(minutes=20)
        )
    return dag
