"""Error Management's listing: the filters as given, and one page of each table (events, other errors,
outbox). Shared by the FAB page and the JSON API; both read the filters from query arguments of the
same names (``type``, ``integration``, ``category``, ``since``, ``until``, ``ostate``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_failnotify.core.job_failures import failed_tasks_of_events
from airflow_failnotify.core.model import EventKind, OutboxState

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
BAD_MOMENT = "not a date and time (YYYY-MM-DD HH:MM, UTC); ignored"


def parse_moment(raw: str) -> datetime:
    """A ``datetime-local`` value (or a date) as UTC; ValueError when it is neither."""
    moment = datetime.fromisoformat(raw.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def pages(total: int) -> int:
    return max(1, math.ceil(total / ERROR_PAGE_SIZE))


@dataclass
class Filters:
    """The filters as the user gave them (``*_raw``) and as they apply; bad ones are in ``errors``
    (query argument name -> message) and ignored."""

    error_type: str = "all"
    integration: str = ""
    category: str = ""
    outbox_state_raw: str = ""
    outbox_state: OutboxState | None = None
    since_raw: str = ""
    until_raw: str = ""
    since: datetime | None = None
    until: datetime | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> Filters:
        filters = cls(
            error_type=args.get("type") or "all",
            integration=(args.get("integration") or "").strip()[:250],
            category=args.get("category") or "",
            outbox_state_raw=args.get("ostate") or "",
            since_raw=(args.get("since") or "").strip(),
            until_raw=(args.get("until") or "").strip(),
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
            self.errors["ostate"] = "unknown state"
            self.outbox_state_raw = ""

    def _moment(self, name: str, raw: str) -> datetime | None:
        if not raw:
            return None
        try:
            return parse_moment(raw)
        except ValueError:
            self.errors[name] = BAD_MOMENT
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


def listing(store: Any, filters: Filters, epage: int, opage: int, xpage: int) -> Listing:
    out = Listing()
    target = filters.integration or None
    if filters.error_type in ("all", "integration"):
        out.events, out.events_total = store.list_events(
            integration=target,
            since=filters.since,
            until=filters.until,
            limit=ERROR_PAGE_SIZE,
            offset=(epage - 1) * ERROR_PAGE_SIZE,
        )
        runs = [e for e in out.events if e.kind is EventKind.RUN_FAILED]
        tasks = store.task_failures_of_runs((e.dag_id, e.run_id) for e in runs)
        out.run_tasks = {e.id: failed_tasks_of_events(tasks, e.dag_id, e.run_id) for e in runs}
    if filters.error_type in ("all", "other"):
        out.errors, out.errors_total = store.list_errors(
            integration=target,
            since=filters.since,
            until=filters.until,
            category=filters.category or None,
            limit=ERROR_PAGE_SIZE,
            offset=(opage - 1) * ERROR_PAGE_SIZE,
        )
    out.outbox, out.outbox_total = store.list_outbox(
        state=filters.outbox_state,
        integration=target,
        limit=ERROR_PAGE_SIZE,
        offset=(xpage - 1) * ERROR_PAGE_SIZE,
    )
    return out


def choices(store: Any, integration: str, readable: set[str]) -> list[str]:
    """The integrations the filter offers: registered ones the user may read, plus the chosen one."""
    found = sorted({reg.integration for reg in store.list_registrations()} & readable)
    if integration and integration not in found:
        found = sorted([*found, integration])
    return found


def quick_ranges(now: datetime) -> list[tuple[str, str]]:
    return [(label, (now - delta).strftime("%Y-%m-%dT%H:%M")) for label, delta in QUICK_RANGES]
