"""Settings: the Post Failure Notification job's schedule; admin only."""

from __future__ import annotations

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
from airflow_failnotify.service import schedule_setting
from airflow_failnotify.service.schedule_setting import next_run

if TYPE_CHECKING:
    from flask import Response

__all__ = ["SettingsView", "next_run"]


class SettingsView(FailnotifyBaseView):
    """The Post Failure Notification job's schedule; admin only."""

    route_base = f"{ROUTE_BASE}/settings"
    nav_tab = "settings"

    def _page(self, *, selected: str, error: str = "", status: int = 200) -> Response:
        from airflow_failnotify.core import schedule

        info = schedule_setting.overview(store())
        return self.page(
            "failnotify/settings.html",
            status=status,
            presets=schedule.PRESETS,
            selected=selected,
            error=error,
            effective=info.effective,
            effective_label=info.effective_label,
            source=info.source,
            configured=info.configured,
            configured_label=info.configured_label,
            fallback=info.fallback,
            custom=info.custom,
            stored=info.stored,
            last_pass=info.last_pass,
            next_run=info.next_run,
            now=info.now,
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
        value = (request.form.get("schedule") or "").strip()
        try:
            changed, message = schedule_setting.set_schedule(store(), value, actor=actor())
        except ValueError as err:
            return self._page(selected=value, error=str(err), status=HTTP_UNPROCESSABLE)
        flash(message, "success" if changed else "info")
        return redirect(url_for("SettingsView.index"))
