"""FAB views of the plugin, served by Airflow 3 under ``/pluginsv2/failnotify/``.

Every view derives from :class:`FailnotifyBaseView`, whose blueprint runs the auth bridge
(:func:`airflow_failnotify.plugins.auth.authenticate`) before each request: no view is public.
Authorization is per action, through the helpers of :mod:`airflow_failnotify.plugins.auth`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose

from airflow_failnotify.plugins import auth

if TYPE_CHECKING:
    from flask import Blueprint

    from airflow_failnotify.core.model import Registration

log = logging.getLogger(__name__)

ROUTE_BASE = "/failnotify"
PAGE_SIZES = (25, 50, 100)
# The package's own notification DAG is not an integration (DESIGN.md: it produces nothing).
NOTIFICATION_DAG_ID = "failnotify_post_failure_notification"


def _registrations(dag_ids: Iterable[str]) -> dict[str, Registration]:
    """Registrations of these integrations, by forward DAG id.

    STUB until the store (``airflow_failnotify.store``, written by the lead) exposes its ``Store``
    class: it then becomes one call into the store. Until then no integration is registered.
    """
    del dag_ids
    return {}


@dataclass(frozen=True)
class IntegrationRow:
    dag_id: str
    description: str
    owners: str
    is_paused: bool
    registration: Registration | None
    can_edit: bool

    @property
    def directions(self) -> str:
        if self.registration is None:
            return ""
        return ", ".join(d.value for d in self.registration.directions())

    @property
    def email_server(self) -> str:
        return self.registration.forward.smtp_conn_id if self.registration else ""


class FailnotifyBaseView(BaseView):
    """Base of every failnotify view: authenticated through the auth bridge, never public."""

    default_view = "index"

    def create_blueprint(self, appbuilder: Any, endpoint: str | None = None,
                         static_folder: str | None = None) -> Blueprint:
        blueprint = super().create_blueprint(appbuilder, endpoint=endpoint, static_folder=static_folder)
        blueprint.before_request(auth.authenticate)
        return blueprint


def _page_args() -> tuple[str, int, int]:
    query = (request.args.get("q") or "").strip()[:250]
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 1
    try:
        size = int(request.args.get("size", str(PAGE_SIZES[0])))
    except ValueError:
        size = PAGE_SIZES[0]
    if size not in PAGE_SIZES:
        size = PAGE_SIZES[0]
    return query, page, size


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _list_dags(readable: set[str], query: str, page: int, size: int) -> tuple[list[Any], int]:
    """One page of the non-stale DAGs the user may read, matching ``query`` (DAG id or description)."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, or_, select

    if not readable:
        return [], 0
    conditions = [DagModel.is_stale.is_(False), DagModel.dag_id != NOTIFICATION_DAG_ID,
                  DagModel.dag_id.in_(sorted(readable))]
    if query:
        pattern = f"%{_escape_like(query)}%"
        conditions.append(or_(DagModel.dag_id.ilike(pattern, escape="\\"),
                              DagModel.description.ilike(pattern, escape="\\")))
    with create_session() as session:
        total = session.scalar(select(func.count()).select_from(DagModel).where(*conditions)) or 0
        rows = session.execute(
            select(DagModel.dag_id, DagModel.description, DagModel.owners, DagModel.is_paused)
            .where(*conditions)
            .order_by(DagModel.dag_id)
            .offset((page - 1) * size)
            .limit(size)
        ).all()
    return list(rows), int(total)


class IntegrationsView(FailnotifyBaseView):
    """Integrations: every DAG the user may read, whether failure notification is registered."""

    route_base = ROUTE_BASE

    @expose("/")
    def index(self) -> Any:
        query, page, size = _page_args()
        readable = auth.authorized_dag_ids()
        editable = auth.authorized_dag_ids(write=True)
        dags, total = _list_dags(readable, query, page, size)
        pages = max(1, math.ceil(total / size))
        if page > pages:
            page = pages
            dags, total = _list_dags(readable, query, page, size)
        registrations = _registrations(row.dag_id for row in dags)
        rows = [
            IntegrationRow(
                dag_id=row.dag_id,
                description=row.description or "",
                owners=row.owners or "",
                is_paused=bool(row.is_paused),
                registration=registrations.get(row.dag_id),
                can_edit=row.dag_id in editable,
            )
            for row in dags
        ]
        return self.render_template(
            "failnotify/integrations.html",
            rows=rows, query=query, page=page, pages=pages, size=size, total=total, page_sizes=PAGE_SIZES,
        )


class ConfigureView(FailnotifyBaseView):
    """Configure Failure Notification of one integration. SKELETON: the form comes in the next phase."""

    route_base = f"{ROUTE_BASE}/configure"

    @expose("/<string:dag_id>", methods=["GET"])
    @auth.dag_access_required(write=False)
    def index(self, dag_id: str) -> Any:
        registration = _registrations([dag_id]).get(dag_id)
        return self.render_template(
            "failnotify/configure.html",
            dag_id=dag_id,
            registration=registration,
            can_edit=auth.can_access_dag(dag_id, write=True),
        )

    @expose("/<string:dag_id>", methods=["POST"])
    @auth.dag_access_required(write=True)
    def save(self, dag_id: str) -> Any:
        flash("The configuration form is not available yet: nothing was saved.", "warning")
        return redirect(url_for("ConfigureView.index", dag_id=dag_id))
