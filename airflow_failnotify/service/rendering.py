"""What a mail says: its outbox rows rendered into one channel-neutral notification."""

from __future__ import annotations

from email.message import Message

from airflow_failnotify.core.digest import Part, combine, storm_digest
from airflow_failnotify.core.emails import ERROR_TRACE_FILENAME, PDF_MIME_TYPE, render_notification
from airflow_failnotify.core.mime import to_mime_message
from airflow_failnotify.core.model import NotificationKind
from airflow_failnotify.core.notification import Attachment, Notification
from airflow_failnotify.core.outbox import Mail
from airflow_failnotify.core.storm import StormCap
from airflow_failnotify.store import OutboxItem


class MailRenderer:
    """Renders a mail: one row as itself; several rows of one integration-direction as one mail; the
    storm cap's held rows of one recipient set as its digest."""

    def __init__(self, base_url: str | None, *, storm: StormCap | None = None) -> None:
        self.base_url = base_url
        self.storm = storm or StormCap()

    def __call__(self, mail: Mail) -> Notification:
        rows: list[OutboxItem] = list(mail.rows)
        # The Message-ID comes from the dedupe key, as the outbox row's does: a re-send threads.
        parts = [
            Part(
                row.draft,
                render_notification(row.draft, row.settings, dag_id=row.dag_id, base_url=self.base_url),
            )
            for row in rows
        ]
        if mail.storm_digest:
            prefixes = {row.settings.subject_prefix for row in rows}
            prefix = prefixes.pop() if len(prefixes) == 1 else ""
            return storm_digest(parts, cap=self.storm, prefix=prefix, pdf=_one_pdf(rows, digest=True))
        if len(parts) == 1:
            return parts[0].notification
        return combine(parts, rows[0].settings, dag_id=rows[0].dag_id, pdf=_one_pdf(rows))


def _one_pdf(rows: list[OutboxItem], *, digest: bool = False) -> Attachment | None:
    """One error-trace PDF for every entity failure the mail reports (when its settings want one)."""
    events = [
        event
        for row in rows
        if row.draft.kind is NotificationKind.PROCESSING and row.settings.include_error_trace
        for event in row.draft.events
    ]
    if not events:
        return None
    from airflow_failnotify.core.pdf import build_error_trace_pdf

    about = None
    if digest:
        about = f"storm digest, {len(rows)} notifications"
    pdf = build_error_trace_pdf(
        events, integration=rows[0].integration, direction=rows[0].direction, about=about
    )
    return Attachment(ERROR_TRACE_FILENAME, pdf, PDF_MIME_TYPE)


def render_message(item: OutboxItem, *, sender: str, base_url: str | None) -> Message:
    """The MIME message one outbox row goes out as (the benchmarks time this)."""
    rendered = render_notification(item.draft, item.settings, dag_id=item.dag_id, base_url=base_url)
    return to_mime_message(rendered, sender=sender)
