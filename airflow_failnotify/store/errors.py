"""Error Management's log and the record of notification passes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from airflow_failnotify.store import tables as t
from airflow_failnotify.store.codecs import db_text
from airflow_failnotify.store.records import ErrorRow, PassRow
from airflow_failnotify.store.session import StoreBase, utcnow


class ErrorStore(StoreBase):
    def log_error(
        self,
        category: str,
        reason: str,
        *,
        server: str | None = None,
        integration: str | None = None,
        outbox_id: int | None = None,
        pass_id: int | None = None,
        now: datetime | None = None,
    ) -> None:
        with self._begin() as conn:
            conn.execute(
                insert(t.error_log).values(
                    occurred_at=now or utcnow(),
                    category=category,
                    integration=integration,
                    server=server,
                    reason=db_text(reason[:10000]),
                    outbox_id=outbox_id,
                    pass_id=pass_id,
                )
            )

    def log_errors(self, category: str, entries: Sequence[tuple[datetime, str]]) -> None:
        """Several error rows of one category, (when, reason) each, in one transaction."""
        if not entries:
            return
        with self._begin() as conn:
            conn.execute(
                insert(t.error_log),
                [
                    {"occurred_at": at, "category": category, "reason": db_text(reason[:10000])}
                    for at, reason in entries
                ],
            )

    def list_errors(
        self,
        *,
        integration: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        category: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[ErrorRow], int]:
        conditions = []
        if integration:
            conditions.append(t.error_log.c.integration == integration)
        if since:
            conditions.append(t.error_log.c.occurred_at >= since)
        if until:
            conditions.append(t.error_log.c.occurred_at <= until)
        if category:
            conditions.append(t.error_log.c.category == category)
        with self._connect() as conn:
            total = conn.execute(
                select(func.count()).select_from(t.error_log).where(*conditions)
            ).scalar_one()
            rows = conn.execute(
                select(t.error_log)
                .where(*conditions)
                .order_by(t.error_log.c.occurred_at.desc(), t.error_log.c.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        return [
            ErrorRow(r.id, r.occurred_at, r.category, r.integration, r.server, r.reason, r.outbox_id)
            for r in rows
        ], int(total)

    def start_pass(self, trigger: str, *, now: datetime | None = None) -> int:
        with self._begin() as conn:
            return int(
                conn.execute(
                    insert(t.notification_pass)
                    .values(trigger=trigger, started_at=now or utcnow())
                    .returning(t.notification_pass.c.id)
                ).scalar_one()
            )

    def finish_pass(self, pass_id: int, summary: Mapping[str, Any], *, now: datetime | None = None) -> None:
        with self._begin() as conn:
            conn.execute(
                update(t.notification_pass)
                .where(t.notification_pass.c.id == pass_id)
                .values(finished_at=now or utcnow(), summary=json.dumps(dict(summary), default=str))
            )

    def last_pass(self) -> PassRow | None:
        with self._connect() as conn:
            row = conn.execute(
                select(t.notification_pass)
                .where(t.notification_pass.c.finished_at.is_not(None))
                .order_by(t.notification_pass.c.id.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        return PassRow(row.id, row.trigger, row.started_at, row.finished_at, json.loads(row.summary or "{}"))
