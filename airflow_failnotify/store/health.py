"""What the health and the watchdog read and write: the oldest pending mail, settings compared and set."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, case, func, or_, select, update

from airflow_failnotify.core.model import OutboxState
from airflow_failnotify.store import tables as t
from airflow_failnotify.store.session import StoreBase, insert_ignore, utcnow


class HealthStore(StoreBase):
    def oldest_pending_at(self, *, now: datetime | None = None) -> datetime | None:
        """When the mail waiting longest to go out became due (pending, or claimed and sending).

        A mail is due when it is written, or when noise control's hold on it ends (the group wait, the
        repeat interval): a mail held for an hour by the repeat interval is not an hour late. Mails still
        held at ``now`` do not count, nor do silenced ones (held by a silence until it ends, issue 18).
        """
        now = now or utcnow()
        outbox = t.outbox.c
        due_at = case((and_(outbox.hold_until.is_not(None), outbox.hold_until > outbox.created_at),
                       outbox.hold_until), else_=outbox.created_at)
        with self._connect() as conn:
            value = conn.execute(
                select(func.min(due_at)).where(
                    outbox.state.in_([OutboxState.PENDING.value, OutboxState.SENDING.value]),
                    or_(outbox.hold_until.is_(None), outbox.hold_until <= now),
                )
            ).scalar()
        if value is None:
            return None
        # min() over the UtcDateTime column comes back untyped on SQLite: coerce it the same way.
        return t.UtcDateTime().process_result_value(value, self.engine.dialect)

    def compare_and_set_setting(
        self, key: str, expected: str | None, value: str, *, now: datetime | None = None
    ) -> bool:
        """Set ``key`` to ``value`` only if it still holds ``expected`` (None: absent); True if it did.

        Two watchdogs (two schedulers) racing for one transition: exactly one wins.
        """
        now = now or utcnow()
        with self._begin() as conn:
            if expected is None:
                return (
                    insert_ignore(conn, t.setting, [{"key": key, "value": value, "updated_at": now}], ["key"])
                    == 1
                )
            changed = conn.execute(
                update(t.setting)
                .where(t.setting.c.key == key, t.setting.c.value == expected)
                .values(value=value, updated_at=now)
            ).rowcount
        return bool(changed)
