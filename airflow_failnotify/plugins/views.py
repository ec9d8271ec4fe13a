"""FAB views of the plugin, served by Airflow 3 under ``/pluginsv2/failnotify/``.

Every view derives from :class:`FailnotifyBaseView`, whose blueprint runs the auth bridge
(:func:`airflow_failnotify.plugins.auth.authenticate`) before each request: no view is public.
Authorization is per action, through the helpers of :mod:`airflow_failnotify.plugins.auth`:

============================================  ==============================================
Integrations list                             the DAGs the user may read (auth manager)
Configure (read) / (Save, Update, Test)        DAG read / DAG edit (and edit of the backward DAG)
Unregister (confirm page + POST)               DAG edit
Bulk configure                                 DAG edit of each selected DAG (others skipped)
Error Management                               DAG read of the chosen integration; all of them
                                               for admins or users who may read every DAG
Send now / Retry, Settings                     admin level (:func:`auth.is_admin`)
============================================  ==============================================

Validation is never done here: forms become the registration dict of
:mod:`airflow_failnotify.core.config` (see :mod:`airflow_failnotify.plugins.forms`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from flask import abort, flash, make_response, redirect, request, url_for
from flask_appbuilder import BaseView, expose

from airflow_failnotify.core.config import (
    ConfigValidationError,
    FieldError,
    bulk_registration,
    parse_registration,
)
from airflow_failnotify.core.model import OutboxState, Registration
from airflow_failnotify.exceptions import FailnotifyError
from airflow_failnotify.plugins import auth, forms
from airflow_failnotify.service.test_email import TestOutcome, send_test_emails

if TYPE_CHECKING:
    from flask import Blueprint, Response

    from airflow_failnotify.store import Store

log = logging.getLogger(__name__)

ROUTE_BASE = "/failnotify"
PAGE_SIZES = (25, 50, 100)
ERROR_PAGE_SIZE = 25
SPARKLINE_DAYS = 14
CONN_TYPE = "failnotify_smtp"
# Airflow 3's connection list (the React UI); the plugin pages are in a frame, so links use target=_top.
CONNECTIONS_URL = "/connections"
# The package's own notification DAG is not an integration (DESIGN.md: it produces nothing).
NOTIFICATION_DAG_ID = "failnotify_post_failure_notification"
ERROR_TYPES = (("all", "All errors"), ("integration", "Integration errors"), ("other", "Other errors"))
ERROR_CATEGORIES = (
    ("send", "Sending failed"),
    ("config", "Configuration"),
    ("store", "Store"),
    ("capture", "Capture"),
)
HTTP_UNPROCESSABLE = 422


def _store() -> Store:
    from airflow_failnotify.store import get_store

    return get_store()


def _registrations(dag_ids: Iterable[str]) -> dict[str, Registration]:
    """Registrations of these integrations, by forward DAG id."""
    wanted = set(dag_ids)
    if not wanted:
        return {}
    return {reg.integration: reg for reg in _store().list_registrations() if reg.integration in wanted}


def _utc(moment: datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# ----------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Sparkline:
    """Failures per day (oldest first) drawn as inline SVG bars by the template."""

    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)

    def bars(self, width: int = 112, height: int = 24) -> list[dict[str, Any]]:
        peak = max(self.counts, default=0) or 1
        step = width / max(1, len(self.counts))
        out = []
        for index, count in enumerate(self.counts):
            bar = max(1.0, (height - 2) * count / peak) if count else 1.0
            out.append(
                {
                    "x": round(index * step + 0.5, 1),
                    "y": round(height - bar, 1),
                    "w": round(max(1.0, step - 1.5), 1),
                    "h": round(bar, 1),
                    "count": count,
                    "failed": bool(count),
                }
            )
        return out


@dataclass(frozen=True)
class IntegrationRow:
    dag_id: str
    description: str
    owners: str
    is_paused: bool
    registration: Registration | None
    can_edit: bool
    sparkline: Sparkline | None = None

    @property
    def directions(self) -> str:
        if self.registration is None:
            return ""
        return ", ".join(d.value for d in self.registration.directions())

    @property
    def email_server(self) -> str:
        return self.registration.forward.smtp_conn_id if self.registration else ""


@dataclass(frozen=True)
class EmailServer:
    """A ``failnotify_smtp`` connection as the drop-down shows it: id and host, never a secret."""

    conn_id: str
    host: str
    source: str


def _env_connections() -> list[EmailServer]:
    """``AIRFLOW_CONN_*`` connections of our type (Airflow's environment-variables secrets backend)."""
    found = []
    for name, value in os.environ.items():
        if not name.startswith("AIRFLOW_CONN_") or len(name) == len("AIRFLOW_CONN_"):
            continue
        conn_id = name.removeprefix("AIRFLOW_CONN_").lower()
        text = value.strip()
        try:
            if text.startswith("{"):
                data = json.loads(text)
                conn_type, host = str(data.get("conn_type") or ""), str(data.get("host") or "")
            else:
                parts = urllib.parse.urlsplit(text)
                conn_type, host = parts.scheme.replace("-", "_"), parts.hostname or ""
        except (ValueError, AttributeError):
            continue
        if conn_type == CONN_TYPE:
            found.append(EmailServer(conn_id, host, "environment"))
    return found


def email_servers() -> list[EmailServer]:
    """Every ``failnotify_smtp`` connection: Airflow's metastore, then environment variables."""
    from airflow.models import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    servers: dict[str, EmailServer] = {}
    try:
        with create_session() as session:
            rows = session.execute(
                select(Connection.conn_id, Connection.host)
                .where(Connection.conn_type == CONN_TYPE)
                .order_by(Connection.conn_id)
            ).all()
        for conn_id, host in rows:
            servers[conn_id] = EmailServer(conn_id, host or "", "metastore")
    except Exception:  # a broken metastore must not break the form; the user can still type nothing
        log.warning("failnotify: cannot list %s connections", CONN_TYPE, exc_info=True)
    for server in _env_connections():
        servers.setdefault(server.conn_id, server)
    return sorted(servers.values(), key=lambda s: s.conn_id)


def _dag_ids(allowed: set[str], *, exclude: Iterable[str] = ()) -> list[str]:
    """Non-stale DAG ids among ``allowed`` (the notification DAG and ``exclude`` left out)."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    skip = {NOTIFICATION_DAG_ID, *exclude}
    if not allowed:
        return []
    with create_session() as session:
        rows = session.scalars(
            select(DagModel.dag_id).where(DagModel.is_stale.is_(False)).order_by(DagModel.dag_id)
        ).all()
    return [dag_id for dag_id in rows if dag_id in allowed and dag_id not in skip]


def _all_dag_ids() -> set[str]:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return set(session.scalars(select(DagModel.dag_id)).all())


# ----------------------------------------------------------------------------------------------- base


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
        return make_response(self.render_template(template, **context), status)


def _store_problem(err: FailnotifyError) -> Response:
    """The store is not migrated or cannot be reached: one clear message, not a traceback."""
    log.warning("failnotify views: %s", err)
    return auth.error_page(503, "Failure notification store unavailable", str(err))


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


def _int_arg(name: str, default: int = 1) -> int:
    try:
        return max(1, int(request.args.get(name, str(default))))
    except ValueError:
        return default


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _list_dags(readable: set[str], query: str, page: int, size: int) -> tuple[list[Any], int]:
    """One page of the non-stale DAGs the user may read, matching ``query`` (DAG id or description)."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, or_, select

    if not readable:
        return [], 0
    conditions = [
        DagModel.is_stale.is_(False),
        DagModel.dag_id != NOTIFICATION_DAG_ID,
        DagModel.dag_id.in_(sorted(readable)),
    ]
    if query:
        pattern = f"%{_escape_like(query)}%"
        conditions.append(
            or_(DagModel.dag_id.ilike(pattern, escape="\\"), DagModel.description.ilike(pattern, escape="\\"))
        )
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


# ----------------------------------------------------------------------------------------------- Integrations


class IntegrationsView(FailnotifyBaseView):
    """Integrations: every DAG the user may read, whether failure notification is registered."""

    route_base = ROUTE_BASE
    nav_tab = "integrations"

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
        counts = _store().failure_counts_by_day(sorted(registrations), days=SPARKLINE_DAYS)
        rows = [
            IntegrationRow(
                dag_id=row.dag_id,
                description=row.description or "",
                owners=row.owners or "",
                is_paused=bool(row.is_paused),
                registration=registrations.get(row.dag_id),
                can_edit=row.dag_id in editable,
                sparkline=Sparkline(tuple(counts[row.dag_id])) if row.dag_id in counts else None,
            )
            for row in dags
        ]
        return self.page(
            "failnotify/integrations.html",
            rows=rows,
            query=query,
            page=page,
            pages=pages,
            size=size,
            total=total,
            page_sizes=PAGE_SIZES,
            sparkline_days=SPARKLINE_DAYS,
            any_editable=any(row.can_edit for row in rows),
        )


# ----------------------------------------------------------------------------------------------- Configure


class ConfigureView(FailnotifyBaseView):
    """Configure Failure Notification of one integration: Save/Update, Test, Unregister."""

    route_base = f"{ROUTE_BASE}/configure"
    nav_tab = "integrations"

    def _form(
        self,
        dag_id: str,
        values: Mapping[str, Any],
        *,
        registration: Registration | None,
        errors: forms.FormErrors | None = None,
        outcomes: Sequence[TestOutcome] = (),
        status: int = 200,
    ) -> Response:
        can_edit = auth.can_access_dag(dag_id, write=True)
        backward_choices = _dag_ids(auth.authorized_dag_ids(write=can_edit), exclude=[dag_id])
        current_backward = str(values.get("backward_integration") or "")
        if current_backward and current_backward not in backward_choices:
            backward_choices.append(current_backward)
        servers = email_servers()
        known = {s.conn_id for s in servers}
        for key in ("smtp_conn_id", f"{forms.BACKWARD_PREFIX}smtp_conn_id"):
            conn_id = str(values.get(key) or "")
            if conn_id and conn_id not in known:
                servers.append(EmailServer(conn_id, "", "missing"))
                known.add(conn_id)
        return self.page(
            "failnotify/configure.html",
            status=status,
            dag_id=dag_id,
            registration=registration,
            can_edit=can_edit,
            values=values,
            errors=errors or forms.FormErrors(),
            outcomes=outcomes,
            servers=servers,
            backward_choices=backward_choices,
            threshold_range=forms.THRESHOLD_RANGE,
            connections_url=CONNECTIONS_URL,
            prefix=forms.BACKWARD_PREFIX,
        )

    @expose("/<string:dag_id>", methods=["GET"])
    @auth.dag_access_required(write=False)
    def index(self, dag_id: str) -> Any:
        registration = _store().get_registration(dag_id)
        if registration is not None:
            values = forms.values_from_registration(registration)
        else:
            servers = email_servers()
            values = forms.default_values(dag_id, servers[0].conn_id if len(servers) == 1 else "")
        return self._form(dag_id, values, registration=registration)

    @expose("/<string:dag_id>", methods=["POST"])
    @auth.dag_access_required(write=True)
    def save(self, dag_id: str) -> Any:
        store = _store()
        registration = store.get_registration(dag_id)
        action = request.form.get("action", "save")
        values = forms.values_from_post(dag_id, request.form)
        errors = forms.FormErrors()
        parsed: Registration | None = None
        try:
            parsed = parse_registration(forms.registration_dict(values))
        except ConfigValidationError as err:
            forms.map_errors(err.errors, errors)
        backward = values["backward_integration"]
        if backward and backward != dag_id and not auth.can_access_dag(backward, write=True):
            errors.add(
                "backward_integration", f"you may not change the DAG {backward!r}: choose one you may edit"
            )
        if action not in ("save", "test"):
            errors.add(None, "Unknown action: use Save, Update or Test.")
        if errors or parsed is None:
            return self._form(
                dag_id, values, registration=registration, errors=errors, status=HTTP_UNPROCESSABLE
            )
        if action == "test":
            outcomes = send_test_emails(parsed)
            return self._form(dag_id, values, registration=registration, outcomes=outcomes)
        try:
            store.save_registration(parsed)
        except ConfigValidationError as err:  # a DAG already used by another registration
            # The store names each conflict "<integration>.<key>": drop the integration for the form.
            forms.map_errors([_unprefixed(e, dag_id) for e in err.errors], errors)
            return self._form(
                dag_id, values, registration=registration, errors=errors, status=HTTP_UNPROCESSABLE
            )
        verb = "updated" if registration is not None else "saved: failure notification is registered"
        flash(f"The failure notification of {dag_id} was {verb}.", "success")
        return redirect(url_for("ConfigureView.index", dag_id=dag_id))

    @expose("/<string:dag_id>/unregister", methods=["GET"])
    @auth.dag_access_required(write=True)
    def confirm_unregister(self, dag_id: str) -> Any:
        registration = _store().get_registration(dag_id)
        if registration is None:
            flash(f"{dag_id} is not registered for failure notification.", "info")
            return redirect(url_for("ConfigureView.index", dag_id=dag_id))
        outbox, _ = _store().list_outbox(state=OutboxState.PENDING, integration=dag_id, limit=1)
        return self.page(
            "failnotify/unregister.html", dag_id=dag_id, registration=registration, has_pending=bool(outbox)
        )

    @expose("/<string:dag_id>/unregister", methods=["POST"])
    @auth.dag_access_required(write=True)
    def unregister(self, dag_id: str) -> Any:
        if request.form.get("confirm") != "yes":
            return redirect(url_for("ConfigureView.confirm_unregister", dag_id=dag_id))
        if _store().unregister(dag_id):
            flash(f"Failure notification of {dag_id} was unregistered.", "success")
        else:
            flash(f"{dag_id} was not registered for failure notification.", "info")
        return redirect(url_for("IntegrationsView.index"))


def _unprefixed(error: FieldError, integration: str) -> FieldError:
    prefix = f"{integration}."
    return (
        FieldError(error.path.removeprefix(prefix), error.message) if error.path.startswith(prefix) else error
    )


# ----------------------------------------------------------------------------------------------- Bulk


class BulkView(FailnotifyBaseView):
    """Configure selected: one form applied to the selected integrations not configured yet."""

    route_base = f"{ROUTE_BASE}/bulk"
    nav_tab = "integrations"

    def _selection(self, dag_ids: Sequence[str]) -> tuple[list[str], dict[str, str]]:
        """(may be configured, skipped with why) before touching the store."""
        editable = auth.authorized_dag_ids(write=True)
        if not editable:
            abort(auth.forbidden("You may not change the failure notification of any integration."))
        existing = _all_dag_ids()
        stored = {
            d: reg.integration
            for reg in _store().list_registrations()
            for d in (reg.integration, reg.backward_integration)
            if d
        }
        ok: list[str] = []
        skipped: dict[str, str] = {}
        for dag_id in dict.fromkeys(dag_ids):
            if dag_id == NOTIFICATION_DAG_ID:
                skipped[dag_id] = "the notification DAG itself cannot be registered"
            elif dag_id not in existing or dag_id not in editable:
                skipped[dag_id] = "you may not change this DAG (or it does not exist)"
            elif dag_id in stored:
                owner = stored[dag_id]
                skipped[dag_id] = (
                    "already configured" if owner == dag_id else f"already the backward DAG of {owner}"
                )
            else:
                ok.append(dag_id)
        return ok, skipped

    def _form(
        self, dag_ids: list[str], values: Mapping[str, str], errors: forms.FormErrors, status: int = 200
    ) -> Response:
        ok, skipped = self._selection(dag_ids)
        return self.page(
            "failnotify/bulk.html",
            status=status,
            dag_ids=dag_ids,
            ok=ok,
            skipped=skipped,
            values=values,
            errors=errors,
            servers=email_servers(),
            connections_url=CONNECTIONS_URL,
        )

    @expose("/", methods=["GET"])
    def index(self) -> Any:
        dag_ids = [d for d in request.args.getlist("dag_id") if d][:500]
        servers = email_servers()
        values = {"smtp_conn_id": servers[0].conn_id if len(servers) == 1 else ""}
        errors = forms.FormErrors()
        if not dag_ids:
            errors.add(None, "Select one or more integrations on the Integrations page first.")
        return self._form(dag_ids, values, errors)

    @expose("/", methods=["POST"])
    def apply(self) -> Any:
        dag_ids = [d for d in request.form.getlist("dag_id") if d][:500]
        values = {name: (request.form.get(name) or "").strip() for name in forms.BULK_FIELDS}
        errors = forms.FormErrors()
        if not dag_ids:
            errors.add(None, "Select one or more integrations on the Integrations page first.")
        common = dict(values)
        try:
            bulk_registration(dag_ids[0] if dag_ids else "placeholder", **common)
        except ConfigValidationError as err:
            for error in err.errors:
                if error.path != "integration":  # each DAG is checked below, one by one
                    errors.add(forms.field_for_path(error.path), error.message)
        ok, skipped = self._selection(dag_ids)
        if errors:
            return self._form(dag_ids, values, errors, status=HTTP_UNPROCESSABLE)
        registrations = []
        for dag_id in ok:
            try:
                registrations.append(bulk_registration(dag_id, **common))
            except ConfigValidationError as err:
                skipped[dag_id] = str(err)
        configured, refused = _store().register_new_only(registrations)
        skipped.update(refused)
        return self.page(
            "failnotify/bulk_result.html",
            configured=configured,
            skipped=dict(sorted(skipped.items())),
            values=values,
        )


# ----------------------------------------------------------------------------------------------- Errors


def _parse_moment(raw: str) -> datetime:
    """A ``datetime-local`` value (or a date) as UTC; ValueError when it is neither."""
    text = raw.strip()
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _pages(total: int) -> int:
    return max(1, math.ceil(total / ERROR_PAGE_SIZE))


class ErrorsView(FailnotifyBaseView):
    """Error Management / Global Failures: integration errors, other errors and the outbox."""

    route_base = f"{ROUTE_BASE}/errors"
    nav_tab = "errors"

    @expose("/", methods=["GET"])
    def index(self) -> Any:
        store = _store()
        admin = auth.is_admin()
        filter_errors = forms.FormErrors()
        error_type = request.args.get("type", "all")
        if error_type not in dict(ERROR_TYPES):
            error_type = "all"
        integration = (request.args.get("integration") or "").strip()[:250]
        category = request.args.get("category", "")
        if category not in dict(ERROR_CATEGORIES):
            category = ""
        outbox_state_raw = request.args.get("ostate", "")
        outbox_state = None
        if outbox_state_raw:
            try:
                outbox_state = OutboxState(outbox_state_raw)
            except ValueError:
                filter_errors.add("ostate", "unknown state")
                outbox_state_raw = ""
        since = until = None
        since_raw = (request.args.get("since") or "").strip()
        until_raw = (request.args.get("until") or "").strip()
        for name, raw in (("since", since_raw), ("until", until_raw)):
            if raw:
                try:
                    moment = _parse_moment(raw)
                except ValueError:
                    filter_errors.add(name, "not a date and time (YYYY-MM-DD HH:MM, UTC); ignored")
                    continue
                if name == "since":
                    since = moment
                else:
                    until = moment
        if integration:
            auth.require_dag_access(integration)
        readable = auth.authorized_dag_ids()
        choices = sorted({reg.integration for reg in store.list_registrations()} & readable)
        if integration and integration not in choices:
            choices = sorted([*choices, integration])
        sees_everything = admin or _all_dag_ids() <= readable
        must_choose = not integration and not sees_everything

        epage, opage, xpage = _int_arg("epage"), _int_arg("opage"), _int_arg("xpage")
        events: list[Any] = []
        errors: list[Any] = []
        outbox: list[Any] = []
        events_total = errors_total = outbox_total = 0
        if not must_choose:
            target = integration or None
            if error_type in ("all", "integration"):
                events, events_total = store.list_events(
                    integration=target,
                    since=since,
                    until=until,
                    limit=ERROR_PAGE_SIZE,
                    offset=(epage - 1) * ERROR_PAGE_SIZE,
                )
            if error_type in ("all", "other"):
                errors, errors_total = store.list_errors(
                    integration=target,
                    since=since,
                    until=until,
                    category=category or None,
                    limit=ERROR_PAGE_SIZE,
                    offset=(opage - 1) * ERROR_PAGE_SIZE,
                )
            outbox, outbox_total = store.list_outbox(
                state=outbox_state,
                integration=target,
                limit=ERROR_PAGE_SIZE,
                offset=(xpage - 1) * ERROR_PAGE_SIZE,
            )
        filters = {
            "type": error_type,
            "integration": integration,
            "category": category,
            "since": since_raw,
            "until": until_raw,
            "ostate": outbox_state_raw,
        }
        now = datetime.now(timezone.utc)
        quick_ranges = [
            (label, (now - delta).strftime("%Y-%m-%dT%H:%M"))
            for label, delta in (
                ("Last hour", timedelta(hours=1)),
                ("Last 24 hours", timedelta(days=1)),
                ("Last 7 days", timedelta(days=7)),
                ("Last 30 days", timedelta(days=30)),
            )
        ]
        return self.page(
            "failnotify/errors.html",
            filters={k: v for k, v in filters.items() if v},
            error_type=error_type,
            integration=integration,
            category=category,
            since_raw=since_raw,
            until_raw=until_raw,
            outbox_state=outbox_state_raw,
            filter_errors=filter_errors,
            choices=choices,
            must_choose=must_choose,
            events=events,
            events_total=events_total,
            errors=errors,
            errors_total=errors_total,
            outbox=outbox,
            outbox_total=outbox_total,
            outbox_counts=store.outbox_counts() if sees_everything else None,
            epage=epage,
            opage=opage,
            xpage=xpage,
            epages=_pages(events_total),
            opages=_pages(errors_total),
            xpages=_pages(outbox_total),
            error_types=ERROR_TYPES,
            categories=ERROR_CATEGORIES,
            outbox_states=[s.value for s in OutboxState],
            quick_ranges=quick_ranges,
            is_admin=admin,
            utc=_utc,
        )

    def _back(self) -> Any:
        """Back to Error Management with the filters the action was posted from."""
        names = ("type", "integration", "ostate", "category", "since", "until")
        keep: dict[str, Any] = {name: request.form.get(name) for name in names}
        return redirect(url_for("ErrorsView.index", **{k: v for k, v in keep.items() if v}))

    def _send(self, outbox_id: int) -> str:
        from airflow_failnotify.service.passes import run_notification_pass

        summary = run_notification_pass(trigger="manual", only_ids=[outbox_id], evaluate=False)
        if summary.sent:
            flash(f"Notification #{outbox_id} was sent.", "success")
            return "sent"
        reasons = "; ".join(str(e.get("reason", "")) for e in summary.errors) or "it was not claimed"
        item = _store().get_outbox_item(outbox_id)
        state = item.state.value if item else "unknown"
        flash(f"Notification #{outbox_id} was not sent (now {state}): {reasons}", "danger")
        return state

    @expose("/outbox/<int:outbox_id>/send", methods=["POST"])
    @auth.admin_required
    def send_now(self, outbox_id: int) -> Any:
        item = _store().get_outbox_item(outbox_id)
        if item is None:
            flash(f"There is no notification #{outbox_id}.", "warning")
        elif item.state is not OutboxState.PENDING:
            flash(
                f"Notification #{outbox_id} is {item.state.value}: Send now works on pending notifications "
                "only (a sent notification is never sent again). Nothing was sent.",
                "warning",
            )
        else:
            self._send(outbox_id)
        return self._back()

    @expose("/outbox/<int:outbox_id>/retry", methods=["POST"])
    @auth.admin_required
    def retry(self, outbox_id: int) -> Any:
        item = _store().get_outbox_item(outbox_id)
        if item is None:
            flash(f"There is no notification #{outbox_id}.", "warning")
        elif not _store().requeue(outbox_id):
            flash(
                f"Notification #{outbox_id} is {item.state.value}: only failed notifications can be retried "
                "(a sent notification is never sent again). Nothing was sent.",
                "warning",
            )
        else:
            self._send(outbox_id)
        return self._back()


# ----------------------------------------------------------------------------------------------- Settings


def next_run(cron: str, now: datetime | None = None) -> datetime | None:
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

        store = _store()
        stored = store.get_setting(schedule.SETTING_KEY)
        configured = fn_settings.get_option("notification_schedule").strip()
        if configured == schedule.DEFAULT_SCHEDULE:  # the option's own default: not a choice anyone made
            configured = ""
        cron, source = schedule.resolve(stored, configured)
        now = datetime.now(timezone.utc)
        last = store.last_pass()
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
            stored=stored,
            last_pass=last,
            next_run=next_run(cron, now),
            now=now,
            utc=_utc,
        )

    @expose("/", methods=["GET"])
    @auth.admin_required
    def index(self) -> Any:
        from airflow_failnotify.core import schedule

        stored = _store().get_setting(schedule.SETTING_KEY) or ""
        return self._page(selected=stored)

    @expose("/", methods=["POST"])
    @auth.admin_required
    def save(self) -> Any:
        from airflow_failnotify.core import schedule

        value = (request.form.get("schedule") or "").strip()
        if value and value not in schedule.PRESET_VALUES:
            return self._page(
                selected=value, error="choose one of the schedules in the list", status=HTTP_UNPROCESSABLE
            )
        _store().set_setting(schedule.SETTING_KEY, value or None)
        if value:
            flash(
                f"Post Failure Notification schedule set to {schedule.label_for(value)} ({value} UTC). "
                "The job picks it up at the next parse of its DAG.",
                "success",
            )
        else:
            flash("The schedule setting was cleared: the configuration (or the default) applies.", "success")
        return redirect(url_for("SettingsView.index"))
