"""Text helpers shared by the renderers (emails, PDF): cleaning, caps, dates, labels, UI links.

Pure: imports nothing from Airflow, SQLAlchemy or Flask. Everything that came from a failure
(error messages, DAG, run, task and entity ids) is untrusted: :func:`clean_text` makes it fit for a
body, :func:`header_safe` for a header line, and the link builders URL-quote every id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

from airflow_failnotify.core.model import EventKind, FailureEvent

__all__ = [
    "MAX_ADDRESS_CHARS",
    "MAX_DAG_ID_CHARS",
    "MAX_ID_CHARS",
    "MAX_PREFIX_CHARS",
    "MAX_SUBJECT_CHARS",
    "as_utc",
    "base_url_of",
    "clean_addresses",
    "clean_text",
    "dag_url",
    "direction_label",
    "entity_label",
    "first_line",
    "format_utc",
    "header_safe",
    "humanize_minutes",
    "one_line",
    "plural",
    "run_url",
    "task_url",
    "truncate",
    "try_label",
]

# Caps (characters) on what goes into a header or a body line.
MAX_PREFIX_CHARS = 80
MAX_DAG_ID_CHARS = 200
MAX_SUBJECT_CHARS = 250
MAX_ADDRESS_CHARS = 320
MAX_ID_CHARS = 300  # entity, run and task ids shown in the body

# C0 and C1 controls, DEL, line/paragraph separators, zero-width and bidi-override characters:
# nothing that may end a header line or make a subject read differently from what it says.
_HEADER_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
# ANSI escape sequences (colours in logs): dropped whole rather than leaving "[31m" behind.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
# Controls that have no place in a body (tab and line feed are kept).
_BODY_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


# ---------------------------------------------------------------------------------------------
# Cleaning and formatting
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


def one_line(value: object, max_chars: int = MAX_ID_CHARS) -> str:
    """An id or a name on one header-safe line, capped."""
    return header_safe(value, max_chars)


def truncate(text: str, max_chars: int) -> tuple[str, int]:
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
    """``2026-12-01 19:57 UTC`` (to the minute, as mails print times); an empty string for None."""
    if moment is None:
        return ""
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def first_line(text: str, max_chars: int = MAX_ID_CHARS) -> str:
    """The first non-blank line of an error message, cleaned and capped (an exception's headline)."""
    for line in clean_text(text).splitlines():
        if line.strip():
            return one_line(line.strip(), max_chars)
    return ""


def direction_label(integration: str, direction: str, dag_id: str | None = None) -> str:
    """Which DAG, and of which integration: ``sync_a (forward)``, ``sync_b (backward of sync_a)``.

    ``dag_id`` is the DAG that failed (the direction's DAG); when it is the integration itself (or
    not given) the label names the integration and its direction only.
    """
    if not dag_id or dag_id == integration:
        return f"{integration} ({direction})"
    return f"{dag_id} ({direction} of {integration})"


def humanize_minutes(minutes: int) -> str:
    """``1 minute``, ``90 minutes``, ``2 hours``, ``1 day``: the largest unit that divides it."""
    if minutes <= 0:
        return f"{minutes} minutes"
    for size, unit in ((7 * 24 * 60, "week"), (24 * 60, "day"), (60, "hour"), (1, "minute")):
        if minutes % size == 0:
            count = minutes // size
            return f"{count} {unit}" if count == 1 else f"{count} {unit}s"
    raise AssertionError("unreachable: every whole number is a multiple of 1")


def plural(count: int, singular: str, many: str | None = None) -> str:
    """``1 job``, ``2 jobs``; ``many`` for an irregular plural."""
    return f"{count} {singular}" if count == 1 else f"{count} {many or singular + 's'}"


def entity_label(event: FailureEvent) -> str:
    """What failed: the entity, else ``task_id[map_index]`` (or the task id), else the run."""
    if event.entity:
        return one_line(event.entity)
    if event.task_id:
        if event.map_index is not None and event.map_index >= 0:
            return one_line(f"{event.task_id}[{event.map_index}]")
        return one_line(event.task_id)
    return one_line(f"run {event.run_id}")


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


def base_url_of(base_url: str | None) -> str | None:
    """The Airflow UI's base URL without a trailing slash; None when unset or not a plain http(s) URL."""
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
    base = base_url_of(base_url)
    return None if base is None else f"{base}/dags/{_q(dag_id)}"


def run_url(base_url: str | None, dag_id: str, run_id: str) -> str | None:
    """``{base}/dags/{dag_id}/runs/{run_id}`` with the ids URL-quoted; None without a base URL."""
    base = base_url_of(base_url)
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


def clean_addresses(values: Iterable[str]) -> tuple[str, ...]:
    """Addresses made header-safe and capped, blanks dropped (they were validated when saved)."""
    cleaned = (header_safe(v, MAX_ADDRESS_CHARS) for v in values)
    return tuple(v for v in cleaned if v)
