"""Settings: the Post Failure Notification job's schedule; admin only."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from flask import flash, redirect, request, url_for
from flask_appbuilder import expose

from airflow_failnotify.plugins import auth
from airflow_failnotify.plugins.views.base import (
    HTTP_UNPROCESSABLE,
    ROUTE_BASE,
    FailnotifyBaseView,
    actor,
    store,
    utc,
)

if TYPE_CHECKING:
    from flask import Response


def next_run(cron: str, now: datetime | None = None) -> datetime | None:
    """The next time ``cron`` fires after ``now`` (UTC); None for an expression croniter refuses."""
    from croniter import croniter

    start = now or datetime.now(timezone.utc)
    try:
        return croniter(cron, start).get_next(datetime)
    except (ValueError, KeyError):
        return None


class SettingsView(FailnotifyBaseView):
    """The Post Failure Notification job's schedule; admin only."""

    route_base = f"{ROUTE_BASE}/settings"
    nav_tab = "settings"

    def _page(self, *, selected: str, error: str = "", status: int = 200) -> Response:
        from airflow_failnotify import settings as fn_settings
        from airflow_failnotify.core import schedule

        fs = store()
        stored = fs.get_setting(schedule.SETTING_KEY)
        configured = fn_settings.get_option("notification_schedule").strip()
        if configured == schedule.DEFAULT_SCHEDULE:  # the option's own default: not a choice anyone made
            configured = ""
        cron, source = schedule.resolve(stored, configured)
        now = datetime.now(timezone.utc)
        # A stored value that is not a preset (set by an older version, or by hand) is offered as it
        # is, selected: saving the page untouched must keep it.
        custom = stored if stored and stored not in schedule.PRESET_VALUES else ""
        fallback, _ = schedule.resolve(None, configured)
        return self.page(
            "failnotify/settings.html",
            status=status,
            presets=schedule.PRESETS,
            selected=selected,
            error=error,
            effective=cron,
            effective_label=schedule.label_for(cron),
            source=source,
            configured=configured,
            configured_label=schedule.label_for(fallback),
            fallback=fallback,
            custom=custom,
            stored=stored,
            last_pass=fs.last_pass(),
            next_run=next_run(cron, now),
            now=now,
            utc=utc,
        )

    @expose("/", methods=["GET"])
    @auth.admin_required
    def index(self) -> Any:
        from airflow_failnotify.core import schedule

        stored = store().get_setting(schedule.SETTING_KEY) or ""
        return self._page(selected=stored)

    @expose("/", methods=["POST"])
    @auth.admin_required
    def save(self) -> Any:
        from airflow_failnotify.core import schedule

        value = (request.form.get("schedule") or "").strip()
        stored = store().get_setting(schedule.SETTING_KEY)
        if value and value not in schedule.PRESET_VALUES and value != stored:
            return self._page(
                selected=value, error="choose one of the schedules in the list", status=HTTP_UNPROCESSABLE
            )
        if not store().set_setting(schedule.SETTING_KEY, value or None, actor=actor()):
            flash("Nothing changed: the schedule setting is as it was.", "info")
        elif value:
            flash(
                f"Post Failure Notification schedule set to {schedule.label_for(value)} ({value} UTC). "
                "The job picks it up at the next parse of its DAG.",
                "success",
            )
        else:
            flash("The schedule setting was cleared: the configuration (or the default) applies.", "success")
        return redirect(url_for("SettingsView.index"))
