"""The recovery notification kind (issue 18): "Back to normal" when a failing episode ends.

Pure: imports nothing from Airflow, SQLAlchemy or Flask. Opt-in per direction (``noise.recovery_mail``).
One draft per ended episode (its dedupe key comes from the episode's key, so never two), in the
episode's thread: its ``episode_key`` is the ended episode's, so its References point at the episode's
first mail (core/headers.py). The mail says how long the integration-direction was down (its first
failure to the successful run) and how many failures the episode had.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from airflow_failnotify.core.episodes import EndedEpisode
from airflow_failnotify.core.headers import notification_for
from airflow_failnotify.core.model import (
    Direction,
    DirectionSettings,
    EpisodeSummary,
    NotificationDraft,
    NotificationKind,
)
from airflow_failnotify.core.notification import Notification

__all__ = ["down_for", "recovery_drafts", "render_recovery"]


def recovery_drafts(
    integration: str, direction: Direction, ended: Iterable[EndedEpisode], now: datetime
) -> list[NotificationDraft]:
    """One "Back to normal" draft per ended episode, in that episode's thread."""
    return [
        NotificationDraft(
            kind=NotificationKind.RECOVERY,
            integration=integration,
            direction=direction,
            dedupe_key=f"recovery:{episode.key}",
            created_at=now,
            run_id=episode.summary.run_id,
            episode_key=episode.key,
            recovery=episode.summary,
        )
        for episode in ended
    ]


def down_for(summary: EpisodeSummary) -> str:
    """``2 h 5 min``: from the episode's first failure to the successful run; "" when unknown."""
    if summary.started_at is None:
        return ""
    seconds = max(int((summary.ended_at - summary.started_at).total_seconds()), 0)
    minutes, _ = divmod(seconds, 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{mins} min" if mins else ""]
    return " ".join(p for p in parts if p) or "less than a minute"


def _failures_text(summary: EpisodeSummary) -> str:
    from airflow_failnotify.core.text import plural

    parts = []
    if summary.failed_runs:
        parts.append(plural(summary.failed_runs, "failed run"))
    if summary.failures:
        parts.append(plural(summary.failures, "task or entity failure"))
    return " and ".join(parts) or "no failure counted"


def render_recovery(
    draft: NotificationDraft,
    settings: DirectionSettings,
    *,
    dag_id: str,
    base_url: str | None,
    now: datetime | None,
) -> Notification:
    """ "Back to normal: <DAG> (<direction>)": down for how long, with how many failures, which run."""
    from airflow_failnotify.core import emails, text

    summary = draft.recovery or EpisodeSummary(None, draft.created_at, draft.run_id or "")
    name = text.one_line(draft.integration, text.MAX_DAG_ID_CHARS)
    shown_dag = text.one_line(dag_id, text.MAX_DAG_ID_CHARS)
    direction = draft.direction.value
    context: dict[str, Any] = {
        "about": text.direction_label(name, direction, shown_dag),
        "integration": name,
        "direction": direction,
        "dag_id": shown_dag,
        "down_for": down_for(summary),
        "since": text.format_utc(summary.started_at),
        "recovered": text.format_utc(summary.ended_at),
        "failures": _failures_text(summary),
        "run_id": text.one_line(summary.run_id),
        "run_url": text.run_url(base_url, dag_id, summary.run_id) if summary.run_id else None,
        "dag_url": text.dag_url(base_url, dag_id),
        "has_base_url": text.base_url_of(base_url) is not None,
    }
    body, html = emails._render("recovery", context)  # noqa: SLF001 - the one template environment
    return notification_for(draft, settings, body, html, dag_id=dag_id, base_url=base_url, now=now)
