"""Silences (issue 18): silence an integration (or all) until a time, lift it, and release what it held.

While an integration is silenced its notifications are written to the outbox as ``silenced`` with
``hold_until`` the silence's end (service/evaluation.py): not pending, so delivery does not claim them and
the watchdog's pending-age alarm ignores them; visible in Error Management as their own state. When the
silence ends (it expires, or someone lifts it), :func:`release_expired` makes them pending again and logs
one Error Management row per integration saying what was held. The notification pass calls it first.

Silences are operational, not configuration: they are not in ``failnotify config export/import`` (a file
re-imported a week later must not bring back a silence that has long expired, nor drop one set to cover
a maintenance window); they are set from the views and the CLI, and each change is in the audit trail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from airflow_failnotify.core.noise import parse_seconds
from airflow_failnotify.core.text import format_utc, plural
from airflow_failnotify.store import ALL_INTEGRATIONS, Actor, Silence, Store

log = logging.getLogger(__name__)

MAX_SILENCE = timedelta(days=366)
MAX_REASON_CHARS = 500
ERROR_CATEGORY = "silence"

__all__ = [
    "ALL_INTEGRATIONS",
    "ERROR_CATEGORY",
    "MAX_SILENCE",
    "Released",
    "SilenceError",
    "parse_until",
    "release_expired",
    "silence",
    "unsilence",
]


class SilenceError(ValueError):
    """A silence that cannot be set as asked (the message says why and what to do).

    ``field`` names what was wrong (``until`` or ``reason``), for a form to show it there.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Released:
    """The notifications of one integration a silence held, now pending."""

    integration: str
    count: int
    held_since: datetime


def parse_until(value: str, now: datetime) -> datetime:
    """The end of a silence: a duration from ``now`` (``90`` minutes, ``30m``, ``2h``, ``1d``) or a time
    (ISO 8601, ``2026-12-01T18:00``, ``2026-12-01 18:00+02:00``; without an offset it is UTC)."""
    text = (value or "").strip()
    if not text:
        raise SilenceError(
            "say until when: a duration such as 2h or 1d, or a time such as 2026-12-01T18:00", "until"
        )
    try:
        return now + timedelta(seconds=parse_seconds(text, default_unit="m"))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise SilenceError(
            f"{text!r} is neither a duration (30m, 2h, 1d) nor a time (2026-12-01T18:00, UTC unless it says)",
            "until",
        ) from err
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _label(integration: str) -> str:
    return "all integrations" if integration == ALL_INTEGRATIONS else integration


def silence(
    store: Store, integration: str, until: datetime, reason: str, actor: Actor, now: datetime
) -> Silence:
    """Silence ``integration`` (``*``: all) until ``until``; replaces a silence it already has."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise SilenceError("a reason is required: say why the notifications are held", "reason")
    if len(reason) > MAX_REASON_CHARS:
        raise SilenceError(f"the reason must be at most {MAX_REASON_CHARS} characters", "reason")
    if until.tzinfo is None:
        raise SilenceError("the end of a silence must be an aware (UTC) time", "until")
    if until <= now:
        raise SilenceError(f"the end of a silence must be in the future (now is {format_utc(now)})", "until")
    if until - now > MAX_SILENCE:
        raise SilenceError("a silence may last at most 366 days: set a nearer end", "until")
    if integration != ALL_INTEGRATIONS and store.get_registration(integration) is None:
        raise SilenceError(f"{integration} is not registered for failure notification: nothing to silence")
    created = Silence(integration, until, reason, actor.name, now)
    store.set_silence(created, actor=actor)
    log.info("failnotify: %s silenced until %s by %s", _label(integration), format_utc(until), actor.name)
    release_expired(store, now)  # held rows follow the new end (extended or shortened)
    return created


def unsilence(store: Store, integration: str, actor: Actor, now: datetime) -> list[Released]:
    """Lift the silence of ``integration`` (``*``: the one of all); what it held is released at once.

    Returns the releases (empty when nothing was held); raises :class:`SilenceError` when there was no
    silence to lift.
    """
    lifted = store.clear_silence(integration, actor=actor, now=now)
    if lifted is None:
        raise SilenceError(f"{_label(integration)} is not silenced")
    log.info("failnotify: silence of %s lifted by %s", _label(integration), actor.name)
    return release_expired(store, now)


def release_expired(store: Store, now: datetime) -> list[Released]:
    """Silenced rows whose silence has ended become pending; one Error Management row per integration.

    Rows of an integration still silenced (its own silence or the one of all) follow that silence's end.
    Expired silences are deleted afterwards (the audit trail keeps who set them).
    """
    released: list[Released] = []
    for held in store.held_notifications():
        active = store.active_silence_for(held.integration, now)
        if active is not None:
            if held.hold_until != active.until:
                store.hold_notifications(held.integration, active.until)
            continue
        count = store.release_notifications(held.integration, now)
        if not count:
            continue
        released.append(Released(held.integration, count, held.oldest_created_at))
        store.log_error(
            ERROR_CATEGORY,
            f"silence of {held.integration} ended: {plural(count, 'notification')} held since "
            f"{format_utc(held.oldest_created_at)} {'is' if count == 1 else 'are'} sent now",
            integration=held.integration,
            now=now,
        )
    store.delete_expired_silences(now)
    return released
