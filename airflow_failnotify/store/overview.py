"""What the Integrations list shows: failed runs and entity failures per day, the last mail sent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select, tuple_
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
    wanted = set(runs)
    return ordered_task_failures(read_task_failures_by_run(conn, wanted), wanted)


def read_task_failures_by_run(
    conn: Connection, runs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], list[FailureEvent]]:
    """The final task failures of each of these (dag_id, run_id) runs (an empty list for a run with
    none), read ``_CHUNK`` runs per query."""
    wanted = sorted(set(runs))
    out: dict[tuple[str, str], list[FailureEvent]] = {run: [] for run in wanted}
    for start in range(0, len(wanted), _CHUNK):
        rows = conn.execute(
            select(t.event).where(
                tuple_(t.event.c.dag_id, t.event.c.run_id).in_(wanted[start : start + _CHUNK]),
                t.event.c.kind == EventKind.TASK_FAILED.value,
                t.event.c.is_final.is_(True),
            )
        )
        for row in rows:
            out[(row.dag_id, row.run_id)].append(event_from_row(row))
    return out


def ordered_task_failures(
    by_run: Mapping[tuple[str, str], Sequence[FailureEvent]], runs: Iterable[tuple[str, str]]
) -> list[FailureEvent]:
    """The failures of ``runs`` out of ``by_run``: DAG by DAG (sorted), each DAG's oldest first."""
    of_dag: dict[str, list[FailureEvent]] = {}
    for run in sorted(set(runs)):
        of_dag.setdefault(run[0], []).extend(by_run[run])
    return [
        event
        for dag_id in sorted(of_dag)
        for event in sorted(of_dag[dag_id], key=lambda e: (e.occurred_at, e.id))
    ]


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
