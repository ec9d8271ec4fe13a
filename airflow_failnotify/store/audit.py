"""The audit trail: every configuration change with who, when and what changed (persistence only).

A change and its audit row are written in one transaction (:func:`write_audit` takes the change's
connection), so there is no change without its row and no row without its change. What changed is
decided by :func:`airflow_failnotify.core.audit.changes_between`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from airflow_failnotify.core.audit import AuditEntry, FieldChange
from airflow_failnotify.store import tables as t
from airflow_failnotify.store.codecs import db_text
from airflow_failnotify.store.session import StoreBase, utcnow


def write_audit(
    conn: Connection,
    *,
    actor: str,
    source: str,
    action: str,
    integration: str | None,
    changes: Sequence[FieldChange],
    now: datetime,
) -> None:
    """One audit row in the caller's transaction."""
    conn.execute(
        insert(t.audit).values(
            occurred_at=now,
            actor=db_text(actor[:250]) or "unknown",
            source=source,
            action=action,
            integration=integration,
            changes=db_text(
                json.dumps([{"field": c.field, "before": c.before, "after": c.after} for c in changes])
            ),
        )
    )


def _entry(row: Any) -> AuditEntry:
    changes = tuple(FieldChange(c["field"], c.get("before"), c.get("after")) for c in json.loads(row.changes))
    return AuditEntry(
        id=row.id,
        occurred_at=row.occurred_at,
        actor=row.actor,
        source=row.source,
        action=row.action,
        integration=row.integration,
        changes=changes,
    )


class AuditStore(StoreBase):
    def record_audit(
        self,
        *,
        actor: str,
        source: str,
        action: str,
        integration: str | None,
        changes: Sequence[FieldChange],
        now: datetime | None = None,
    ) -> None:
        """A change made outside the store's registration writes (e.g. a plugin setting)."""
        with self._begin() as conn:
            write_audit(
                conn,
                actor=actor,
                source=source,
                action=action,
                integration=integration,
                changes=changes,
                now=now or utcnow(),
            )

    def list_audit(
        self, *, integration: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[AuditEntry], int]:
        """Audit rows, newest first, and how many there are (of one integration when given)."""
        conditions = [] if integration is None else [t.audit.c.integration == integration]
        with self._connect() as conn:
            total = conn.execute(select(func.count()).select_from(t.audit).where(*conditions)).scalar_one()
            rows = conn.execute(
                select(t.audit)
                .where(*conditions)
                .order_by(t.audit.c.occurred_at.desc(), t.audit.c.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        return [_entry(row) for row in rows], int(total)
