"""The Broken DAG notification kind (issue 14): what the rules draft and how the mail reads.

A ``dag_import_error`` event is recorded once per *broken episode* of a registered DAG (from the first
time its file is seen failing to import until it imports again; service/broken_dags.py). The rules make
one Broken DAG notification of each such event, for any registered direction whatever its enabled
flags: while a DAG cannot load no other kind can fire, so this is the one mail its people get. The
event is not activity, and a DAG whose status is broken gets no inactivity notification (rules.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from airflow_failnotify.core.headers import notification_for
from airflow_failnotify.core.model import (
    Direction,
    DirectionSettings,
    EventKind,
    FailureEvent,
    NotificationDraft,
    NotificationKind,
)
from airflow_failnotify.core.notification import Notification

MAX_IMPORT_ERROR_CHARS = 8_000


def broken_dag_drafts(
    integration: str, direction: Direction, events: Iterable[FailureEvent], now: datetime
) -> list[NotificationDraft]:
    """One draft per import-error event; the event's run id names the episode, so the dedupe key does."""
    return [
        NotificationDraft(
            kind=NotificationKind.BROKEN_DAG,
            integration=integration,
            direction=direction,
            dedupe_key=f"broken_dag:{integration}:{direction.value}:{event.run_id}",
            created_at=now,
            events=(event,),
            run_id=event.run_id,
        )
        for event in events
        if event.kind is EventKind.DAG_IMPORT_ERROR
    ]


def render_broken_dag(
    draft: NotificationDraft,
    settings: DirectionSettings,
    *,
    dag_id: str,
    base_url: str | None,
    now: datetime | None,
) -> Notification:
    """ "Broken DAG: <integration> (<direction>)": the import error's text, its file and since when."""
    from airflow_failnotify.core import emails, text

    event = draft.events[0] if draft.events else None
    error, cut = text.truncate(
        text.clean_text(event.error_message if event else "").strip(), MAX_IMPORT_ERROR_CHARS
    )
    context: dict[str, Any] = {
        "integration": text.one_line(draft.integration, text.MAX_DAG_ID_CHARS),
        "direction": draft.direction.value,
        "dag_id": text.one_line(dag_id, text.MAX_DAG_ID_CHARS),
        "file": text.one_line(event.entity or "") if event else "",
        "when": text.format_utc(event.occurred_at if event else draft.created_at),
        "detected": text.format_utc(draft.created_at),
        "error": error,
        "error_note": f"[truncated: {cut:,} more characters; Airflow's UI shows it all]" if cut else "",
        "dag_url": text.dag_url(base_url, dag_id),
        "has_base_url": text.base_url_of(base_url) is not None,
    }
    body, html = emails._render("broken_dag", context)  # noqa: SLF001 - the one template environment
    return notification_for(draft, settings, body, html, dag_id=dag_id, base_url=base_url, now=now)
