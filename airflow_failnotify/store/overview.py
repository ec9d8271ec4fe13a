"""What the Integrations list shows: failed runs and entity failures per day, the last mail sent."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from airflow_failnotify.core.model import Direction, EventKind, FailureEvent, OutboxState
from airflow_failnotify.store import tables as t
from airflow_failnotify.store.codecs import event_from_row
from airflow_failnotify.store.session import StoreBase, utcnow

_CHUNK = 500


def read_task_failures(conn: Connection, runs: Iterable[tuple[str, str]]) -> list[FailureEvent]:
    """The final task failures recorded for these (dag_id, run_id) runs, oldest first.

    Task-side records and the ones the scheduler reconciled for a failed run (killed hard) alike: a
    job failure lists them, in mails and in Error Management.
    """
    wanted = sorted(set(runs))
    out: list[FailureEvent] = []
    for dag_id in sorted({dag for dag, _ in wanted}):
        run_ids = sorted({run for dag, run in wanted if dag == dag_id})
        for start in range(0, len(run_ids), _CHUNK):
            rows = conn.execute(
                select(t.event)
                .where(
                    t.event.c.dag_id == dag_id,
                    t.event.c.run_id.in_(run_ids[start : start + _CHUNK]),
                    t.event.c.kind == EventKind.TASK_FAILED.value,
                    t.event.c.is_final.is_(True),
                )
                .order_by(t.event.c.occurred_at, t.event.c.id)
            )
            out.extend(event_from_row(row) for row in rows)
    return out


class OverviewStore(StoreBase):
    def task_failures_of_runs(self, runs: Iterable[tuple[str, str]]) -> list[FailureEvent]:
        """See :func:`read_task_failures`."""
        with self._connect() as conn:
            return read_task_failures(conn, runs)

    def failure_chart(
        self, dag_ids: Sequence[str], *, days: int = 14, now: datetime | None = None
    ) -> dict[str, tuple[list[int], list[int]]]:
        """Per DAG (a direction of an integration) and day, oldest first: failed runs, entity failures.

        A failed run counts once, whatever happened inside it (its tasks, their retries); a run that
        failed again after a clear counts once, on the day it first failed. Entity failures are the
        final failed task instances and final ``record_entity_failure`` reports; a try that will be
        retried is not counted.
        """
        now = now or utcnow()
        start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
        chart = {dag_id: ([0] * days, [0] * days) for dag_id in dag_ids}
        if not dag_ids:
            return chart
        with self._connect() as conn:
            runs = conn.execute(
                select(t.event.c.dag_id, t.event.c.run_id, func.min(t.event.c.occurred_at))
                .where(
                    t.event.c.dag_id.in_(list(dag_ids)),
                    t.event.c.occurred_at >= start,
                    t.event.c.kind == EventKind.RUN_FAILED.value,
                )
                .group_by(t.event.c.dag_id, t.event.c.run_id)
            ).all()
            entities = conn.execute(
                select(t.event.c.dag_id, t.event.c.occurred_at).where(
                    t.event.c.dag_id.in_(list(dag_ids)),
                    t.event.c.occurred_at >= start,
                    t.event.c.kind.in_([EventKind.TASK_FAILED.value, EventKind.ENTITY_FAILED.value]),
                    t.event.c.is_final.is_(True),
                )
            ).all()
        for dag_id, _run, first in runs:
            index = (first - start).days
            if 0 <= index < days:
                chart[dag_id][0][index] += 1
        for dag_id, occurred_at in entities:
            index = (occurred_at - start).days
            if 0 <= index < days:
                chart[dag_id][1][index] += 1
        return chart

    def last_sent(self, integrations: Sequence[str]) -> dict[tuple[str, Direction], datetime]:
        """When the latest notification of each integration-direction was sent (never mailed: absent)."""
        if not integrations:
            return {}
        with self._connect() as conn:
            rows = conn.execute(
                select(t.outbox.c.integration, t.outbox.c.direction, func.max(t.outbox.c.sent_at))
                .where(
                    t.outbox.c.integration.in_(list(integrations)),
                    t.outbox.c.state == OutboxState.SENT.value,
                )
                .group_by(t.outbox.c.integration, t.outbox.c.direction)
            ).all()
        return {
            (integration, Direction(direction)): sent
            for integration, direction, sent in rows
            if sent is not None
        }
