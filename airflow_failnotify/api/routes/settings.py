"""Settings (admin): the Post Failure Notification job's schedule."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from airflow_failnotify.api import problems, security, serialize
from airflow_failnotify.core import schedule
from airflow_failnotify.core.config import FieldError
from airflow_failnotify.service import schedule_setting

router = APIRouter(tags=["settings"])


class ScheduleBody(BaseModel):
    schedule: str = ""  # one of the presets; "" clears the setting


def _store() -> Any:
    from airflow_failnotify.store import get_store

    return get_store()


def _overview() -> dict[str, Any]:
    info = schedule_setting.overview(_store())
    return {
        "presets": [{"value": v, "label": label} for v, label in schedule.PRESETS],
        "stored": info.stored,
        "configured": info.configured,
        "effective": info.effective,
        "effective_label": info.effective_label,
        "source": info.source,
        "next_run": serialize.moment(info.next_run),
        "last_pass": serialize.last_pass(info.last_pass),
        "now": serialize.moment(info.now),
    }


@router.get("/settings", summary="The notification job's schedule and where it comes from (admin)")
def get_settings(user: Any = Depends(security.admin)) -> dict[str, Any]:  # noqa: B008
    return _overview()


@router.put("/settings", summary="Choose the notification job's schedule (admin)")
def put_settings(body: ScheduleBody, user: Any = Depends(security.admin)) -> dict[str, Any]:  # noqa: B008
    try:
        _changed, message = schedule_setting.set_schedule(
            _store(), body.schedule, actor=security.actor_of(user)
        )
    except ValueError as err:
        raise problems.unprocessable([FieldError("schedule", str(err))]) from err
    return {**_overview(), "message": message}
