"""The evaluation's unit of work: read the rules' inputs and write their outputs in one transaction.

The transaction first locks the evaluation row, so two evaluations never interleave
(PostgreSQL: row lock; SQLite: BEGIN IMMEDIATE), and a crash halfway leaves the events
unevaluated and the outbox untouched. What to write is decided by the rules and the service
(:mod:`airflow_failnotify.service.evaluation`); this module only reads and writes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from airflow_failnotify.core.model import (
    Direction,
    DirectionSettings,
    DirectionState,
    FailureEvent,
    NotificationDraft,
    NotificationKind,
    OutboxState,
    Registration,
)
from airflow_failnotify.store import tables as t
from airflow_failnotify.store.codecs import draft_to_payload, event_from_row, state_from_row, state_row
from airflow_failnotify.store.overview import read_task_failures
from airflow_failnotify.store.registrations import read_registrations
from airflow_failnotify.store.session import StoreBase, insert_ignore
from airflow_failnotify.store.silences import read_active_silences

StateKey = tuple[str, Direction]


@dataclass
class EvaluationUnit:
    """One locked evaluation transaction: the inputs, read under the lock, and the writes."""

    conn: Connection
    registrations: list[Registration]
    states: dict[StateKey, DirectionState]
    events: list[FailureEvent]
    written: list[int] = field(default_factory=list)
    _silences: dict[str, datetime] | None = None

    def covered_event_ids(self, kind: NotificationKind, event_ids: Iterable[int]) -> set[int]:
        """The events among ``event_ids`` that a notification of ``kind`` already reports."""
        ids = list(event_ids)
        if not ids:
            return set()
        return set(
            self.conn.execute(
                select(t.outbox_event.c.event_id).where(
                    t.outbox_event.c.kind == kind.value, t.outbox_event.c.event_id.in_(ids)
                )
            ).scalars()
        )

    def active_silences(self, now: datetime) -> dict[str, datetime]:
        """The silences in force at ``now`` (integration or ``*`` -> until), read once per evaluation."""
        if self._silences is None:
            self._silences = read_active_silences(self.conn, now)
        return self._silences

    def task_failures_of_runs(self, runs: Iterable[tuple[str, str]]) -> list[FailureEvent]:
        """Every final task failure recorded for these (dag_id, run_id) runs, evaluated or not.

        Read in the evaluation's transaction, so it sees what the scheduler reconciled for a failed run
        (tasks killed hard) as soon as it was committed. Oldest first.
        """
        return read_task_failures(self.conn, runs)

    def add_notification(
        self,
        draft: NotificationDraft,
        settings: DirectionSettings,
        dag_id: str,
        *,
        message_id: str,
        now: datetime,
        state: OutboxState = OutboxState.PENDING,
        hold_until: datetime | None = None,
    ) -> int | None:
        """Insert one notification unless its dedupe key exists; records the events it covers.

        ``state`` is pending, or silenced with ``hold_until`` the end of the silence that holds it.
        """
        exists = self.conn.execute(
            select(t.outbox.c.id).where(t.outbox.c.dedupe_key == draft.dedupe_key)
        ).scalar_one_or_none()
        if exists is not None:
            return None
        outbox_id = self.conn.execute(
            insert(t.outbox)
            .values(
                kind=draft.kind.value,
                integration=draft.integration,
                direction=draft.direction.value,
                dedupe_key=draft.dedupe_key,
                state=state.value,
                hold_until=hold_until,
                smtp_conn_id=settings.smtp_conn_id,
                immediate=draft.kind.is_immediate,
                payload=draft_to_payload(draft, settings, dag_id),
                message_id=message_id,
                attempts=0,
                created_at=now,
                updated_at=now,
            )
            .returning(t.outbox.c.id)
        ).scalar_one()
        # An inactivity notification covers no event; the others record what they report.
        insert_ignore(
            self.conn,
            t.outbox_event,
            [{"kind": draft.kind.value, "event_id": e.id, "outbox_id": outbox_id} for e in draft.events],
            ["kind", "event_id"],
        )
        self.written.append(int(outbox_id))
        return int(outbox_id)

    def finish(self, states: Mapping[StateKey, DirectionState], *, now: datetime) -> None:
        """Mark the read events evaluated and replace the rule state with ``states``."""
        if self.events:
            self.conn.execute(
                update(t.event).where(t.event.c.id.in_([e.id for e in self.events])).values(evaluated=True)
            )
        self.conn.execute(delete(t.direction_state))
        rows = [state_row(state) for state in states.values()]
        if rows:
            self.conn.execute(insert(t.direction_state), rows)
        self.conn.execute(
            update(t.evaluation_lock)
            .where(t.evaluation_lock.c.name == "evaluation")
            .values(last_evaluated_at=now)
        )


class EvaluationStore(StoreBase):
    @contextmanager
    def evaluation(self, *, batch_size: int = 5000) -> Iterator[EvaluationUnit]:
        """Lock the evaluation, read registrations, rule state and up to ``batch_size`` new events."""
        with self._begin() as conn:
            lock = select(t.evaluation_lock).where(t.evaluation_lock.c.name == "evaluation")
            if self.is_postgres:
                lock = lock.with_for_update()
            conn.execute(lock).first()
            events = [
                event_from_row(row)
                for row in conn.execute(
                    select(t.event)
                    .where(t.event.c.evaluated.is_(False))
                    .order_by(t.event.c.id)
                    .limit(batch_size)
                )
            ]
            yield EvaluationUnit(conn, read_registrations(conn), _read_states(conn), events)


def _read_states(conn: Connection) -> dict[StateKey, DirectionState]:
    states: dict[StateKey, DirectionState] = {}
    for row in conn.execute(select(t.direction_state)):
        states[(row.integration, Direction(row.direction))] = state_from_row(row)
    counted_ids: Collection[int] = {
        i for state in states.values() for i in state.consecutive_failure_event_ids
    }
    if counted_ids:
        counted = {
            row.id: event_from_row(row)
            for row in conn.execute(select(t.event).where(t.event.c.id.in_(sorted(counted_ids))))
        }
        for key, state in states.items():
            failures = tuple(counted[i] for i in state.consecutive_failure_event_ids if i in counted)
            states[key] = replace(state, counted_failures=failures)
    for row in conn.execute(select(t.activity)):
        key = (row.integration, Direction(row.direction))
        base = states.get(key) or DirectionState(integration=key[0], direction=key[1])
        states[key] = replace(base, last_activity_at=row.last_activity_at)
    return states
