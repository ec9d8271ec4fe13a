"""Capture: failure events and activity of registered DAGs, and the queries over them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection

from airflow_failnotify.core.capture import EventRecord
from airflow_failnotify.core.model import Direction, EventKind, FailureEvent
from airflow_failnotify.store import tables as t
from airflow_failnotify.store.codecs import db_text, event_from_row
from airflow_failnotify.store.session import StoreBase, insert_ignore, utcnow


class EventStore(StoreBase):
    def lookup_dag(self, dag_id: str, *, max_age: float = 5.0) -> tuple[str, Direction] | None:
        """(integration, direction) for a DAG, or None; cached briefly since listeners ask often."""
        now = utcnow()
        if self._dag_lookup_at is None or (now - self._dag_lookup_at).total_seconds() > max_age:
            self._dag_lookup.clear()
            self._dag_lookup_at = now
        if dag_id not in self._dag_lookup:
            with self._connect() as conn:
                row = conn.execute(
                    select(t.direction_config.c.integration, t.direction_config.c.direction).where(
                        t.direction_config.c.dag_id == dag_id
                    )
                ).first()
            self._dag_lookup[dag_id] = None if row is None else (row.integration, Direction(row.direction))
        return self._dag_lookup[dag_id]

    def registered_dag_ids(self) -> dict[str, tuple[str, Direction]]:
        with self._connect() as conn:
            return {
                row.dag_id: (row.integration, Direction(row.direction))
                for row in conn.execute(
                    select(
                        t.direction_config.c.dag_id,
                        t.direction_config.c.integration,
                        t.direction_config.c.direction,
                    )
                )
            }

    def _touch_activity(self, conn: Connection, integration: str, direction: Direction, at: datetime) -> None:
        values = {"integration": integration, "direction": direction.value, "last_activity_at": at}
        if self.is_postgres:
            stmt: Any = pg.insert(t.activity).values(values)
        else:
            stmt = sqlite_dialect.insert(t.activity).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["integration", "direction"],
            set_={
                "last_activity_at": func.max(t.activity.c.last_activity_at, stmt.excluded.last_activity_at)
                if not self.is_postgres
                else func.greatest(t.activity.c.last_activity_at, stmt.excluded.last_activity_at)
            },
        )
        conn.execute(stmt)

    def record_events(self, records: Iterable[EventRecord], *, now: datetime | None = None) -> int:
        """Record failures/outcomes of registered DAGs (others are ignored); idempotent.

        Every record but an import error is activity of its integration-direction too. Returns the
        rows inserted.
        """
        now = now or utcnow()
        inserted = 0
        with self._begin() as conn:
            for record in records:
                row = conn.execute(
                    select(t.direction_config.c.integration, t.direction_config.c.direction).where(
                        t.direction_config.c.dag_id == record.dag_id
                    )
                ).first()
                if row is None:
                    continue
                direction = Direction(row.direction)
                # Ids can make the key longer than any index likes; its digest is as unique.
                key = hashlib.sha256(record.capture_key.encode("utf-8", "surrogatepass")).hexdigest()
                added = insert_ignore(
                    conn,
                    t.event,
                    [
                        {
                            "kind": record.kind.value,
                            "integration": row.integration,
                            "direction": direction.value,
                            "dag_id": record.dag_id,
                            "run_id": record.run_id,
                            "task_id": record.task_id,
                            "map_index": record.map_index,
                            "entity": db_text(record.entity),
                            "try_number": record.try_number,
                            "max_tries": record.max_tries,
                            "is_final": record.is_final,
                            "not_accessible": record.not_accessible,
                            "error_message": db_text(record.error_message),
                            "traceback": db_text(record.traceback),
                            "occurred_at": record.occurred_at,
                            "recorded_at": now,
                            "source": record.source,
                            "capture_key": key,
                            "evaluated": False,
                        }
                    ],
                    ["capture_key"],
                )
                if not added and record.source == "task":
                    # The task's own record carries the live exception (traceback, not-accessible);
                    # it improves a plain-string row the scheduler reconciled first.
                    conn.execute(
                        update(t.event)
                        .where(
                            t.event.c.capture_key == key,
                            t.event.c.source.in_(["reconcile", "scheduler"]),
                            t.event.c.evaluated.is_(False),
                        )
                        .values(
                            error_message=db_text(record.error_message),
                            traceback=db_text(record.traceback),
                            not_accessible=record.not_accessible,
                            source=record.source,
                        )
                    )
                inserted += added
                if record.kind is not EventKind.DAG_IMPORT_ERROR:  # a broken file is not activity
                    self._touch_activity(conn, row.integration, direction, record.occurred_at)
        return inserted

    def record_activity(self, dag_id: str, at: datetime) -> bool:
        """Activity of a registered DAG (a run or task starting or finishing); False if not registered."""
        found = self.lookup_dag(dag_id)
        if found is None:
            return False
        with self._begin() as conn:
            self._touch_activity(conn, found[0], found[1], at)
        return True

    def recorded_task_failures(self, dag_id: str, run_id: str) -> set[tuple[str, int]]:
        """(task_id, map_index) of the task failures already recorded for one run."""
        with self._connect() as conn:
            rows = conn.execute(
                select(t.event.c.task_id, t.event.c.map_index).where(
                    t.event.c.dag_id == dag_id,
                    t.event.c.run_id == run_id,
                    t.event.c.kind == EventKind.TASK_FAILED.value,
                )
            )
            return {(row.task_id, row.map_index) for row in rows}

    def pending_immediate_event_range(self) -> tuple[int, int]:
        """(lowest, highest) id among unevaluated events that may need an immediate notification; 0s: none."""
        with self._connect() as conn:
            low, high = conn.execute(
                select(func.min(t.event.c.id), func.max(t.event.c.id)).where(
                    t.event.c.evaluated.is_(False),
                    or_(t.event.c.kind == EventKind.RUN_FAILED.value, t.event.c.not_accessible.is_(True)),
                )
            ).one()
        return int(low or 0), int(high or 0)

    def max_pending_immediate_event_id(self) -> int:
        """Highest id among unevaluated events that may need an immediate notification."""
        return self.pending_immediate_event_range()[1]

    def list_events(
        self,
        *,
        integration: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        failures_only: bool = True,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[FailureEvent], int]:
        conditions = []
        if failures_only:
            conditions.append(t.event.c.kind != EventKind.RUN_SUCCEEDED.value)
        if integration:
            conditions.append(t.event.c.integration == integration)
        if since:
            conditions.append(t.event.c.occurred_at >= since)
        if until:
            conditions.append(t.event.c.occurred_at <= until)
        with self._connect() as conn:
            total = conn.execute(select(func.count()).select_from(t.event).where(*conditions)).scalar_one()
            rows = conn.execute(
                select(t.event)
                .where(*conditions)
                .order_by(t.event.c.occurred_at.desc(), t.event.c.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        return [event_from_row(r) for r in rows], int(total)

    def failure_counts_by_day(
        self, integrations: Sequence[str], *, days: int = 14, now: datetime | None = None
    ) -> dict[str, list[int]]:
        """Failures per day, oldest first, for the Integrations view's sparklines."""
        now = now or utcnow()
        start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
        counts = {name: [0] * days for name in integrations}
        if not integrations:
            return counts
        with self._connect() as conn:
            rows = conn.execute(
                select(t.event.c.integration, t.event.c.occurred_at).where(
                    t.event.c.integration.in_(list(integrations)),
                    t.event.c.occurred_at >= start,
                    t.event.c.kind != EventKind.RUN_SUCCEEDED.value,
                )
            )
            for row in rows:
                index = (row.occurred_at - start).days
                if 0 <= index < days:
                    counts[row.integration][index] += 1
        return counts
