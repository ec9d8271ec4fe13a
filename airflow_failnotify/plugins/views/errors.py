"""Error Management / Global Failures: integration errors, other errors and the outbox (Send now, Retry)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import flash, redirect, request, url_for
from flask_appbuilder import expose

from airflow_failnotify.core.job_failures import NO_FAILED_TASK, task_instance_label
from airflow_failnotify.core.model import OutboxState
from airflow_failnotify.core.text import first_line, try_label
from airflow_failnotify.lookups import dag_listing
from airflow_failnotify.plugins import auth, forms
from airflow_failnotify.plugins.views.base import ROUTE_BASE, FailnotifyBaseView, int_arg, store, utc
from airflow_failnotify.service import error_listing as el
from airflow_failnotify.service import outbox_actions


class ErrorsView(FailnotifyBaseView):
    """Error Management / Global Failures: integration errors, other errors and the outbox."""

    route_base = f"{ROUTE_BASE}/errors"
    nav_tab = "errors"

    @expose("/", methods=["GET"])
    def index(self) -> Any:
        fs = store()
        admin = auth.is_admin()
        filters = el.Filters.from_args(request.args)
        if filters.integration:
            auth.require_dag_access(filters.integration)
        readable = auth.authorized_dag_ids()
        sees_everything = admin or dag_listing.all_dag_ids() <= readable
        must_choose = not filters.integration and not sees_everything
        epage, opage, xpage = int_arg("epage"), int_arg("opage"), int_arg("xpage")
        listing = el.Listing() if must_choose else el.listing(fs, filters, epage, opage, xpage)
        return self.page(
            "failnotify/errors.html",
            filters=filters.given(),
            error_type=filters.error_type,
            integration=filters.integration,
            category=filters.category,
            since_raw=filters.since_raw,
            until_raw=filters.until_raw,
            outbox_state=filters.outbox_state_raw,
            filter_errors=forms.FormErrors(fields=dict(filters.errors)),
            choices=el.choices(fs, filters.integration, readable),
            must_choose=must_choose,
            events=listing.events,
            events_total=listing.events_total,
            errors=listing.errors,
            errors_total=listing.errors_total,
            outbox=listing.outbox,
            outbox_total=listing.outbox_total,
            run_tasks=listing.run_tasks,
            no_failed_task=NO_FAILED_TASK,
            try_label=try_label,
            task_label=task_instance_label,
            first_line=first_line,
            outbox_counts=fs.outbox_counts() if sees_everything else None,
            epage=epage,
            opage=opage,
            xpage=xpage,
            epages=el.pages(listing.events_total),
            opages=el.pages(listing.errors_total),
            xpages=el.pages(listing.outbox_total),
            error_types=el.ERROR_TYPES,
            categories=el.ERROR_CATEGORIES,
            outbox_states=[s.value for s in OutboxState],
            quick_ranges=el.quick_ranges(datetime.now(timezone.utc)),
            is_admin=admin,
            utc=utc,
        )

    def _back(self) -> Any:
        """Back to Error Management with the filters the action was posted from."""
        keep: dict[str, Any] = {name: request.form.get(name) for name in el.FILTER_NAMES}
        return redirect(url_for("ErrorsView.index", **{k: v for k, v in keep.items() if v}))

    @expose("/outbox/<int:outbox_id>/send", methods=["POST"])
    @auth.admin_required
    def send_now(self, outbox_id: int) -> Any:
        outcome = outbox_actions.send_now(store(), outbox_id)
        flash(outcome.message, outcome.level)
        return self._back()

    @expose("/outbox/<int:outbox_id>/retry", methods=["POST"])
    @auth.admin_required
    def retry(self, outbox_id: int) -> Any:
        outcome = outbox_actions.retry(store(), outbox_id)
        flash(outcome.message, outcome.level)
        return self._back()
