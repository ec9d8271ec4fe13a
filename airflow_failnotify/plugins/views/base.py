"""The base of every failnotify view, the page helpers and the constants the pages share."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from flask import make_response, request
from flask_appbuilder import BaseView

from airflow_failnotify.exceptions import FailnotifyError
from airflow_failnotify.plugins import auth

if TYPE_CHECKING:
    from flask import Blueprint, Response

    from airflow_failnotify.core.model import Registration
    from airflow_failnotify.store import Actor, Store

log = logging.getLogger(__name__)

ROUTE_BASE = "/failnotify"
PAGE_SIZES = (25, 50, 100)
# Airflow 3's connection list (the React UI); the plugin pages are in a frame, so links use target=_top.
CONNECTIONS_URL = "/connections"
HTTP_UNPROCESSABLE = 422


def store() -> Store:
    """The failnotify store (the package's own tables)."""
    from airflow_failnotify.store import get_store

    return get_store()


def actor(source: str = "ui") -> Actor:
    """The signed-in user, as the audit trail names who made a change."""
    from airflow_failnotify.store import Actor

    user = auth.current_user()
    try:
        name = str(user.get_name() or "")
    except Exception:  # an auth manager whose user has no name
        name = ""
    return Actor(name=name or "unknown user", source=source)


def registrations(dag_ids: Iterable[str]) -> dict[str, Registration]:
    """Registrations of these integrations, by forward DAG id."""
    wanted = set(dag_ids)
    if not wanted:
        return {}
    return {reg.integration: reg for reg in store().list_registrations() if reg.integration in wanted}


def utc(moment: datetime | None) -> str:
    """A moment as the pages show it: ``YYYY-MM-DD HH:MM:SS UTC``; empty for none."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class FailnotifyBaseView(BaseView):
    """Base of every failnotify view: authenticated through the auth bridge, never public."""

    default_view = "index"
    nav_tab = ""

    def create_blueprint(
        self, appbuilder: Any, endpoint: str | None = None, static_folder: str | None = None
    ) -> Blueprint:
        blueprint = super().create_blueprint(appbuilder, endpoint=endpoint, static_folder=static_folder)
        blueprint.before_request(auth.authenticate)
        blueprint.register_error_handler(FailnotifyError, _store_problem)
        return blueprint

    def page(self, template: str, status: int = 200, **context: Any) -> Response:
        """Render a page of the plugin with the tab bar's context; ``status`` for refused forms."""
        context.setdefault("nav_tab", self.nav_tab)
        context.setdefault("fn_is_admin", auth.is_admin())
        context.setdefault("fn_health", health_banner())
        return make_response(self.render_template(template, **context), status)


def health_banner() -> dict[str, Any] | None:
    """The health's status and its warn/bad checks for the banner; None when all is ok (issue 14)."""
    from airflow_failnotify.service.health import cached_health_report

    try:
        report = cached_health_report()
    except Exception:  # the banner must never break a page
        log.warning("failnotify views: health unknown", exc_info=True)
        return None
    if report.status.value == "ok":
        return None
    return {"status": report.status.value, "problems": report.problems()}


def _store_problem(err: FailnotifyError) -> Response:
    """The store is not migrated or cannot be reached: one clear message, not a traceback."""
    log.warning("failnotify views: %s", err)
    return auth.error_page(503, "Failure notification store unavailable", str(err))


def page_args() -> tuple[str, int, int]:
    """The search query, page number and page size of a list page (bad values fall back to defaults)."""
    query = (request.args.get("q") or "").strip()[:250]
    page = int_arg("page")
    try:
        size = int(request.args.get("size", str(PAGE_SIZES[0])))
    except ValueError:
        size = PAGE_SIZES[0]
    if size not in PAGE_SIZES:
        size = PAGE_SIZES[0]
    return query, page, size


def int_arg(name: str, default: int = 1) -> int:
    """A positive integer query argument (at least 1); ``default`` when it is not a number."""
    try:
        return max(1, int(request.args.get(name, str(default))))
    except ValueError:
        return default
