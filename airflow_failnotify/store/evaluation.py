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
from typing import Any

from sqlalchemy import Table, delete, insert, select, update
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
from airflow_failnotify.store.overview import ordered_task_failures, read_task_failures_by_run
from airflow_failnotify.store.registrations import read_registrations
from airflow_failnotify.store.session import StoreBase
from airflow_failnotify.store.silences import read_active_silences

StateKey = tuple[str, Direction]


#: Parameters per IN list of the bulk reads.
_CHUNK = 500


@dataclass
class EvaluationUnit:
    """One locked evaluation transaction: the inputs, read under the lock, and the writes.

    The drafts' questions (covered events, existing dedupe keys, the task failures of runs) are
    answered from what :meth:`read_ahead` read in bulk, and from what this unit itself queued since;
    anything not read ahead is read when asked. The notifications are queued and written, in the
    order they were added, by :meth:`finish`.
    """

    conn: Connection
    registrations: list[Registration]
    states: dict[StateKey, DirectionState]
    events: list[FailureEvent]
    written: list[int] = field(default_factory=list)
    #: The direction_state rows as read (key -> column values): finish rewrites only what changed.
    stored_states: dict[StateKey, dict[str, Any]] = field(default_factory=dict)
    _silences: dict[str, datetime] | None = None
    _covered: dict[str, set[int]] = field(default_factory=dict)  # kind -> event ids it reports
    _coverage_known: dict[str, set[int]] = field(default_factory=dict)  # kind -> event ids looked up
    _keys: set[str] = field(default_factory=set)  # dedupe keys in the outbox, stored or queued
    _keys_known: set[str] = field(default_factory=set)  # dedupe keys looked up
    _task_failures: dict[tuple[str, str], list[FailureEvent]] = field(default_factory=dict)
    _queued: list[tuple[dict[str, Any], list[int]]] = field(default_factory=list)

    def read_ahead(self, drafts: Iterable[NotificationDraft], runs: Iterable[tuple[str, str]]) -> None:
        """Read in bulk what writing ``drafts`` asks: which of their events are covered, which of
        their dedupe keys exist, and the task failures of ``runs``."""
        ids: dict[str, set[int]] = {}
        keys = set()
        for draft in drafts:
            ids.setdefault(draft.kind.value, set()).update(e.id for e in draft.events)
            keys.add(draft.dedupe_key)
        for kind, of_kind in ids.items():
            self._look_up_coverage(kind, of_kind)
        self._look_up_keys(keys)
        self._look_up_task_failures(runs)

    def covered_event_ids(self, kind: NotificationKind, event_ids: Iterable[int]) -> set[int]:
        """The events among ``event_ids`` that a notification of ``kind`` already reports."""
        ids = set(event_ids)
        if not ids:
            return set()
        self._look_up_coverage(kind.value, ids)
        return ids & self._covered[kind.value]

    def _look_up_coverage(self, kind: str, event_ids: Iterable[int]) -> None:
        known = self._coverage_known.setdefault(kind, set())
        covered = self._covered.setdefault(kind, set())
        wanted = sorted(set(event_ids) - known)
        for start in range(0, len(wanted), _CHUNK):
            covered.update(
                self.conn.execute(
                    select(t.outbox_event.c.event_id).where(
                        t.outbox_event.c.kind == kind,
                        t.outbox_event.c.event_id.in_(wanted[start : start + _CHUNK]),
                    )
                ).scalars()
            )
        known.update(wanted)

    def _look_up_keys(self, keys: Iterable[str]) -> None:
        wanted = sorted(set(keys) - self._keys_known)
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            self._keys.update(
                self.conn.execute(select(t.outbox.c.dedupe_key).where(t.outbox.c.dedupe_key.in_(chunk))).scalars()
            )
        self._keys_known.update(wanted)

    def _look_up_task_failures(self, runs: Iterable[tuple[str, str]]) -> None:
        wanted = {run for run in runs if run not in self._task_failures}
        if wanted:
            self._task_failures.update(read_task_failures_by_run(self.conn, wanted))

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
        wanted = set(runs)
        self._look_up_task_failures(wanted)
        return ordered_task_failures(self._task_failures, wanted)

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
    ) -> bool:
        """Queue one notification unless its dedupe key exists; it covers its events from now on.

        ``state`` is pending, or silenced with ``hold_until`` the end of the silence that holds it.
        False when the key exists (nothing is queued).
        """
        self._look_up_keys([draft.dedupe_key])
        if draft.dedupe_key in self._keys:
            return False
        self._keys.add(draft.dedupe_key)
        row = {
            "kind": draft.kind.value,
            "integration": draft.integration,
            "direction": draft.direction.value,
            "dedupe_key": draft.dedupe_key,
            "state": state.value,
            "hold_until": hold_until,
            "smtp_conn_id": settings.smtp_conn_id,
            "immediate": draft.kind.is_immediate,
            "payload": draft_to_payload(draft, settings, dag_id),
            "message_id": message_id,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        # An inactivity notification covers no event; the others record what they report (an event
        # that a notification of the kind already reports keeps its first one).
        event_ids = [e.id for e in draft.events]
        self._look_up_coverage(draft.kind.value, event_ids)
        covered = self._covered[draft.kind.value]
        new = list(dict.fromkeys(i for i in event_ids if i not in covered))
        covered.update(new)
        self._queued.append((row, new))
        return True

    def _write_queued(self) -> None:
        """Insert the queued notifications, in the order they were added, and the events they cover."""
        if not self._queued:
            return
        ids = self.conn.execute(
            insert(t.outbox).returning(t.outbox.c.id, sort_by_parameter_order=True),
            [row for row, _ in self._queued],
        ).scalars().all()
        links = [
            {"kind": row["kind"], "event_id": event_id, "outbox_id": outbox_id}
            for (row, event_ids), outbox_id in zip(self._queued, ids, strict=True)
            for event_id in event_ids
        ]
        if links:  # none of them is stored yet (the evaluation lock keeps other writers out)
            self.conn.execute(insert(t.outbox_event), links)
        self.written.extend(int(i) for i in ids)
        self._queued.clear()

    def finish(self, states: Mapping[StateKey, DirectionState], *, now: datetime) -> None:
        """Write the queued notifications, mark the read events evaluated and replace the rule state
        with ``states``."""
        self._write_queued()
        if self.events:
            self.conn.execute(
                update(t.event).where(t.event.c.id.in_([e.id for e in self.events])).values(evaluated=True)
            )
        self._replace_states(states)
        self.conn.execute(
            update(t.evaluation_lock)
            .where(t.evaluation_lock.c.name == "evaluation")
            .values(last_evaluated_at=now)
        )

    def _replace_states(self, states: Mapping[StateKey, DirectionState]) -> None:
        """Make direction_state hold exactly ``states``, rewriting only the rows that differ."""
        # A state equal to the one read keeps its row, and so does one whose row comes out the same.
        stored = self.stored_states
        rows = {
            key: state_row(state)
            for key, state in states.items()
            if key not in stored or state != self.states.get(key)
        }
        stale = [key for key in stored if key not in states or (key in rows and rows[key] != stored[key])]
        for direction in Direction:
            integrations = sorted(i for i, d in stale if d is direction)
            for start in range(0, len(integrations), _CHUNK):
                self.conn.execute(
                    delete(t.direction_state).where(
                        t.direction_state.c.direction == direction.value,
                        t.direction_state.c.integration.in_(integrations[start : start + _CHUNK]),
                    )
                )
        fresh = [row for key, row in rows.items() if row != stored.get(key)]
        if fresh:
            self.conn.execute(insert(t.direction_state), fresh)


class EvaluationStore(StoreBase):
    @contextmanager
    def evaluation(self, *, batch_size: int = 5000, only_touched: bool = False) -> Iterator[EvaluationUnit]:
        """Lock the evaluation, read up to ``batch_size`` new events, the registrations and the rule state.

        ``only_touched``: the registrations and rule state of the integrations those events name, and no
        other (what the backlog's later batches need: the rules over every direction ran in the first).
        """
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
            among = {e.integration for e in events} if only_touched else None
            registrations = read_registrations(conn, among=among)
            states, stored = _read_states(conn, among)
            yield EvaluationUnit(conn, registrations, states, events, stored_states=stored)


def _read_states(
    conn: Connection, among: Collection[str] | None = None
) -> tuple[dict[StateKey, DirectionState], dict[StateKey, dict[str, Any]]]:
    """The rule state of every direction (with its counted failures and last activity), or only of the
    integrations ``among`` these names, and the direction_state rows it was read from."""
    states: dict[StateKey, DirectionState] = {}
    stored: dict[StateKey, dict[str, Any]] = {}
    for row in _rows_of(conn, t.direction_state, among):
        key = (row.integration, Direction(row.direction))
        states[key] = state_from_row(row)
        stored[key] = dict(row._mapping)
    counted_ids = sorted({i for state in states.values() for i in state.consecutive_failure_event_ids})
    if counted_ids:
        counted = {
            row.id: event_from_row(row)
            for start in range(0, len(counted_ids), _CHUNK)
            for row in conn.execute(
                select(t.event).where(t.event.c.id.in_(counted_ids[start : start + _CHUNK]))
            )
        }
        for key, state in states.items():
            failures = tuple(counted[i] for i in state.consecutive_failure_event_ids if i in counted)
            states[key] = replace(state, counted_failures=failures)
    for row in _rows_of(conn, t.activity, among):
        key = (row.integration, Direction(row.direction))
        base = states.get(key) or DirectionState(integration=key[0], direction=key[1])
        states[key] = replace(base, last_activity_at=row.last_activity_at)
    return states, stored


def _rows_of(conn: Connection, table: Table, among: Collection[str] | None) -> Iterator[Any]:
    """Every row of ``table``, or those of the integrations ``among`` these names."""
    if among is None:
        yield from conn.execute(select(table))
        return
    names = sorted(among)
    for start in range(0, len(names), _CHUNK):
        yield from conn.execute(select(table).where(table.c.integration.in_(names[start : start + _CHUNK])))
