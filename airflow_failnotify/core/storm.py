"""The recipient-level storm cap (noise control, issue 18): at most N mails per recipient set per window.

Pure: imports nothing from Airflow, SQLAlchemy or Flask.

- A **recipient set** is a mail's To and Cc together, lower-cased, without duplicates, sorted: the
  integrations of one team that mail the same people share it, whatever their connection. A row is
  never split per address (a mail to ``a`` and ``b`` is counted for the set ``a,b`` only).
- **Windows** are fixed and aligned to the epoch by their length (60 minutes: every full hour, UTC), so
  every pass and every process agrees on them without shared state.
- **Counting**: the mails sent to the recipient set in the current window, read from the outbox's sent
  rows (the distinct Message-IDs they record, so one mail carrying several rows counts once). The digest
  counts too, in the window it goes out in.
- **Above the cap** a due mail is not sent: its rows are held (state ``storm_held``) until the window
  ends; the first pass after that sends everything held for the recipient set as one digest
  (:func:`airflow_failnotify.core.digest.storm_digest`). Nothing is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_failnotify.core.model import DirectionSettings
from airflow_failnotify.core.outbox import Mail, Outbox, Peers
from airflow_failnotify.core.text import as_utc, format_utc

__all__ = [
    "STORM_WINDOW_MAX_MINUTES",
    "STORM_WINDOW_MIN_MINUTES",
    "StormCap",
    "digest_mails",
    "held_reason",
    "recipient_key",
    "recipient_set",
    "recipients_label",
    "storm_hold",
]

STORM_WINDOW_MIN_MINUTES = 1
STORM_WINDOW_MAX_MINUTES = 1440
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class StormCap:
    """``mails`` per recipient set per window of ``window_minutes``; ``mails`` 0 is off."""

    mails: int = 0
    window_minutes: int = 60

    def __post_init__(self) -> None:
        if self.mails < 0:
            raise ValueError("mails must be 0 (off) or a positive number of mails per window")
        if not STORM_WINDOW_MIN_MINUTES <= self.window_minutes <= STORM_WINDOW_MAX_MINUTES:
            raise ValueError(
                f"the window must be from {STORM_WINDOW_MIN_MINUTES} to {STORM_WINDOW_MAX_MINUTES} minutes"
            )

    @property
    def on(self) -> bool:
        return self.mails > 0

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.window_minutes)

    def window_of(self, now: datetime) -> tuple[datetime, datetime]:
        """The fixed window ``now`` is in: [start, end)."""
        elapsed = as_utc(now) - _EPOCH
        start = _EPOCH + (elapsed // self.window) * self.window
        return start, start + self.window

    def hold_until(self, sent_in_window: int, now: datetime) -> datetime | None:
        """When a due mail to a recipient set that got ``sent_in_window`` mails in ``now``'s window
        may go out: None for now (off, or below the cap), else the window's end (in the digest)."""
        if not self.on or sent_in_window < self.mails:
            return None
        return self.window_of(now)[1]


def recipient_set(to: Iterable[str], cc: Iterable[str] = ()) -> tuple[str, ...]:
    """To and Cc together, stripped, lower-cased, without duplicates, sorted."""
    return tuple(sorted({a.strip().lower() for a in (*to, *cc) if a.strip()}))


def recipient_key(settings: DirectionSettings) -> str:
    """The recipient set a direction mails, as one string (what the cap counts by)."""
    return ",".join(recipient_set(settings.recipients, settings.cc))


def recipients_label(recipients: Sequence[str], shown: int = 3) -> str:
    """``a@x, b@x, c@x and 2 more``: the recipient set for a subject line."""
    if len(recipients) <= shown:
        return ", ".join(recipients)
    return f"{', '.join(recipients[:shown])} and {len(recipients) - shown} more"


def held_reason(cap: StormCap, settings: DirectionSettings, sent: int, now: datetime) -> str:
    """What a held row says about itself (its last_error while it is held)."""
    start, end = cap.window_of(now)
    who = recipients_label(recipient_set(settings.recipients, settings.cc))
    return (
        f"held by the storm cap: {sent} mail(s) to {who} since {format_utc(start)} (at most {cap.mails} "
        f"per {cap.window_minutes} min); goes out in one storm digest after {format_utc(end)}"
    )


def storm_hold(
    cap: StormCap, outbox: Outbox, peers: Peers | None, mail: Mail, now: datetime
) -> tuple[datetime, str] | None:
    """Until when, and why, the cap holds ``mail``; None: it may go now. Counts the mails sent in
    ``now``'s window to its recipient set by every integration-direction that mails it (``peers``,
    and the mail's own). Raises what the store raises."""
    if not cap.on:
        return None
    key = recipient_key(mail.first.settings)
    senders = set(peers(key)) if peers is not None else set()
    senders.update((str(r.integration), str(getattr(r.direction, "value", r.direction))) for r in mail.rows)
    start, _ = cap.window_of(now)
    sent = outbox.mails_sent_since(sorted(senders), start)
    until = cap.hold_until(sent, now)
    if until is None:
        return None
    return until, held_reason(cap, mail.first.settings, sent, now)


def digest_mails(rows: Sequence[Any]) -> list[Mail]:
    """The digests that carry claimed held rows: one per recipient set (as configured now), its rows
    oldest first, through the connection of its oldest row."""
    groups: dict[str, list[Any]] = {}
    for row in sorted(rows, key=lambda r: int(r.id)):
        groups.setdefault(recipient_key(row.settings), []).append(row)
    return [
        Mail(rows=tuple(of_set), claim_token=str(of_set[0].claim_token), storm_digest=True)
        for of_set in groups.values()
    ]
