"""Configure selected: one form applied to the selected integrations that are not configured yet."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flask import abort, request
from flask_appbuilder import expose

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
from airflow_failnotify.service import bulk

if TYPE_CHECKING:
    from flask import Response

MAX_SELECTED = bulk.MAX_SELECTED
NOTHING_SELECTED = "Select one or more integrations on the Integrations page first."


def _common_errors(dag_ids: Sequence[str], common: Mapping[str, str]) -> forms.FormErrors:
    """The form's own errors (the DAGs are checked one by one later)."""
    errors = forms.FormErrors()
    if not dag_ids:
        errors.add(None, NOTHING_SELECTED)
    for error in bulk.common_errors(dag_ids, common):
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
        selection = bulk.select(store(), dag_ids, existing=dag_listing.all_dag_ids(), editable=editable)
        return selection.ok, selection.skipped

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
        configured, skipped = bulk.apply(store(), bulk.Selection(ok, skipped), common, actor=actor("bulk"))
        return self.page(
            "failnotify/bulk_result.html",
            configured=configured,
            skipped=skipped,
            values=values,
        )
