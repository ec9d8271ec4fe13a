"""Error Management: integration errors, other errors and the outbox (filters, paging), and the
admin-level actions Send now and Retry of one notification."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from airflow_failnotify.api import problems, security, serialize
from airflow_failnotify.core.config import FieldError
from airflow_failnotify.core.model import OutboxState
from airflow_failnotify.lookups import access, dag_listing
from airflow_failnotify.service import error_listing as el
from airflow_failnotify.service import outbox_actions

router = APIRouter(tags=["errors"])


def _store() -> Any:
    from airflow_failnotify.store import get_store

    return get_store()


@router.get("/errors", summary="Integration errors, other errors and the outbox, filtered")
def list_errors(
    request: Request,
    type: str = Query("all", description="all, integration or other"),  # noqa: A002 - the page's name
    integration: str = Query(""),
    category: str = Query("", description="send, config, store or capture"),
    since: str = Query("", description="UTC, YYYY-MM-DDTHH:MM"),
    until: str = Query("", description="UTC, YYYY-MM-DDTHH:MM"),
    ostate: str = Query("", description="outbox state: pending, sending, sent, failed, ..."),
    epage: int = Query(1, ge=1),
    opage: int = Query(1, ge=1),
    xpage: int = Query(1, ge=1),
    user: Any = Depends(security.authenticated),  # noqa: B008
) -> dict[str, Any]:
    filters = el.Filters.from_args(dict(request.query_params))
    if filters.errors:
        raise problems.unprocessable(
            [FieldError(name, message) for name, message in filters.errors.items()], where="query"
        )
    if filters.integration and not access.can_access_dag(user, filters.integration):
        raise HTTPException(403, f"you may not see the integration {filters.integration!r}")
    store = _store()
    admin = access.is_admin(user)
    readable = access.authorized_dag_ids(user)
    sees_everything = admin or dag_listing.all_dag_ids() <= readable
    must_choose = not filters.integration and not sees_everything
    listing = el.Listing() if must_choose else el.listing(store, filters, epage, opage, xpage)
    return {
        "filters": filters.given(),
        "must_choose": must_choose,
        "choices": el.choices(store, filters.integration, readable),
        "events": [serialize.event(e) for e in listing.events],
        "events_total": listing.events_total,
        "errors": [serialize.error_row(e) for e in listing.errors],
        "errors_total": listing.errors_total,
        "outbox": [serialize.outbox_item(o) for o in listing.outbox],
        "outbox_total": listing.outbox_total,
        "outbox_counts": store.outbox_counts() if sees_everything else None,
        "page_size": el.ERROR_PAGE_SIZE,
        "pages": {
            "events": el.pages(listing.events_total),
            "errors": el.pages(listing.errors_total),
            "outbox": el.pages(listing.outbox_total),
        },
        "error_types": [list(t) for t in el.ERROR_TYPES],
        "categories": [list(c) for c in el.ERROR_CATEGORIES],
        "outbox_states": [s.value for s in OutboxState],
        "quick_ranges": [list(r) for r in el.quick_ranges(datetime.now(timezone.utc))],
        "is_admin": admin,
    }


def _outcome(outcome: outbox_actions.ActionOutcome) -> dict[str, Any]:
    if outcome.state == "unknown" and not outcome.sent and outcome.level == "warning":
        raise problems.not_found(outcome.message)
    if outcome.level == "warning":
        raise HTTPException(409, outcome.message)
    return {
        "outbox_id": outcome.outbox_id,
        "sent": outcome.sent,
        "state": outcome.state,
        "message": outcome.message,
    }


@router.post("/outbox/{outbox_id}/send", summary="Send a pending notification now (admin)")
def send_now(outbox_id: int, user: Any = Depends(security.admin)) -> dict[str, Any]:  # noqa: B008
    return _outcome(outbox_actions.send_now(_store(), outbox_id))


@router.post("/outbox/{outbox_id}/retry", summary="Retry a failed notification (admin)")
def retry(outbox_id: int, user: Any = Depends(security.admin)) -> dict[str, Any]:  # noqa: B008
    return _outcome(outbox_actions.retry(_store(), outbox_id))
