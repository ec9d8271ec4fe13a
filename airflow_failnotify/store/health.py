"""What the health and the watchdog read and write: the oldest pending mail, settings compared and set."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update

from airflow_failnotify.core.model import OutboxState
from airflow_failnotify.store import tables as t
from airflow_failnotify.store.session import StoreBase, insert_ignore, utcnow


class HealthStore(StoreBase):
    def oldest_pending_at(self) -> datetime | None:
        """When the oldest mail still waiting to go out was written (pending, or claimed and sending).

        Silenced mails (held by a silence until it ends, issue 18) do not count: they are not late.
        """
        with self._connect() as conn:
            value = conn.execute(
                select(func.min(t.outbox.c.created_at)).where(
                    t.outbox.c.state.in_([OutboxState.PENDING.value, OutboxState.SENDING.value])
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
