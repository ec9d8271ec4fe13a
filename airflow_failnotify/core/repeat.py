"""The repeat interval (noise control): within one episode, at most one mail per interval.

While an integration-direction keeps failing the same way, what becomes due is held and goes out
together at the end of the interval, so each failure is still in exactly one mail. A kind of
problem the episode has not mailed yet (e.g. not accessible after job failures) goes out at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any


def repeat_interval(row: Any) -> timedelta | None:
    """The row's direction's repeat interval, None when off (0, or settings without noise control)."""
    minutes = getattr(getattr(row.settings, "noise", None), "repeat_interval_minutes", 0)
    return timedelta(minutes=minutes) if minutes else None


def hold_until(rows: Sequence[Any], sent: Sequence[Any]) -> datetime | None:
    """When the mail of ``rows`` may go out, or None for now.

    ``sent`` are the rows of the same integration-direction sent within the interval (newest
    first). The mail is held when every kind it carries was already mailed in its episode then.
    """
    interval = repeat_interval(rows[0])
    episode = rows[0].draft.episode_key
    if interval is None or episode is None:
        return None
    in_episode = [s for s in sent if s.draft.episode_key == episode and s.sent_at is not None]
    if not in_episode:
        return None
    mailed_kinds = {s.kind for s in in_episode}
    if any(row.kind not in mailed_kinds for row in rows):
        return None  # a new kind of problem: at once
    last: datetime = max(s.sent_at for s in in_episode)
    return last + interval


def repeat_hold(outbox: Any, mail: Any, now: datetime) -> datetime | None:
    """When the repeat interval lets ``mail`` (a :class:`~airflow_failnotify.core.outbox.Mail`) go out,
    or None for now. Reads the outbox's sent rows; raises what the store raises."""
    interval = repeat_interval(mail.first)
    if interval is None:
        return None
    sent = outbox.sent_since(mail.first.integration, mail.first.direction, now - interval)
    until = hold_until(mail.rows, sent)
    return until if until is not None and until > now else None
