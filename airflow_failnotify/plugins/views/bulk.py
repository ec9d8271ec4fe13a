"""Configure selected: one form applied to the selected integrations that are not configured yet."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flask import abort, request
from flask_appbuilder import expose

from airflow_failnotify.core.config import NOTIFICATION_DAG_ID, ConfigValidationError, bulk_registration
from airflow_failnotify.lookups import connections, dag_listing
from airflow_failnotify.plugins import auth, forms
from airflow_failnotify.plugins.views.base import (
    CONNECTIONS_URL,
    HTTP_UNPROCESSABLE,
    ROUTE_BASE,
    FailnotifyBaseView,
    actor,
    store,
)

if TYPE_CHECKING:
    from flask import Response

MAX_SELECTED = 500
NOTHING_SELECTED = "Select one or more integrations on the Integrations page first."


def _taken() -> dict[str, str]:
    """Every DAG a registration already uses (forward or backward) -> the registration's integration."""
    return {
        d: reg.integration
        for reg in store().list_registrations()
        for d in (reg.integration, reg.backward_integration)
        if d
    }


def _why_skipped(dag_id: str, *, existing: set[str], editable: set[str], taken: Mapping[str, str]) -> str:
    """Why ``dag_id`` cannot be configured here; empty when it can."""
    if dag_id == NOTIFICATION_DAG_ID:
        return "the notification DAG itself cannot be registered"
    if dag_id not in existing or dag_id not in editable:
        return "you may not change this DAG (or it does not exist)"
    if dag_id in taken:
        owner = taken[dag_id]
        return "already configured" if owner == dag_id else f"already the backward DAG of {owner}"
    return ""


def _common_errors(dag_ids: Sequence[str], common: Mapping[str, str]) -> forms.FormErrors:
    """The form's own errors (the DAGs are checked one by one later)."""
    errors = forms.FormErrors()
    if not dag_ids:
        errors.add(None, NOTHING_SELECTED)
    try:
        bulk_registration(dag_ids[0] if dag_ids else "placeholder", **common)
    except ConfigValidationError as err:
        for error in err.errors:
            if error.path != "integration":  # each DAG is checked below, one by one
                errors.add(forms.field_for_path(error.path), error.message)
    return errors


class BulkView(FailnotifyBaseView):
    """Configure selected: one form applied to the selected integrations not configured yet."""

    route_base = f"{ROUTE_BASE}/bulk"
    nav_tab = "integrations"

    def _selection(self, dag_ids: Sequence[str]) -> tuple[list[str], dict[str, str]]:
        """(may be configured, skipped with why) before touching the store."""
        editable = auth.authorized_dag_ids(write=True)
        if not editable:
            abort(auth.forbidden("You may not change the failure notification of any integration."))
        existing = dag_listing.all_dag_ids()
        taken = _taken()
        ok: list[str] = []
        skipped: dict[str, str] = {}
        for dag_id in dict.fromkeys(dag_ids):
            why = _why_skipped(dag_id, existing=existing, editable=editable, taken=taken)
            if why:
                skipped[dag_id] = why
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
            servers=connections.email_servers(),
            connections_url=CONNECTIONS_URL,
        )

    @expose("/", methods=["GET"])
    def index(self) -> Any:
        dag_ids = [d for d in request.args.getlist("dag_id") if d][:MAX_SELECTED]
        servers = connections.email_servers()
        values = {"smtp_conn_id": servers[0].conn_id if len(servers) == 1 else ""}
        errors = forms.FormErrors()
        if not dag_ids:
            errors.add(None, NOTHING_SELECTED)
        return self._form(dag_ids, values, errors)

    @expose("/", methods=["POST"])
    def apply(self) -> Any:
        dag_ids = [d for d in request.form.getlist("dag_id") if d][:MAX_SELECTED]
        values = {name: (request.form.get(name) or "").strip() for name in forms.BULK_FIELDS}
        common = dict(values)
        errors = _common_errors(dag_ids, common)
        ok, skipped = self._selection(dag_ids)
        if errors:
            return self._form(dag_ids, values, errors, status=HTTP_UNPROCESSABLE)
        registrations = []
        for dag_id in ok:
            try:
                registrations.append(bulk_registration(dag_id, **common))
            except ConfigValidationError as err:
                skipped[dag_id] = str(err)
        configured, refused = store().register_new_only(registrations, actor=actor("bulk"))
        skipped.update(refused)
        return self.page(
            "failnotify/bulk_result.html",
            configured=configured,
            skipped=dict(sorted(skipped.items())),
            values=values,
        )
