"""Rendering of notification emails: subject, text and HTML bodies, Message-ID.

Pure: imports nothing from Airflow, SQLAlchemy or Flask. The bodies come from the Jinja
templates in ``airflow_failnotify/templates/email`` (HTML ones autoescaped); the result is a
channel-neutral :class:`~airflow_failnotify.core.notification.Notification`, which
:func:`airflow_failnotify.core.mime.to_mime_message` turns into a MIME message. The error-trace
PDF of entity (processing) emails is built by :mod:`airflow_failnotify.core.pdf`, imported
only when a PDF is needed (reportlab is slow to import).

Everything that came from a failure is untrusted: see :mod:`airflow_failnotify.core.text` for
how it is cleaned before it reaches a template, a header or a link.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import jinja2

from airflow_failnotify.core.headers import (
    list_id_for,
    message_id_for,
    notification_for,
    unique_message_id,
)
from airflow_failnotify.core.job_failures import (
    NO_FAILED_TASK,
    failed_tasks_of_run,
    task_context,
    task_instance_label,
)
from airflow_failnotify.core.mime import to_mime_message
from airflow_failnotify.core.model import (
    Direction,
    DirectionSettings,
    EventKind,
    FailureEvent,
    NotificationDraft,
    NotificationKind,
)
from airflow_failnotify.core.notification import Attachment, Notification, RenderedEmail, recipients_of
from airflow_failnotify.core.signatures import ErrorGroup, error_type, group_by_signature
from airflow_failnotify.core.subjects import (
    direction_value,
    inactivity_minutes,
    subject,
    subject_for,
    what_happened,
)
from airflow_failnotify.core.text import (
    MAX_ADDRESS_CHARS,
    MAX_DAG_ID_CHARS,
    MAX_SUBJECT_CHARS,
    as_utc,
    base_url_of,
    clean_addresses,
    clean_text,
    dag_url,
    direction_label,
    entity_label,
    format_utc,
    header_safe,
    humanize_minutes,
    one_line,
    plural,
    run_url,
    task_url,
    truncate,
    try_label,
)

__all__ = [
    "ERROR_TRACE_FILENAME",
    "NO_FAILED_TASK",
    "Attachment",
    "Notification",
    "RenderedEmail",
    "list_id_for",
    "message_id_for",
    "recipients_of",
    "render_connection_test_email",
    "render_notification",
    "render_test_email",
    "subject_for",
    "task_instance_label",
    "to_mime_message",
    "unique_message_id",
    "what_happened",
]

ERROR_TRACE_FILENAME = "error-trace.pdf"
PDF_MIME_TYPE = "application/pdf"

MAX_ERROR_CHARS = 2_000  # per failure in the body; the full error and trace go in the PDF
MAX_LISTED_FAILURES = 100  # failures listed in one body; the PDF has them all

_JOB_KINDS = (NotificationKind.GLOBAL_IMMEDIATE, NotificationKind.GLOBAL_THRESHOLD)
_FOLDED_KINDS = (NotificationKind.PROCESSING, NotificationKind.NOT_ACCESSIBLE)
MAX_FOLDED_NAMES = 200  # entities named in a folded entry; the PDF names them all


# ---------------------------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------------------------


def _autoescape(template_name: str | None) -> bool:
    return bool(template_name) and str(template_name).endswith((".html.j2", ".html"))


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    """Built once, on first use (not at import); Jinja caches the compiled templates."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("airflow_failnotify", "templates/email"),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@functools.lru_cache(maxsize=16)
def _template(name: str) -> jinja2.Template:
    return _environment().get_template(name)


def _render(name: str, context: dict[str, Any]) -> tuple[str, str]:
    return _template(f"{name}.txt.j2").render(context), _template(f"{name}.html.j2").render(context)


# ---------------------------------------------------------------------------------------------
# Notification emails
# ---------------------------------------------------------------------------------------------

_ONE_RUN_KINDS = (NotificationKind.NOT_ACCESSIBLE, NotificationKind.GLOBAL_IMMEDIATE)
_HEADLINES = {
    NotificationKind.NOT_ACCESSIBLE: "A project or entity is not accessible",
    NotificationKind.GLOBAL_IMMEDIATE: "A job (DAG run) failed",
    NotificationKind.GLOBAL_THRESHOLD: "Consecutive job failures",
    NotificationKind.INACTIVITY: "No activity",
    NotificationKind.PROCESSING: "Entity failures",
    NotificationKind.BROKEN_DAG: "Broken DAG",
    NotificationKind.RECOVERY: "Back to normal",
}


def _where(name: str, direction: str, dag_id: str) -> str:
    """``integration sync_a (forward)``, or ``backward DAG sync_b of integration sync_a``."""
    if dag_id and dag_id != name:
        return f"{direction} DAG {dag_id} of integration {name}"
    return f"integration {name} ({direction})"


def _summary(draft: NotificationDraft, where: str) -> str:
    kind = draft.kind
    if kind is NotificationKind.NOT_ACCESSIBLE:
        return (
            f"The {where} could not access a project or entity it syncs (permission denied, "
            "unauthorised or not found). Retrying will not fix this: it needs a person to check "
            "the credentials, the permissions or whether the entity still exists."
        )
    if kind is NotificationKind.GLOBAL_IMMEDIATE:
        return f"A job (DAG run) of the {where} failed."
    if kind is NotificationKind.GLOBAL_THRESHOLD:
        return f"The last {plural(len(draft.events), 'job')} of the {where} failed in a row."
    if kind is NotificationKind.INACTIVITY:
        minutes = inactivity_minutes(draft)
        spell = f" for {humanize_minutes(minutes)}" if minutes else ""
        since = f", since {format_utc(draft.quiet_since)}" if draft.quiet_since else ""
        return (
            f"The {where} has had no activity (no run or task started or finished, no entity "
            f"reported){spell}{since}. Check that it is scheduled, unpaused and that its "
            "scheduler and workers are running."
        )
    return f"{plural(len(draft.events), 'entity', 'entities')} of the {where} failed."


def _failure_context(
    event: FailureEvent,
    index: int,
    *,
    fallback_dag_id: str,
    base_url: str | None,
    full_error_in: str,
    tasks: Sequence[FailureEvent] | None = None,
) -> dict[str, Any]:
    dag_id = event.dag_id or fallback_dag_id
    error, cut = truncate(clean_text(event.error_message).strip(), MAX_ERROR_CHARS)
    is_run = event.kind in (EventKind.RUN_FAILED, EventKind.RUN_SUCCEEDED) or not (
        event.task_id or event.entity
    )
    return {
        "index": index,
        "label": one_line(f"run {event.run_id}") if is_run else entity_label(event),
        "is_run": is_run,
        "entity": "" if is_run else entity_label(event),
        "dag_id": one_line(dag_id),
        "run_id": one_line(event.run_id),
        "task_id": one_line(event.task_id) if event.task_id else "",
        "when": format_utc(event.occurred_at),
        "try": try_label(event),
        "final": event.is_final,
        "error": error,
        "error_cut": cut,
        "error_note": (f"[truncated: {cut:,} more characters; {full_error_in}]" if cut else ""),
        "run_url": run_url(base_url, dag_id, event.run_id),
        "task_url": (
            task_url(base_url, dag_id, event.run_id, event.task_id, event.map_index)
            if event.task_id and not is_run
            else None
        ),
        # Job failures: the run's failed task instances (None: not a job failure, nothing to list).
        "job": tasks is not None,
        "tasks": [task_context(t, dag_id=dag_id, base_url=base_url) for t in tasks or ()],
        "no_task": NO_FAILED_TASK,
    }


def _fold_context(group: ErrorGroup) -> dict[str, Any]:
    """A folded entry: how many failures share the error, when, and every entity they name."""
    if group.count == 1:
        return {"folded": 0}
    labels = group.labels()
    shown = ", ".join(labels[:MAX_FOLDED_NAMES])
    rest = len(labels) - MAX_FOLDED_NAMES
    return {
        "folded": group.count,
        "label": one_line(f"{group.count} x {error_type(group.first.error_message) or 'the same error'}"),
        "entity": shown + (f" and {rest} more" if rest > 0 else ""),
        "span": f"first {format_utc(group.first_at)}, last {format_utc(group.last_at)}",
    }


def render_notification(
    draft: NotificationDraft,
    settings: DirectionSettings,
    *,
    dag_id: str,
    base_url: str | None,
    now: datetime | None = None,
) -> Notification:
    """Render the email for one notification.

    ``dag_id`` is the DAG of the draft's direction (the forward or the backward DAG id), used
    for links when an event does not name its own. ``base_url`` is the Airflow UI's base URL
    (``https://airflow.example.com``); without it the email has no links and says so. ``now``
    is the Date header (default: the time of rendering).
    """
    if draft.kind is NotificationKind.BROKEN_DAG:
        from airflow_failnotify.core.broken_dag import render_broken_dag

        return render_broken_dag(draft, settings, dag_id=dag_id, base_url=base_url, now=now)
    if draft.kind is NotificationKind.RECOVERY:  # "Back to normal" (issue 18): its own template pair
        from airflow_failnotify.core.recovery import render_recovery

        return render_recovery(draft, settings, dag_id=dag_id, base_url=base_url, now=now)
    with_pdf = (
        draft.kind is NotificationKind.PROCESSING and settings.include_error_trace and bool(draft.events)
    )
    direction = direction_value(draft.direction)
    name = one_line(draft.integration, MAX_DAG_ID_CHARS)
    shown_dag = one_line(dag_id, MAX_DAG_ID_CHARS)
    is_job = draft.kind in _JOB_KINDS
    full_error_in = (
        f"the full error and trace are in the attached {ERROR_TRACE_FILENAME}"
        if with_pdf
        else "the full error is in the task log"
    )
    # Entity-level kinds fold identical errors into one entry (core/signatures.py); runs stay apart.
    groups = [ErrorGroup("", (e,)) for e in draft.events]
    if draft.kind in _FOLDED_KINDS:
        groups = group_by_signature(draft.events)
    listed = groups[:MAX_LISTED_FAILURES]
    failures = [
        _failure_context(
            g.first,
            i,
            fallback_dag_id=dag_id,
            base_url=base_url,
            full_error_in=full_error_in,
            tasks=failed_tasks_of_run(draft, g.first.dag_id or dag_id, g.first.run_id) if is_job else None,
        )
        | _fold_context(g)
        for i, g in enumerate(listed, start=1)
    ]
    last_event = draft.events[-1] if draft.events else None
    when = last_event.occurred_at if last_event is not None else draft.created_at
    if draft.kind is NotificationKind.INACTIVITY and draft.quiet_since is not None:
        when = draft.quiet_since
    run_id = draft.run_id or ""
    if not run_id and last_event is not None and draft.kind in _ONE_RUN_KINDS:
        run_id = last_event.run_id
    context: dict[str, Any] = {
        "kind": draft.kind.value,
        "headline": _HEADLINES[draft.kind],
        "what": what_happened(draft),
        "summary": _summary(draft, _where(name, direction, shown_dag)),
        "integration": name,
        "direction": direction,
        "about": direction_label(name, direction, shown_dag),
        "dag_id": shown_dag,
        "when": format_utc(when),
        "detected": format_utc(draft.created_at),
        "count": len(draft.events),
        "failures": failures,
        "more": sum(g.count for g in groups[MAX_LISTED_FAILURES:]),
        "more_note": (
            f"all of them are in the attached {ERROR_TRACE_FILENAME}"
            if with_pdf
            else "see the Airflow UI for the rest"
        ),
        "run_id": one_line(run_id) if run_id else "",
        "run_url": run_url(base_url, dag_id, run_id) if run_id else None,
        "dag_url": dag_url(base_url, dag_id),
        "has_base_url": base_url_of(base_url) is not None,
        "attachment": ERROR_TRACE_FILENAME if with_pdf else "",
    }
    text, html = _render("notification", context)

    attachments: tuple[Attachment, ...] = ()
    if with_pdf:
        from airflow_failnotify.core.pdf import build_error_trace_pdf

        pdf = build_error_trace_pdf(draft.events, integration=draft.integration, direction=draft.direction)
        attachments = (Attachment(ERROR_TRACE_FILENAME, pdf, PDF_MIME_TYPE),)

    shown_tasks = [t["label"] for f in failures for t in f["tasks"]]
    return notification_for(
        draft,
        settings,
        text,
        html,
        dag_id=dag_id,
        base_url=base_url,
        now=now,
        attachments=attachments,
        failed_tasks=tuple(dict.fromkeys(shown_tasks)),
    )


def render_test_email(
    integration: str,
    direction: Direction,
    settings: DirectionSettings,
    *,
    sender: str,
    dag_id: str | None = None,
    base_url: str | None = None,
    now: datetime | None = None,
) -> Notification:
    """The email the "Test" button sends to the direction's recipients (and CC).

    ``sender`` is the SMTP system's sender address, shown in the body; ``dag_id`` the DAG of
    the direction (default: ``integration``). Each test email gets a new Message-ID.
    """
    moment = as_utc(now) if now is not None else datetime.now(timezone.utc)
    shown_direction = direction_value(direction)
    dag = dag_id or integration
    context: dict[str, Any] = {
        "integration": one_line(integration, MAX_DAG_ID_CHARS),
        "direction": shown_direction,
        "dag_id": one_line(dag, MAX_DAG_ID_CHARS),
        "sender": one_line(sender, MAX_ADDRESS_CHARS),
        "smtp_conn_id": one_line(settings.smtp_conn_id),
        "to": ", ".join(clean_addresses(settings.recipients)),
        "cc": ", ".join(clean_addresses(settings.cc)),
        "when": format_utc(moment),
        "global_text": _global_text(settings),
        "processing_text": _processing_text(settings),
        "error_trace": "yes" if settings.include_error_trace else "no",
        "dag_url": dag_url(base_url, dag),
        "has_base_url": base_url_of(base_url) is not None,
    }
    context["about"] = direction_label(context["integration"], shown_direction, context["dag_id"])
    text, html = _render("test", context)
    return Notification(
        subject=subject(settings.subject_prefix, "Test notification", integration, direction, dag),
        text=text,
        html=html,
        to=clean_addresses(settings.recipients),
        cc=clean_addresses(settings.cc),
        message_id=unique_message_id("test"),
        attachments=(),
        date=moment,
        kinds=("test",),
        list_id=list_id_for(integration, base_url),
    )


def _global_text(settings: DirectionSettings) -> str:
    glob = settings.global_
    if not glob.enabled:
        text = "off"
    elif glob.notify_immediately:
        text = "on, a mail for every failed job"
    else:
        text = f"on, a mail after {plural(glob.failure_count_threshold, 'consecutive failed job')}"
    if glob.enabled and glob.inactivity_minutes:
        text += f"; a mail after {humanize_minutes(glob.inactivity_minutes)} without activity"
    return text


def _processing_text(settings: DirectionSettings) -> str:
    proc = settings.processing
    if not proc.enabled:
        return "off"
    if proc.notify_before_max_retries:
        return "on, every entity failure, retried or not"
    return "on, entity failures that will not be retried"


def render_connection_test_email(
    conn_id: str,
    *,
    to: Sequence[str],
    cc: Sequence[str] = (),
    server: str,
    host: str,
    now: datetime | None = None,
    base_url: str | None = None,
) -> Notification:
    """The email ``failnotify test-email`` sends: does mail through connection ``conn_id`` arrive?

    ``server`` describes the connection's SMTP server (``host:port, security``) and ``host`` the
    machine sending; both are shown in the body. Each one gets a new Message-ID.
    """
    moment = as_utc(now) if now is not None else datetime.now(timezone.utc)
    context: dict[str, Any] = {
        "conn_id": one_line(conn_id),
        "server": one_line(server),
        "host": one_line(host),
        "when": format_utc(moment),
    }
    text, html = _render("connection_test", context)
    return Notification(
        subject=header_safe(f"failnotify test email via {conn_id}", MAX_SUBJECT_CHARS),
        text=text,
        html=html,
        to=clean_addresses(to),
        cc=clean_addresses(cc),
        message_id=unique_message_id("test"),
        date=moment,
        kinds=("test",),
        list_id=list_id_for(f"connection-test-{conn_id}", base_url),
    )
