"""Configure Failure Notification of one integration: Save/Update, Test, Unregister (with confirmation)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flask import flash, redirect, request, url_for
from flask_appbuilder import expose

from airflow_failnotify.core.config import ConfigValidationError
from airflow_failnotify.core.model import OutboxState, Registration
from airflow_failnotify.lookups import connections, dag_listing
from airflow_failnotify.plugins import auth, forms
from airflow_failnotify.plugins.views.base import (
    CONNECTIONS_URL,
    HTTP_UNPROCESSABLE,
    ROUTE_BASE,
    FailnotifyBaseView,
    actor,
    store,
    utc,
)
from airflow_failnotify.service import configuration
from airflow_failnotify.service.test_email import TestOutcome, send_test_emails

if TYPE_CHECKING:
    from flask import Response

ACTIONS = ("save", "test")
HTTP_CONFLICT = 409
AUDIT_ROWS = 20


def covering_integration(dag_id: str) -> str | None:
    """The integration whose backward DAG ``dag_id`` is; None when it is not one."""
    from airflow_failnotify.core.model import Direction

    found = store().lookup_dag(dag_id, max_age=0)
    if found is not None and found[1] is Direction.BACKWARD:
        return found[0]
    return None


def _backward_choices(dag_id: str, values: Mapping[str, Any], *, can_edit: bool) -> list[str]:
    """DAGs the backward direction may name (the user's, this one left out), plus the current one."""
    choices = dag_listing.active_dag_ids(auth.authorized_dag_ids(write=can_edit), exclude=[dag_id])
    current = str(values.get("backward_integration") or "")
    if current and current not in choices:
        choices.append(current)
    return choices


def _post_errors(
    dag_id: str, values: Mapping[str, Any], action: str
) -> tuple[Registration | None, forms.FormErrors]:
    """The registration a posted form describes, and every reason to refuse it (shown at its field)."""
    errors = forms.FormErrors()
    parsed: Registration | None = None
    try:
        parsed = configuration.validate(
            dag_id, forms.registration_dict(values), may_edit=lambda d: auth.can_access_dag(d, write=True)
        )
    except ConfigValidationError as err:
        forms.map_errors(err.errors, errors)
    if action not in ACTIONS:
        errors.add(None, "Unknown action: use Save, Update or Test.")
    return parsed, errors


def _silence_info(
    dag_id: str, *, errors: forms.FormErrors | None = None, values: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The silence panel: the silence in force (its own or that of all), what it holds, the form."""
    from airflow_failnotify.store import utcnow

    active = store().active_silence_for(dag_id, utcnow())
    held = {h.integration: h.count for h in store().held_notifications()}
    own = any(s.integration == dag_id for s in store().list_silences(now=utcnow()))
    return {
        "active": active,
        "own": own,
        "held": held.get(dag_id, 0),
        "errors": errors or forms.FormErrors(),
        "posted": dict(values or {}),
    }


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
        silence: Mapping[str, Any] | None = None,
    ) -> Response:
        can_edit = auth.can_access_dag(dag_id, write=True)
        history, history_total = (
            store().list_audit(integration=dag_id, limit=AUDIT_ROWS) if registration else ([], 0)
        )
        selected = [
            str(values.get(key) or "") for key in ("smtp_conn_id", f"{forms.BACKWARD_PREFIX}smtp_conn_id")
        ]
        flags: list[Any] = []
        if registration is not None:
            from airflow_failnotify.service.health import flags_for

            flags = flags_for([registration.integration]).get(registration.integration, [])
        return self.page(
            "failnotify/configure.html",
            status=status,
            dag_id=dag_id,
            registration=registration,
            flags=flags,
            can_edit=can_edit,
            values=values,
            errors=errors or forms.FormErrors(),
            outcomes=outcomes,
            servers=connections.server_choices(selected),
            backward_choices=_backward_choices(dag_id, values, can_edit=can_edit),
            threshold_range=forms.THRESHOLD_RANGE,
            connections_url=CONNECTIONS_URL,
            prefix=forms.BACKWARD_PREFIX,
            covered_by=None,
            history=history,
            history_total=history_total,
            utc=utc,
            silence_info=_silence_info(dag_id, **(silence or {})),
        )

    def _covered(self, dag_id: str, owner: str, status: int = 200) -> Response:
        """The page of a DAG that is the backward DAG of another integration: it says so, no form."""
        return self.page(
            "failnotify/configure.html",
            status=status,
            dag_id=dag_id,
            registration=None,
            covered_by=owner,
            can_edit=False,
            outcomes=(),
            errors=forms.FormErrors(),
            history=[],
            history_total=0,
            utc=utc,
        )

    @expose("/<string:dag_id>", methods=["GET"])
    @auth.dag_access_required(write=False)
    def index(self, dag_id: str) -> Any:
        owner = covering_integration(dag_id)
        if owner is not None:
            return self._covered(dag_id, owner)
        registration = store().get_registration(dag_id)
        if registration is not None:
            values = forms.values_from_registration(registration)
        else:
            servers = connections.email_servers()
            values = forms.default_values(dag_id, servers[0].conn_id if len(servers) == 1 else "")
        return self._form(dag_id, values, registration=registration)

    @expose("/<string:dag_id>", methods=["POST"])
    @auth.dag_access_required(write=True)
    def save(self, dag_id: str) -> Any:
        owner = covering_integration(dag_id)
        if owner is not None:
            return self._covered(dag_id, owner, status=HTTP_CONFLICT)
        registration = store().get_registration(dag_id)
        action = request.form.get("action", "save")
        values = forms.values_from_post(dag_id, request.form)
        parsed, errors = _post_errors(dag_id, values, action)
        if errors or parsed is None:
            return self._form(
                dag_id, values, registration=registration, errors=errors, status=HTTP_UNPROCESSABLE
            )
        if action == "test":
            outcomes = send_test_emails(parsed)
            return self._form(dag_id, values, registration=registration, outcomes=outcomes)
        try:
            configuration.save(store(), parsed, actor=actor())
        except ConfigValidationError as err:  # a DAG already used by another registration
            forms.map_errors(err.errors, errors)
            return self._form(
                dag_id, values, registration=registration, errors=errors, status=HTTP_UNPROCESSABLE
            )
        verb = "updated" if registration is not None else "saved: failure notification is registered"
        flash(f"The failure notification of {dag_id} was {verb}.", "success")
        return redirect(url_for("ConfigureView.index", dag_id=dag_id))

    @expose("/<string:dag_id>/unregister", methods=["GET"])
    @auth.dag_access_required(write=True)
    def confirm_unregister(self, dag_id: str) -> Any:
        registration = store().get_registration(dag_id)
        if registration is None:
            flash(f"{dag_id} is not registered for failure notification.", "info")
            return redirect(url_for("ConfigureView.index", dag_id=dag_id))
        outbox, _ = store().list_outbox(state=OutboxState.PENDING, integration=dag_id, limit=1)
        return self.page(
            "failnotify/unregister.html", dag_id=dag_id, registration=registration, has_pending=bool(outbox)
        )

    @expose("/<string:dag_id>/unregister", methods=["POST"])
    @auth.dag_access_required(write=True)
    def unregister(self, dag_id: str) -> Any:
        if request.form.get("confirm") != "yes":
            return redirect(url_for("ConfigureView.confirm_unregister", dag_id=dag_id))
        if store().unregister(dag_id, actor=actor()):
            flash(f"Failure notification of {dag_id} was unregistered.", "success")
        else:
            flash(f"{dag_id} was not registered for failure notification.", "info")
        return redirect(url_for("IntegrationsView.index"))

    @expose("/<string:dag_id>/silence", methods=["POST"])
    @auth.dag_access_required(write=True)
    def silence(self, dag_id: str) -> Any:
        """Silence this integration until a time (a duration or a UTC time), with a reason."""
        from airflow_failnotify.service.silences import SilenceError, parse_until
        from airflow_failnotify.service.silences import silence as set_silence
        from airflow_failnotify.store import utcnow

        registration = store().get_registration(dag_id)
        if registration is None:
            flash(f"{dag_id} is not registered for failure notification: nothing to silence.", "info")
            return redirect(url_for("ConfigureView.index", dag_id=dag_id))
        posted = {key: (request.form.get(key) or "").strip() for key in ("until", "reason")}
        now = utcnow()
        try:
            created = set_silence(
                store(), dag_id, parse_until(posted["until"], now), posted["reason"], actor(), now
            )
        except SilenceError as err:
            errors = forms.FormErrors()
            errors.add(err.field, str(err))
            return self._form(
                dag_id,
                forms.values_from_registration(registration),
                registration=registration,
                status=HTTP_UNPROCESSABLE,
                silence={"errors": errors, "values": posted},
            )
        flash(f"{dag_id} is silenced until {utc(created.until)}: its notifications are held.", "success")
        return redirect(url_for("ConfigureView.index", dag_id=dag_id))

    @expose("/<string:dag_id>/unsilence", methods=["POST"])
    @auth.dag_access_required(write=True)
    def unsilence(self, dag_id: str) -> Any:
        """Lift this integration's silence: what it held goes out at the next pass."""
        from airflow_failnotify.service.silences import SilenceError
        from airflow_failnotify.service.silences import unsilence as lift
        from airflow_failnotify.store import utcnow

        try:
            released = lift(store(), dag_id, actor(), utcnow())
        except SilenceError as err:
            flash(f"{err}.", "info")
        else:
            held = sum(r.count for r in released)
            flash(f"The silence of {dag_id} was lifted; {held} held notification(s) go out now.", "success")
        return redirect(url_for("ConfigureView.index", dag_id=dag_id))
