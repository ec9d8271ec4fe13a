"""Error Management / Global Failures: integration errors, other errors and the outbox (Send now, Retry)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from flask import flash, redirect, request, url_for
from flask_appbuilder import expose

from airflow_failnotify.core.job_failures import NO_FAILED_TASK, failed_tasks_of_events, task_instance_label
from airflow_failnotify.core.model import EventKind, OutboxState
from airflow_failnotify.core.text import first_line, try_label
from airflow_failnotify.lookups import dag_listing
from airflow_failnotify.plugins import auth, forms
from airflow_failnotify.plugins.views.base import ROUTE_BASE, FailnotifyBaseView, int_arg, store, utc

if TYPE_CHECKING:
    from airflow_failnotify.store import Store

ERROR_PAGE_SIZE = 25
ERROR_TYPES = (("all", "All errors"), ("integration", "Integration errors"), ("other", "Other errors"))
ERROR_CATEGORIES = (
    ("send", "Sending failed"),
    ("config", "Configuration"),
    ("store", "Store"),
    ("capture", "Capture"),
    ("silence", "Silences"),
)
QUICK_RANGES = (
    ("Last hour", timedelta(hours=1)),
    ("Last 24 hours", timedelta(days=1)),
    ("Last 7 days", timedelta(days=7)),
    ("Last 30 days", timedelta(days=30)),
)
# The filters an outbox action keeps when it redirects back to the page.
FILTER_NAMES = ("type", "integration", "ostate", "category", "since", "until")


def parse_moment(raw: str) -> datetime:
    """A ``datetime-local`` value (or a date) as UTC; ValueError when it is neither."""
    text = raw.strip()
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _pages(total: int) -> int:
    return max(1, math.ceil(total / ERROR_PAGE_SIZE))


@dataclass
class Filters:
    """The page's filters as the user gave them (``*_raw``) and as they apply; bad ones are reported."""

    error_type: str = "all"
    integration: str = ""
    category: str = ""
    outbox_state_raw: str = ""
    outbox_state: OutboxState | None = None
    since_raw: str = ""
    until_raw: str = ""
    since: datetime | None = None
    until: datetime | None = None
    errors: forms.FormErrors = field(default_factory=forms.FormErrors)

    @classmethod
    def from_request(cls) -> Filters:
        filters = cls(
            error_type=request.args.get("type", "all"),
            integration=(request.args.get("integration") or "").strip()[:250],
            category=request.args.get("category", ""),
            outbox_state_raw=request.args.get("ostate", ""),
            since_raw=(request.args.get("since") or "").strip(),
            until_raw=(request.args.get("until") or "").strip(),
        )
        if filters.error_type not in dict(ERROR_TYPES):
            filters.error_type = "all"
        if filters.category not in dict(ERROR_CATEGORIES):
            filters.category = ""
        filters._parse_outbox_state()
        filters.since = filters._moment("since", filters.since_raw)
        filters.until = filters._moment("until", filters.until_raw)
        return filters

    def _parse_outbox_state(self) -> None:
        if not self.outbox_state_raw:
            return
        try:
            self.outbox_state = OutboxState(self.outbox_state_raw)
        except ValueError:
            self.errors.add("ostate", "unknown state")
            self.outbox_state_raw = ""

    def _moment(self, name: str, raw: str) -> datetime | None:
        if not raw:
            return None
        try:
            return parse_moment(raw)
        except ValueError:
            self.errors.add(name, "not a date and time (YYYY-MM-DD HH:MM, UTC); ignored")
            return None

    def given(self) -> dict[str, str]:
        """The filters that are set, by query argument name."""
        filters = {
            "type": self.error_type,
            "integration": self.integration,
            "category": self.category,
            "since": self.since_raw,
            "until": self.until_raw,
            "ostate": self.outbox_state_raw,
        }
        return {k: v for k, v in filters.items() if v}


@dataclass
class Listing:
    """One page of each table (events, other errors, outbox) and their totals."""

    events: list[Any] = field(default_factory=list)
    events_total: int = 0
    errors: list[Any] = field(default_factory=list)
    errors_total: int = 0
    outbox: list[Any] = field(default_factory=list)
    outbox_total: int = 0
    # Job (run) failures on this page: their failed task instances, by event id (as the mail lists them).
    run_tasks: dict[int, list[Any]] = field(default_factory=dict)


def _listing(fs: Store, filters: Filters, epage: int, opage: int, xpage: int) -> Listing:
    out = Listing()
    target = filters.integration or None
    if filters.error_type in ("all", "integration"):
        out.events, out.events_total = fs.list_events(
            integration=target,
            since=filters.since,
            until=filters.until,
            limit=ERROR_PAGE_SIZE,
            offset=(epage - 1) * ERROR_PAGE_SIZE,
        )
        runs = [e for e in out.events if e.kind is EventKind.RUN_FAILED]
        tasks = fs.task_failures_of_runs((e.dag_id, e.run_id) for e in runs)
        out.run_tasks = {e.id: failed_tasks_of_events(tasks, e.dag_id, e.run_id) for e in runs}
    if filters.error_type in ("all", "other"):
        out.errors, out.errors_total = fs.list_errors(
            integration=target,
            since=filters.since,
            until=filters.until,
            category=filters.category or None,
            limit=ERROR_PAGE_SIZE,
            offset=(opage - 1) * ERROR_PAGE_SIZE,
        )
    out.outbox, out.outbox_total = fs.list_outbox(
        state=filters.outbox_state,
        integration=target,
        limit=ERROR_PAGE_SIZE,
        offset=(xpage - 1) * ERROR_PAGE_SIZE,
    )
    return out


def _choices(fs: Store, integration: str, readable: set[str]) -> list[str]:
    """The integrations the filter offers: registered ones the user may read, plus the chosen one."""
    choices = sorted({reg.integration for reg in fs.list_registrations()} & readable)
    if integration and integration not in choices:
        choices = sorted([*choices, integration])
    return choices


def _quick_ranges(now: datetime) -> list[tuple[str, str]]:
    return [(label, (now - delta).strftime("%Y-%m-%dT%H:%M")) for label, delta in QUICK_RANGES]


class ErrorsView(FailnotifyBaseView):
    """Error Management / Global Failures: integration errors, other errors and the outbox."""

    route_base = f"{ROUTE_BASE}/errors"
    nav_tab = "errors"

    @expose("/", methods=["GET"])
    def index(self) -> Any:
        fs = store()
        admin = auth.is_admin()
        filters = Filters.from_request()
        if filters.integration:
            auth.require_dag_access(filters.integration)
        readable = auth.authorized_dag_ids()
        sees_everything = admin or dag_listing.all_dag_ids() <= readable
        must_choose = not filters.integration and not sees_everything
        epage, opage, xpage = int_arg("epage"), int_arg("opage"), int_arg("xpage")
        listing = Listing() if must_choose else _listing(fs, filters, epage, opage, xpage)
        return self.page(
            "failnotify/errors.html",
            filters=filters.given(),
            error_type=filters.error_type,
            integration=filters.integration,
            category=filters.category,
            since_raw=filters.since_raw,
            until_raw=filters.until_raw,
            outbox_state=filters.outbox_state_raw,
            filter_errors=filters.errors,
            choices=_choices(fs, filters.integration, readable),
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
            epages=_pages(listing.events_total),
            opages=_pages(listing.errors_total),
            xpages=_pages(listing.outbox_total),
            error_types=ERROR_TYPES,
            categories=ERROR_CATEGORIES,
            outbox_states=[s.value for s in OutboxState],
            quick_ranges=_quick_ranges(datetime.now(timezone.utc)),
            is_admin=admin,
            utc=utc,
        )

    def _back(self) -> Any:
        """Back to Error Management with the filters the action was posted from."""
        keep: dict[str, Any] = {name: request.form.get(name) for name in FILTER_NAMES}
        return redirect(url_for("ErrorsView.index", **{k: v for k, v in keep.items() if v}))

    def _send(self, outbox_id: int) -> str:
        from airflow_failnotify.service.passes import run_notification_pass

        summary = run_notification_pass(trigger="manual", only_ids=[outbox_id], evaluate=False)
        if summary.sent:
            flash(f"Notification #{outbox_id} was sent.", "success")
            return "sent"
        reasons = "; ".join(str(e.get("reason", "")) for e in summary.errors) or "it was not claimed"
        item = store().get_outbox_item(outbox_id)
        state = item.state.value if item else "unknown"
        flash(f"Notification #{outbox_id} was not sent (now {state}): {reasons}", "danger")
        return state

    @expose("/outbox/<int:outbox_id>/send", methods=["POST"])
    @auth.admin_required
    def send_now(self, outbox_id: int) -> Any:
        item = store().get_outbox_item(outbox_id)
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
        item = store().get_outbox_item(outbox_id)
        if item is None:
            flash(f"There is no notification #{outbox_id}.", "warning")
        elif not store().requeue(outbox_id):
            flash(
                f"Notification #{outbox_id} is {item.state.value}: only failed notifications can be retried "
                "(a sent notification is never sent again). Nothing was sent.",
                "warning",
            )
        else:
            self._send(outbox_id)
        return self._back()
