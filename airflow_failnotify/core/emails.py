"""Rendering of notification emails: subject, text and HTML bodies, Message-ID, MIME message.

Pure: imports nothing from Airflow, SQLAlchemy or Flask. The bodies come from the Jinja
templates in ``airflow_failnotify/templates/email`` (HTML ones autoescaped). The error-trace
PDF of entity (processing) emails is built by :mod:`airflow_failnotify.core.pdf`, imported
only when a PDF is needed (reportlab is slow to import).

Everything that came from a failure (error messages, DAG, run, task and entity ids) is
untrusted: it is cleaned of control characters before it reaches a template, stripped of
line breaks before it reaches a header, escaped in HTML and URL-quoted in links.
"""

from __future__ import annotations

import email.charset
import email.encoders
import email.header
import email.utils
import functools
import hashlib
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2

from airflow_failnotify.core.model import (
    Direction,
    DirectionSettings,
    EventKind,
    FailureEvent,
    NotificationDraft,
    NotificationKind,
)

__all__ = [
    "ERROR_TRACE_FILENAME",
    "Attachment",
    "RenderedEmail",
    "as_utc",
    "clean_text",
    "dag_url",
    "entity_label",
    "format_utc",
    "header_safe",
    "humanize_minutes",
    "message_id_for",
    "recipients_of",
    "render_notification",
    "render_test_email",
    "run_url",
    "subject_for",
    "task_url",
    "to_mime_message",
    "try_label",
    "what_happened",
]

ERROR_TRACE_FILENAME = "error-trace.pdf"
PDF_MIME_TYPE = "application/pdf"

# Caps (characters) on what goes into a header, and on the body.
MAX_PREFIX_CHARS = 80
MAX_DAG_ID_CHARS = 200
MAX_SUBJECT_CHARS = 250
MAX_ADDRESS_CHARS = 320
MAX_ERROR_CHARS = 2_000  # per failure in the body; the full error and trace go in the PDF
MAX_ID_CHARS = 300  # entity, run and task ids shown in the body
MAX_LISTED_FAILURES = 100  # failures listed in one body; the PDF has them all

MESSAGE_ID_DOMAIN = "failnotify"

# C0 and C1 controls, DEL, line/paragraph separators, zero-width and bidi-override characters:
# nothing that may end a header line or make a subject read differently from what it says.
_HEADER_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
# ANSI escape sequences (colours in logs): dropped whole rather than leaving "[31m" behind.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
# Controls that have no place in a body (tab and line feed are kept).
_BODY_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str  # e.g. "application/pdf"


@dataclass(frozen=True)
class RenderedEmail:
    """A rendered email, ready to be turned into a MIME message by :func:`to_mime_message`."""

    subject: str
    text: str
    html: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    message_id: str
    attachments: tuple[Attachment, ...] = ()
    date: datetime | None = None  # the Date header; None: the time to_mime_message runs


# ---------------------------------------------------------------------------------------------
# Cleaning and formatting helpers (also used by the PDF)
# ---------------------------------------------------------------------------------------------


def header_safe(value: object, max_chars: int = MAX_SUBJECT_CHARS) -> str:
    """One line of text that is safe in a mail header: no CR/LF or other controls, capped."""
    text = _HEADER_UNSAFE.sub(" ", str(value))
    text = " ".join(text.split())
    if len(text) > max_chars:
        text = text[: max(max_chars - 1, 0)].rstrip() + "\u2026"
    return text


def clean_text(value: object) -> str:
    """Text from a failure, made fit for a body: LF line ends, no ANSI codes, no controls."""
    text = str(value)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    return _BODY_UNSAFE.sub("?", text)


def _one_line(value: object, max_chars: int = MAX_ID_CHARS) -> str:
    return header_safe(value, max_chars)


def _truncate(text: str, max_chars: int) -> tuple[str, int]:
    """``text`` cut to ``max_chars`` characters, and how many were cut."""
    if len(text) <= max_chars:
        return text, 0
    return text[:max_chars].rstrip(), len(text) - max_chars


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already (Airflow stores UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def format_utc(moment: datetime | None) -> str:
    """``2026-11-27 21:47:57 UTC+00:00``; an empty string for None."""
    if moment is None:
        return ""
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC+00:00")


def humanize_minutes(minutes: int) -> str:
    """``1 minute``, ``90 minutes``, ``2 hours``, ``1 day``: the largest unit that divides it."""
    if minutes <= 0:
        return f"{minutes} minutes"
    for size, unit in ((7 * 24 * 60, "week"), (24 * 60, "day"), (60, "hour"), (1, "minute")):
        if minutes % size == 0:
            count = minutes // size
            return f"{count} {unit}" if count == 1 else f"{count} {unit}s"
    raise AssertionError("unreachable: every whole number is a multiple of 1")


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular}" if count == 1 else f"{count} {plural or singular + 's'}"


def entity_label(event: FailureEvent) -> str:
    """What failed: the entity, else ``task_id[map_index]`` (or the task id), else the run."""
    if event.entity:
        return _one_line(event.entity)
    if event.task_id:
        if event.map_index is not None and event.map_index >= 0:
            return _one_line(f"{event.task_id}[{event.map_index}]")
        return _one_line(event.task_id)
    return _one_line(f"run {event.run_id}")


def try_label(event: FailureEvent) -> str:
    """How far the retries went, in the words of each source; empty when unknown.

    A task's ``max_tries`` is Airflow's (the retries allowed), so try 2 of a task with one retry is
    ``try 2 of 2``. An entity report counts retries already made against the maximum it was given.
    """
    if event.try_number is None:
        return ""
    if event.kind is EventKind.ENTITY_FAILED:
        if event.max_tries is None:
            return f"retry {event.try_number}"
        return f"retry {event.try_number} of {event.max_tries}"
    if event.max_tries is None:
        return f"try {event.try_number}"
    return f"try {event.try_number} of {event.max_tries + 1}"


# ---------------------------------------------------------------------------------------------
# Links to the Airflow 3 UI
# ---------------------------------------------------------------------------------------------


def _base(base_url: str | None) -> str | None:
    if not base_url:
        return None
    base = base_url.strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc or _HEADER_UNSAFE.search(base):
        return None  # never emit a javascript: or otherwise odd link
    return base


def _q(value: str) -> str:
    return quote(value, safe="")


def dag_url(base_url: str | None, dag_id: str) -> str | None:
    base = _base(base_url)
    return None if base is None else f"{base}/dags/{_q(dag_id)}"


def run_url(base_url: str | None, dag_id: str, run_id: str) -> str | None:
    """``{base}/dags/{dag_id}/runs/{run_id}`` with the ids URL-quoted; None without a base URL."""
    base = _base(base_url)
    if base is None or not run_id:
        return None
    return f"{base}/dags/{_q(dag_id)}/runs/{_q(run_id)}"


def task_url(base_url: str | None, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str | None:
    """The task instance (and its log) in the Airflow 3 UI, ``/mapped/{i}`` for a mapped one."""
    url = run_url(base_url, dag_id, run_id)
    if url is None or not task_id:
        return None
    url = f"{url}/tasks/{_q(task_id)}"
    if map_index is not None and map_index >= 0:
        url = f"{url}/mapped/{int(map_index)}"
    return url


# ---------------------------------------------------------------------------------------------
# Subject and Message-ID
# ---------------------------------------------------------------------------------------------


def what_happened(draft: NotificationDraft) -> str:
    """The subject's middle part, by kind (issue 5)."""
    kind = draft.kind
    if kind is NotificationKind.NOT_ACCESSIBLE:
        return "Not accessible"
    if kind is NotificationKind.GLOBAL_IMMEDIATE:
        return "Job failed"
    if kind is NotificationKind.GLOBAL_THRESHOLD:
        return f"{max(len(draft.events), 1)} consecutive job failures"
    if kind is NotificationKind.INACTIVITY:
        minutes = _inactivity_minutes(draft)
        return f"No activity for {humanize_minutes(minutes)}" if minutes else "No activity"
    if kind is NotificationKind.PROCESSING:
        return _plural(len(draft.events), "entity failure")
    raise ValueError(f"unknown notification kind {kind!r}")


def _inactivity_minutes(draft: NotificationDraft) -> int | None:
    if draft.inactivity_minutes:
        return draft.inactivity_minutes
    if draft.quiet_since is not None:
        seconds = (as_utc(draft.created_at) - as_utc(draft.quiet_since)).total_seconds()
        return max(int(seconds // 60), 1)
    return None


def _direction_value(direction: Direction | str) -> str:
    return direction.value if isinstance(direction, Direction) else Direction(direction).value


def _subject(prefix: str, middle: str, integration: str, direction: Direction | str) -> str:
    prefix = header_safe(prefix, MAX_PREFIX_CHARS)
    name = header_safe(integration, MAX_DAG_ID_CHARS)
    subject = f"{middle}: {name} ({_direction_value(direction)})"
    if prefix:
        subject = f"{prefix} {subject}"
    return header_safe(subject, MAX_SUBJECT_CHARS)


def subject_for(draft: NotificationDraft, settings: DirectionSettings) -> str:
    """``<prefix> <what happened>: <integration> (<direction>)``, header-safe and capped."""
    return _subject(settings.subject_prefix, what_happened(draft), draft.integration, draft.direction)


def message_id_for(dedupe_key: str) -> str:
    """A Message-ID that is the same for every send of one notification."""
    digest = hashlib.sha256(dedupe_key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"<{digest}@{MESSAGE_ID_DOMAIN}>"


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
}


def _summary(draft: NotificationDraft, name: str, direction: str) -> str:
    where = f"integration {name} ({direction})"
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
        return f"The last {_plural(len(draft.events), 'job')} of the {where} failed in a row."
    if kind is NotificationKind.INACTIVITY:
        minutes = _inactivity_minutes(draft)
        spell = f" for {humanize_minutes(minutes)}" if minutes else ""
        since = f", since {format_utc(draft.quiet_since)}" if draft.quiet_since else ""
        return (
            f"The {where} has had no activity (no run or task started or finished, no entity "
            f"reported){spell}{since}. Check that it is scheduled, unpaused and that its "
            "scheduler and workers are running."
        )
    return f"{_plural(len(draft.events), 'entity', 'entities')} of the {where} failed."


def _failure_context(
    event: FailureEvent, index: int, *, fallback_dag_id: str, base_url: str | None, full_error_in: str
) -> dict[str, Any]:
    dag_id = event.dag_id or fallback_dag_id
    error, cut = _truncate(clean_text(event.error_message).strip(), MAX_ERROR_CHARS)
    is_run = event.kind in (EventKind.RUN_FAILED, EventKind.RUN_SUCCEEDED) or not (
        event.task_id or event.entity
    )
    return {
        "index": index,
        "label": _one_line(f"run {event.run_id}") if is_run else entity_label(event),
        "is_run": is_run,
        "entity": "" if is_run else entity_label(event),
        "dag_id": _one_line(dag_id),
        "run_id": _one_line(event.run_id),
        "task_id": _one_line(event.task_id) if event.task_id else "",
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
    }


def render_notification(
    draft: NotificationDraft,
    settings: DirectionSettings,
    *,
    dag_id: str,
    base_url: str | None,
    now: datetime | None = None,
) -> RenderedEmail:
    """Render the email for one notification.

    ``dag_id`` is the DAG of the draft's direction (the forward or the backward DAG id), used
    for links when an event does not name its own. ``base_url`` is the Airflow UI's base URL
    (``https://airflow.example.com``); without it the email has no links and says so. ``now``
    is the Date header (default: the time of rendering).
    """
    with_pdf = (
        draft.kind is NotificationKind.PROCESSING and settings.include_error_trace and bool(draft.events)
    )
    direction = _direction_value(draft.direction)
    name = _one_line(draft.integration, MAX_DAG_ID_CHARS)
    full_error_in = (
        f"the full error and trace are in the attached {ERROR_TRACE_FILENAME}"
        if with_pdf
        else "the full error is in the task log"
    )
    listed = list(draft.events[:MAX_LISTED_FAILURES])
    failures = [
        _failure_context(e, i, fallback_dag_id=dag_id, base_url=base_url, full_error_in=full_error_in)
        for i, e in enumerate(listed, start=1)
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
        "summary": _summary(draft, name, direction),
        "integration": name,
        "direction": direction,
        "dag_id": _one_line(dag_id, MAX_DAG_ID_CHARS),
        "when": format_utc(when),
        "detected": format_utc(draft.created_at),
        "count": len(draft.events),
        "failures": failures,
        "more": len(draft.events) - len(listed),
        "more_note": (
            f"all of them are in the attached {ERROR_TRACE_FILENAME}"
            if with_pdf
            else "see the Airflow UI for the rest"
        ),
        "run_id": _one_line(run_id) if run_id else "",
        "run_url": run_url(base_url, dag_id, run_id) if run_id else None,
        "dag_url": dag_url(base_url, dag_id),
        "has_base_url": _base(base_url) is not None,
        "attachment": ERROR_TRACE_FILENAME if with_pdf else "",
    }
    text, html = _render("notification", context)

    attachments: tuple[Attachment, ...] = ()
    if with_pdf:
        from airflow_failnotify.core.pdf import build_error_trace_pdf

        pdf = build_error_trace_pdf(draft.events, integration=draft.integration, direction=draft.direction)
        attachments = (Attachment(ERROR_TRACE_FILENAME, pdf, PDF_MIME_TYPE),)

    return RenderedEmail(
        subject=subject_for(draft, settings),
        text=text,
        html=html,
        to=_addresses(settings.recipients),
        cc=_addresses(settings.cc),
        message_id=message_id_for(draft.dedupe_key),
        attachments=attachments,
        date=as_utc(now) if now is not None else datetime.now(timezone.utc),
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
) -> RenderedEmail:
    """The email the "Test" button sends to the direction's recipients (and CC).

    ``sender`` is the SMTP system's sender address, shown in the body; ``dag_id`` the DAG of
    the direction (default: ``integration``). Each test email gets a new Message-ID.
    """
    moment = as_utc(now) if now is not None else datetime.now(timezone.utc)
    direction_value = _direction_value(direction)
    dag = dag_id or integration
    glob = settings.global_
    if not glob.enabled:
        global_text = "off"
    elif glob.notify_immediately:
        global_text = "on, a mail for every failed job"
    else:
        global_text = f"on, a mail after {_plural(glob.failure_count_threshold, 'consecutive failed job')}"
    if glob.enabled and glob.inactivity_minutes:
        global_text += f"; a mail after {humanize_minutes(glob.inactivity_minutes)} without activity"
    proc = settings.processing
    if not proc.enabled:
        processing_text = "off"
    elif proc.notify_before_max_retries:
        processing_text = "on, every entity failure, retried or not"
    else:
        processing_text = "on, entity failures that will not be retried"
    context: dict[str, Any] = {
        "integration": _one_line(integration, MAX_DAG_ID_CHARS),
        "direction": direction_value,
        "dag_id": _one_line(dag, MAX_DAG_ID_CHARS),
        "sender": _one_line(sender, MAX_ADDRESS_CHARS),
        "smtp_conn_id": _one_line(settings.smtp_conn_id),
        "to": ", ".join(_addresses(settings.recipients)),
        "cc": ", ".join(_addresses(settings.cc)),
        "when": format_utc(moment),
        "global_text": global_text,
        "processing_text": processing_text,
        "error_trace": "yes" if settings.include_error_trace else "no",
        "dag_url": dag_url(base_url, dag),
        "has_base_url": _base(base_url) is not None,
    }
    text, html = _render("test", context)
    return RenderedEmail(
        subject=_subject(settings.subject_prefix, "Test notification", integration, direction),
        text=text,
        html=html,
        to=_addresses(settings.recipients),
        cc=_addresses(settings.cc),
        message_id=f"<test-{uuid.uuid4().hex}@{MESSAGE_ID_DOMAIN}>",
        attachments=(),
        date=moment,
    )


# ---------------------------------------------------------------------------------------------
# MIME
# ---------------------------------------------------------------------------------------------


def _addresses(values: Iterable[str]) -> tuple[str, ...]:
    cleaned = (header_safe(v, MAX_ADDRESS_CHARS) for v in values)
    return tuple(v for v in cleaned if v)


_UTF8 = email.charset.Charset("utf-8")
_UTF8.body_encoding = email.charset.QP  # bodies stay readable in the raw message


def _text_part(text: str, subtype: str) -> Message:
    part = MIMENonMultipart("text", subtype)
    part.set_payload(text, _UTF8)
    return part


def _header_value(value: str) -> str:
    """ASCII as is; anything else as an RFC 2047 encoded word (our addresses are ASCII by validation)."""
    return value if value.isascii() else email.header.Header(value, "utf-8").encode()


def _sender_value(sender: str) -> str:
    name, address = email.utils.parseaddr(sender)
    if not name or sender.isascii():
        return sender
    return email.utils.formataddr((name, address), charset="utf-8")


def to_mime_message(rendered: RenderedEmail, *, sender: str) -> Message:
    """The message to send: multipart/alternative (text, HTML), inside multipart/mixed when
    there are attachments, each with its real MIME type. Every header value is made safe.

    Built with the classic ``email.mime`` classes: about 10x cheaper than ``EmailMessage``'s
    header registry, which matters when a pass sends hundreds of mails.
    """
    alternative = MIMEMultipart("alternative")
    alternative.attach(_text_part(rendered.text, "plain"))
    alternative.attach(_text_part(rendered.html, "html"))
    msg: Message = alternative
    if rendered.attachments:
        msg = MIMEMultipart("mixed")
        msg.attach(alternative)
        for attachment in rendered.attachments:
            maintype, _, subtype = attachment.mime_type.partition("/")
            part = MIMEBase(maintype or "application", subtype or "octet-stream")
            part.set_payload(attachment.content)
            email.encoders.encode_base64(part)
            part.add_header(
                "Content-Disposition", "attachment", filename=header_safe(attachment.filename, 200)
            )
            msg.attach(part)
    msg["Subject"] = _header_value(header_safe(rendered.subject, MAX_SUBJECT_CHARS))
    msg["From"] = _sender_value(header_safe(sender, MAX_ADDRESS_CHARS))
    to = _addresses(rendered.to)
    cc = _addresses(rendered.cc)
    if to:
        msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Date"] = email.utils.format_datetime(as_utc(rendered.date or datetime.now(timezone.utc)))
    msg["Message-ID"] = header_safe(rendered.message_id, 200)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    msg["X-Auto-Response-Suppress"] = "All"
    return msg


def recipients_of(rendered: RenderedEmail) -> Sequence[str]:
    """Every envelope recipient (To and CC), in order, without duplicates."""
    return tuple(dict.fromkeys(rendered.to + rendered.cc))
