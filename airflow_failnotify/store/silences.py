"""Silences (issue 18): who silenced which integration until when, and the outbox rows they hold.

Persistence only: when a silence applies, what is released and what is logged is decided by
:mod:`airflow_failnotify.service.silences`. A silence change and its audit row are written in one
transaction, like a configuration change (:mod:`airflow_failnotify.store.audit`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from airflow_failnotify.core.audit import FieldChange
from airflow_failnotify.core.model import OutboxState
from airflow_failnotify.store import tables as t
from airflow_failnotify.store.audit import write_audit
from airflow_failnotify.store.codecs import db_text
from airflow_failnotify.store.records import ALL_INTEGRATIONS, HeldNotifications, Silence
from airflow_failnotify.store.registrations import Actor
from airflow_failnotify.store.session import StoreBase

SILENCE, UNSILENCE = "silence", "unsilence"  # audit actions


def _silence(row: Any) -> Silence:
    return Silence(row.integration, row.until, row.reason, row.created_by, row.created_at)


def read_active_silence(conn: Connection, integration: str, now: datetime) -> Silence | None:
    """The silence that holds ``integration`` at ``now`` (its own or the one of all), the later ending."""
    row = conn.execute(
        select(t.silence)
        .where(t.silence.c.integration.in_([integration, ALL_INTEGRATIONS]), t.silence.c.until > now)
        .order_by(t.silence.c.until.desc())
        .limit(1)
    ).first()
    return _silence(row) if row is not None else None


def read_active_silences(conn: Connection, now: datetime) -> dict[str, datetime]:
    """Every silence in force at ``now``: integration (or ``*``) -> until."""
    rows = conn.execute(select(t.silence.c.integration, t.silence.c.until).where(t.silence.c.until > now))
    return {row.integration: row.until for row in rows}


def _changes(before: Silence | None, after: Silence | None) -> list[FieldChange]:
    fields = ("until", "reason")
    out = []
    for name in fields:
        was = getattr(before, name) if before else None
        now = getattr(after, name) if after else None
        was = was.isoformat() if isinstance(was, datetime) else was
        now = now.isoformat() if isinstance(now, datetime) else now
        if was != now:
            out.append(FieldChange(f"silence.{name}", was, now))
    return out


def _held(integration: str) -> Any:
    return and_(t.outbox.c.state == OutboxState.SILENCED.value, t.outbox.c.integration == integration)


class SilenceStore(StoreBase):
    def set_silence(self, silence: Silence, *, actor: Actor) -> Silence | None:
        """Set (or replace) the silence of ``silence.integration``; returns the one it replaced."""
        with self._begin() as conn:
            row = conn.execute(
                select(t.silence).where(t.silence.c.integration == silence.integration)
            ).first()
            before = _silence(row) if row is not None else None
            conn.execute(delete(t.silence).where(t.silence.c.integration == silence.integration))
            conn.execute(
                insert(t.silence).values(
                    integration=silence.integration,
                    until=silence.until,
                    reason=db_text(silence.reason) or "",
                    created_by=db_text(silence.created_by[:250]) or "unknown",
                    created_at=silence.created_at,
                )
            )
            write_audit(
                conn,
                actor=actor.name,
                source=actor.source,
                action=SILENCE,
                integration=silence.integration,
                changes=_changes(before, silence),
                now=silence.created_at,
            )
        return before

    def clear_silence(self, integration: str, *, actor: Actor, now: datetime) -> Silence | None:
        """Lift the silence of ``integration`` (``*``: the one of all); returns it, None if there was none."""
        with self._begin() as conn:
            row = conn.execute(select(t.silence).where(t.silence.c.integration == integration)).first()
            if row is None:
                return None
            before = _silence(row)
            conn.execute(delete(t.silence).where(t.silence.c.integration == integration))
            write_audit(
                conn,
                actor=actor.name,
                source=actor.source,
                action=UNSILENCE,
                integration=integration,
                changes=_changes(before, None),
                now=now,
            )
        return before

    def list_silences(self, *, now: datetime | None = None) -> list[Silence]:
        """Every stored silence (those in force at ``now`` when given), the one of all first."""
        query = select(t.silence).order_by(
            (t.silence.c.integration != ALL_INTEGRATIONS), t.silence.c.integration
        )
        if now is not None:
            query = query.where(t.silence.c.until > now)
        with self._connect() as conn:
            return [_silence(row) for row in conn.execute(query)]

    def active_silence_for(self, integration: str, now: datetime) -> Silence | None:
        with self._connect() as conn:
            return read_active_silence(conn, integration, now)

    def delete_expired_silences(self, now: datetime) -> list[Silence]:
        with self._begin() as conn:
            rows = conn.execute(select(t.silence).where(t.silence.c.until <= now)).all()
            if rows:
                conn.execute(delete(t.silence).where(t.silence.c.until <= now))
        return [_silence(row) for row in rows]

    def held_notifications(self) -> list[HeldNotifications]:
        """The silenced outbox rows, by integration."""
        query = (
            select(
                t.outbox.c.integration,
                func.count(),
                func.min(t.outbox.c.created_at),
                func.max(t.outbox.c.hold_until),
            )
            .where(t.outbox.c.state == OutboxState.SILENCED.value)
            .group_by(t.outbox.c.integration)
            .order_by(t.outbox.c.integration)
        )
        coerce = t.UtcDateTime().process_result_value  # min()/max() come back untyped on SQLite
        with self._connect() as conn:
            rows = conn.execute(query).all()
            dialect = conn.dialect
        return [
            HeldNotifications(row[0], int(row[1]), coerce(row[2], dialect), coerce(row[3], dialect))  # type: ignore[arg-type]
            for row in rows
        ]

    def hold_notifications(self, integration: str, until: datetime) -> int:
        """Hold the silenced rows of ``integration`` until ``until`` (a silence set, extended, shortened)."""
        with self._begin() as conn:
            return int(
                conn.execute(
                    update(t.outbox)
                    .where(
                        _held(integration),
                        or_(t.outbox.c.hold_until.is_(None), t.outbox.c.hold_until != until),
                    )
                    .values(hold_until=until)
                ).rowcount
                or 0
            )

    def release_notifications(self, integration: str, now: datetime) -> int:
        """Silenced rows of ``integration`` become pending, unless a silence holds it at ``now`` after all
        (checked in the same transaction, so a silence set meanwhile keeps them)."""
        with self._begin() as conn:
            if read_active_silence(conn, integration, now) is not None:
                return 0
            return int(
                conn.execute(
                    update(t.outbox)
                    .where(_held(integration))
                    .values(state=OutboxState.PENDING.value, hold_until=None, updated_at=now)
                ).rowcount
                or 0
            )


__all__ = ["SILENCE", "UNSILENCE", "SilenceStore", "read_active_silence", "read_active_silences"]
