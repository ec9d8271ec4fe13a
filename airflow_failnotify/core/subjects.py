"""Subjects: ``<prefix> <what happened>: <DAG> (<direction>[ of <integration>])``.

Pure: imports nothing from Airflow, SQLAlchemy or Flask.
"""

from __future__ import annotations

from airflow_failnotify.core.model import Direction, DirectionSettings, NotificationDraft, NotificationKind
from airflow_failnotify.core.text import (
    MAX_DAG_ID_CHARS,
    MAX_PREFIX_CHARS,
    MAX_SUBJECT_CHARS,
    as_utc,
    direction_label,
    header_safe,
    humanize_minutes,
    plural,
)

__all__ = ["direction_value", "inactivity_minutes", "subject", "subject_for", "what_happened"]


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
        minutes = inactivity_minutes(draft)
        return f"No activity for {humanize_minutes(minutes)}" if minutes else "No activity"
    if kind is NotificationKind.PROCESSING:
        return plural(len(draft.events), "entity failure")
    if kind is NotificationKind.BROKEN_DAG:
        return "Broken DAG"
    if kind is NotificationKind.RECOVERY:
        return "Back to normal"
    raise ValueError(f"unknown notification kind {kind!r}")


def inactivity_minutes(draft: NotificationDraft) -> int | None:
    if draft.inactivity_minutes:
        return draft.inactivity_minutes
    if draft.quiet_since is not None:
        seconds = (as_utc(draft.created_at) - as_utc(draft.quiet_since)).total_seconds()
        return max(int(seconds // 60), 1)
    return None


def direction_value(direction: Direction | str) -> str:
    return direction.value if isinstance(direction, Direction) else Direction(direction).value


def subject(
    prefix: str, middle: str, integration: str, direction: Direction | str, dag_id: str | None = None
) -> str:
    prefix = header_safe(prefix, MAX_PREFIX_CHARS)
    name = header_safe(integration, MAX_DAG_ID_CHARS)
    dag = header_safe(dag_id, MAX_DAG_ID_CHARS) if dag_id else None
    subject = f"{middle}: {direction_label(name, direction_value(direction), dag)}"
    if prefix:
        subject = f"{prefix} {subject}"
    return header_safe(subject, MAX_SUBJECT_CHARS)


def _draft_dag_id(draft: NotificationDraft, dag_id: str | None) -> str | None:
    """The DAG a draft is about: the one given, else its events' DAG (all of one direction)."""
    if dag_id:
        return dag_id
    return next((e.dag_id for e in draft.events if e.dag_id), None)


def subject_for(draft: NotificationDraft, settings: DirectionSettings, dag_id: str | None = None) -> str:
    """``<prefix> <what happened>: <DAG> (<direction>[ of <integration>])``, header-safe and capped.

    ``dag_id`` is the DAG of the draft's direction (default: its events' DAG). A forward mail reads
    ``Job failed: sync_a (forward)``; a backward one names the backward DAG that failed and the
    integration it belongs to: ``Not accessible: sync_b (backward of sync_a)``.
    """
    return subject(
        settings.subject_prefix,
        what_happened(draft),
        draft.integration,
        draft.direction,
        _draft_dag_id(draft, dag_id),
    )
