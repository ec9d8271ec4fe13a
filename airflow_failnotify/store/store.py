"""Every query of the package. The rest of the code talks to its tables only through :class:`Store`.

Rows become the pure core's dataclasses (core/model.py) on the way out and come from
them on the way in, so the rules and the renderers never see SQLAlchemy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from airflow_failnotify.core.capture import EventRecord
from airflow_failnotify.core.config import (
    ConfigValidationError,
    check_dag_conflicts,
    direction_to_dict,
    parse_address_list,
)
from airflow_failnotify.core.emails import message_id_for
from airflow_failnotify.core.model import (
    Direction,
    DirectionSettings,
    DirectionState,
    EventKind,
    FailureEvent,
    GlobalSettings,
    NotificationDraft,
    NotificationKind,
    OutboxState,
    ProcessingSettings,
    Registration,
)
from airflow_failnotify.exceptions import StoreUnavailableError
from airflow_failnotify.store import tables as t
from airflow_failnotify.store.engine import check_schema, create_store_engine, migrate

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------------------------------------
# Records passed in and out
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: NotificationKind
    integration: str
    direction: Direction
    dedupe_key: str
    state: OutboxState
    smtp_conn_id: str
    immediate: bool
    attempts: int
    message_id: str
    created_at: datetime
    updated_at: datetime
    draft: NotificationDraft
    settings: DirectionSettings
    dag_id: str
    last_error: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True)
class ErrorRow:
    id: int
    occurred_at: datetime
    category: str
    integration: str | None
    server: str | None
    reason: str
    outbox_id: int | None


@dataclass(frozen=True)
class PassRow:
    id: int
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    summary: dict[str, Any]


@dataclass
class ImportPlan:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EvaluationOutcome:
    evaluated_events: int
    outbox_ids: list[int]
    drafts: list[NotificationDraft]


# ---------------------------------------------------------------------------------------------
# (De)serialisation of rows
# ---------------------------------------------------------------------------------------------


def _db_text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; keep it visible instead of losing the whole record."""
    return value.replace("\x00", "\\x00") if value else value


def _settings_row(settings: DirectionSettings) -> dict[str, Any]:
    return {
        "smtp_conn_id": settings.smtp_conn_id,
        "recipients": ",".join(settings.recipients),
        "cc": ",".join(settings.cc),
        "subject_prefix": settings.subject_prefix,
        "include_error_trace": settings.include_error_trace,
        "global_enabled": settings.global_.enabled,
        "inactivity_minutes": settings.global_.inactivity_minutes,
        "notify_immediately": settings.global_.notify_immediately,
        "failure_count_threshold": settings.global_.failure_count_threshold,
        "processing_enabled": settings.processing.enabled,
        "notify_before_max_retries": settings.processing.notify_before_max_retries,
    }


def _settings_from_row(row: Any) -> DirectionSettings:
    return DirectionSettings(
        smtp_conn_id=row.smtp_conn_id,
        recipients=tuple(parse_address_list(row.recipients)),
        cc=tuple(parse_address_list(row.cc)),
        subject_prefix=row.subject_prefix,
        include_error_trace=bool(row.include_error_trace),
        global_=GlobalSettings(
            enabled=bool(row.global_enabled),
            inactivity_minutes=row.inactivity_minutes,
            notify_immediately=bool(row.notify_immediately),
            failure_count_threshold=row.failure_count_threshold,
        ),
        processing=ProcessingSettings(
            enabled=bool(row.processing_enabled),
            notify_before_max_retries=bool(row.notify_before_max_retries),
        ),
    )


def _settings_from_dict(data: Mapping[str, Any]) -> DirectionSettings:
    g, p = data["global"], data["processing"]
    return DirectionSettings(
        smtp_conn_id=data["smtp_conn_id"],
        recipients=tuple(data["recipients"]),
        cc=tuple(data["cc"]),
        subject_prefix=data["subject_prefix"],
        include_error_trace=data["include_error_trace"],
        global_=GlobalSettings(**g),
        processing=ProcessingSettings(**p),
    )


def _event_from_row(row: Any) -> FailureEvent:
    return FailureEvent(
        id=row.id,
        kind=EventKind(row.kind),
        integration=row.integration,
        direction=Direction(row.direction),
        dag_id=row.dag_id,
        run_id=row.run_id,
        occurred_at=row.occurred_at,
        task_id=row.task_id,
        map_index=row.map_index,
        entity=row.entity,
        try_number=row.try_number,
        max_tries=row.max_tries,
        is_final=bool(row.is_final),
        not_accessible=bool(row.not_accessible),
        error_message=row.error_message,
        traceback=row.traceback,
    )


def _event_to_json(ev: FailureEvent) -> dict[str, Any]:
    return {
        "id": ev.id,
        "kind": ev.kind.value,
        "integration": ev.integration,
        "direction": ev.direction.value,
        "dag_id": ev.dag_id,
        "run_id": ev.run_id,
        "occurred_at": ev.occurred_at.isoformat(),
        "task_id": ev.task_id,
        "map_index": ev.map_index,
        "entity": ev.entity,
        "try_number": ev.try_number,
        "max_tries": ev.max_tries,
        "is_final": ev.is_final,
        "not_accessible": ev.not_accessible,
        "error_message": ev.error_message,
        "traceback": ev.traceback,
    }


def _event_from_json(data: Mapping[str, Any]) -> FailureEvent:
    values = dict(data)
    values["kind"] = EventKind(values["kind"])
    values["direction"] = Direction(values["direction"])
    values["occurred_at"] = datetime.fromisoformat(values["occurred_at"])
    return FailureEvent(**values)


def draft_to_payload(draft: NotificationDraft, settings: DirectionSettings, dag_id: str) -> str:
    return json.dumps(
        {
            "kind": draft.kind.value,
            "integration": draft.integration,
            "direction": draft.direction.value,
            "dedupe_key": draft.dedupe_key,
            "created_at": draft.created_at.isoformat(),
            "run_id": draft.run_id,
            "inactivity_minutes": draft.inactivity_minutes,
            "quiet_since": draft.quiet_since.isoformat() if draft.quiet_since else None,
            "events": [_event_to_json(e) for e in draft.events],
            "settings": direction_to_dict(settings),
            "dag_id": dag_id,
        }
    )


def payload_to_draft(payload: str) -> tuple[NotificationDraft, DirectionSettings, str]:
    data = json.loads(payload)
    draft = NotificationDraft(
        kind=NotificationKind(data["kind"]),
        integration=data["integration"],
        direction=Direction(data["direction"]),
        dedupe_key=data["dedupe_key"],
        created_at=datetime.fromisoformat(data["created_at"]),
        events=tuple(_event_from_json(e) for e in data["events"]),
        run_id=data.get("run_id"),
        inactivity_minutes=data.get("inactivity_minutes"),
        quiet_since=datetime.fromisoformat(data["quiet_since"]) if data.get("quiet_since") else None,
    )
    return draft, _settings_from_dict(data["settings"]), data["dag_id"]


def _state_from_row(row: Any) -> DirectionState:
    ids = tuple(int(x) for x in row.consecutive_failure_event_ids.split(",") if x)
    extra = json.loads(row.extra or "{}")
    known = {f for f in DirectionState.__dataclass_fields__}
    state = DirectionState(
        integration=row.integration,
        direction=Direction(row.direction),
        consecutive_failure_event_ids=ids,
        notified_spell_start=row.notified_spell_start,
        was_paused=bool(row.was_paused),
        unpaused_seen_at=row.unpaused_seen_at,
    )
    # Fields the rules added later live in ``extra`` (JSON), so they need no migration.
    updates: dict[str, Any] = {}
    for key, value in extra.items():
        if key in known:
            updates[key] = _decode_extra(value)
    return replace(state, **updates) if updates else state


_BASE_STATE_FIELDS = {
    "integration",
    "direction",
    "consecutive_failure_event_ids",
    "notified_spell_start",
    "was_paused",
    "unpaused_seen_at",
    "last_activity_at",
    "counted_failures",  # loaded back from the events table by consecutive_failure_event_ids
}


def _encode_extra(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"__dt__": value.isoformat()}
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Direction):
        return value.value
    return value


def _decode_extra(value: Any) -> Any:
    if isinstance(value, dict) and "__dt__" in value:
        return datetime.fromisoformat(value["__dt__"])
    if isinstance(value, list):
        return tuple(value)
    return value


def _state_row(state: DirectionState) -> dict[str, Any]:
    extra = {
        key: _encode_extra(getattr(state, key))
        for key in state.__dataclass_fields__
        if key not in _BASE_STATE_FIELDS
    }
    return {
        "integration": state.integration,
        "direction": state.direction.value,
        "consecutive_failure_event_ids": ",".join(str(i) for i in state.consecutive_failure_event_ids),
        "notified_spell_start": state.notified_spell_start,
        "was_paused": state.was_paused,
        "unpaused_seen_at": state.unpaused_seen_at,
        "extra": json.dumps(extra),
    }


# ---------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------

_STORES: dict[str, Store] = {}
_STORES_LOCK = threading.Lock()


def get_store(url: str | None = None, *, timeout: float | None = None) -> Store:
    """The process-wide store for ``url`` (default: ``[failnotify] sql_alchemy_conn``)."""
    from airflow_failnotify import settings

    resolved = url or settings.store_url()
    with _STORES_LOCK:
        store = _STORES.get(resolved)
        if store is None:
            settings.check_store_fits_executor(resolved)
            wait = settings.get_float("store_timeout") if timeout is None else timeout
            store = Store(create_store_engine(resolved, timeout=wait))
            _STORES[resolved] = store
        return store


def reset_stores() -> None:
    """Forget cached stores (tests, and a forked process that must not share connections)."""
    with _STORES_LOCK:
        for store in _STORES.values():
            store.engine.dispose()
        _STORES.clear()


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._ready = False
        self._dag_lookup: dict[str, tuple[str, Direction] | None] = {}
        self._dag_lookup_at: datetime | None = None

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @property
    def url_for_display(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    # --- schema -------------------------------------------------------------------------------

    def migrate(self) -> tuple[str | None, str]:
        result = migrate(self.engine)
        self._ready = True
        return result

    def check_ready(self) -> None:
        """Once per process: the schema is at the code's head, else StoreNotReadyError."""
        if self._ready:
            return
        try:
            check_schema(self.engine)
        except OperationalError as err:
            raise self._unavailable(err) from err
        self._ready = True

    def _unavailable(self, err: OperationalError) -> StoreUnavailableError:
        return StoreUnavailableError(f"cannot reach the failnotify store {self.url_for_display}: {err.orig}")

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A transaction; a store that cannot be reached or stays locked past the timeout raises
        StoreUnavailableError (SQLAlchemy connects lazily, so this wraps the whole block)."""
        self.check_ready()
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except OperationalError as err:
            raise self._unavailable(err) from err

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        self.check_ready()
        try:
            with self.engine.connect() as conn:
                yield conn
        except OperationalError as err:
            raise self._unavailable(err) from err

    # --- settings -----------------------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        with self._connect() as conn:
            return conn.execute(select(t.setting.c.value).where(t.setting.c.key == key)).scalar_one_or_none()

    def set_setting(self, key: str, value: str | None) -> None:
        with self._begin() as conn:
            conn.execute(delete(t.setting).where(t.setting.c.key == key))
            if value is not None:
                conn.execute(insert(t.setting).values(key=key, value=value, updated_at=utcnow()))

    # --- registrations ------------------------------------------------------------------------

    def _registrations(self, conn: Connection, integration: str | None = None) -> list[Registration]:
        query = select(t.registration).order_by(t.registration.c.integration)
        if integration is not None:
            query = query.where(t.registration.c.integration == integration)
        regs = conn.execute(query).all()
        if not regs:
            return []
        cfg_query = select(t.direction_config)
        if integration is not None:
            cfg_query = cfg_query.where(t.direction_config.c.integration == integration)
        configs: dict[tuple[str, str], Any] = {
            (row.integration, row.direction): row for row in conn.execute(cfg_query)
        }
        out = []
        for row in regs:
            forward = _settings_from_row(configs[(row.integration, Direction.FORWARD.value)])
            backward_row = configs.get((row.integration, Direction.BACKWARD.value))
            backward = None
            if not row.same_for_backward and backward_row is not None:
                backward = _settings_from_row(backward_row)
            out.append(
                Registration(
                    integration=row.integration,
                    forward=forward,
                    backward_integration=row.backward_integration,
                    same_for_backward=bool(row.same_for_backward),
                    backward=backward,
                    registered_at=row.registered_at,
                )
            )
        return out

    def list_registrations(self) -> list[Registration]:
        with self._connect() as conn:
            return self._registrations(conn)

    def get_registration(self, integration: str) -> Registration | None:
        with self._connect() as conn:
            regs = self._registrations(conn, integration)
        return regs[0] if regs else None

    def _write_registration(self, conn: Connection, reg: Registration, now: datetime) -> None:
        existing = conn.execute(
            select(t.registration.c.registered_at).where(t.registration.c.integration == reg.integration)
        ).scalar_one_or_none()
        conn.execute(delete(t.direction_config).where(t.direction_config.c.integration == reg.integration))
        if existing is None:
            conn.execute(
                insert(t.registration).values(
                    integration=reg.integration,
                    backward_integration=reg.backward_integration,
                    same_for_backward=reg.same_for_backward,
                    registered_at=reg.registered_at or now,
                    updated_at=now,
                )
            )
        else:
            conn.execute(
                update(t.registration)
                .where(t.registration.c.integration == reg.integration)
                .values(
                    backward_integration=reg.backward_integration,
                    same_for_backward=reg.same_for_backward,
                    updated_at=now,
                )
            )
        rows = [
            {
                "integration": reg.integration,
                "direction": "forward",
                "dag_id": reg.integration,
                **_settings_row(reg.forward),
            }
        ]
        if reg.backward_integration:
            rows.append(
                {
                    "integration": reg.integration,
                    "direction": "backward",
                    "dag_id": reg.backward_integration,
                    **_settings_row(reg.settings_for(Direction.BACKWARD)),
                }
            )
        else:
            # The backward DAG was removed: forget what its direction remembered.
            self._forget_direction(conn, reg.integration, Direction.BACKWARD)
        conn.execute(insert(t.direction_config), rows)

    def _forget_direction(self, conn: Connection, integration: str, direction: Direction | None) -> None:
        for table in (t.direction_state, t.activity):
            query = delete(table).where(table.c.integration == integration)
            if direction is not None:
                query = query.where(table.c.direction == direction.value)
            conn.execute(query)

    def save_registrations(
        self, registrations: Sequence[Registration], *, replace_all: bool = False, dry_run: bool = False
    ) -> ImportPlan:
        """Add or update ``registrations`` in one transaction (all or nothing).

        With ``replace_all`` every stored registration not in the list is unregistered. DAG
        conflicts with stored registrations are checked inside the transaction.
        """
        plan = ImportPlan()
        with self._begin() as conn:
            stored = {reg.integration: reg for reg in self._registrations(conn)}
            names = {reg.integration for reg in registrations}
            others = [] if replace_all else [r for r in stored.values() if r.integration not in names]
            conflicts = check_dag_conflicts([(reg.integration, reg) for reg in registrations], others)
            if conflicts:
                raise ConfigValidationError(conflicts)
            now = utcnow()
            for reg in registrations:
                before = stored.get(reg.integration)
                if before is None:
                    plan.added.append(reg.integration)
                elif replace(before, registered_at=None) == replace(reg, registered_at=None):
                    plan.unchanged.append(reg.integration)
                    continue
                else:
                    plan.updated.append(reg.integration)
                if not dry_run:
                    self._write_registration(conn, reg, now)
            if replace_all:
                for name in sorted(set(stored) - names):
                    plan.removed.append(name)
                    if not dry_run:
                        self._unregister(conn, name, now)
            if dry_run:
                conn.rollback()
        self._dag_lookup.clear()
        return plan

    def save_registration(self, registration: Registration) -> ImportPlan:
        return self.save_registrations([registration])

    def register_new_only(self, registrations: Sequence[Registration]) -> tuple[list[str], dict[str, str]]:
        """Bulk configuration: only integrations not configured yet; returns (configured, skipped)."""
        skipped: dict[str, str] = {}
        configured: list[str] = []
        with self._begin() as conn:
            stored = self._registrations(conn)
            used = {d: r.integration for r in stored for d in (r.integration, r.backward_integration) if d}
            now = utcnow()
            for reg in registrations:
                if reg.integration in used:
                    owner = used[reg.integration]
                    skipped[reg.integration] = (
                        "already configured"
                        if owner == reg.integration
                        else f"already the backward DAG of {owner}"
                    )
                    continue
                self._write_registration(conn, reg, now)
                used[reg.integration] = reg.integration
                configured.append(reg.integration)
        self._dag_lookup.clear()
        return configured, skipped

    def _unregister(self, conn: Connection, integration: str, now: datetime) -> bool:
        deleted = conn.execute(
            delete(t.registration).where(t.registration.c.integration == integration)
        ).rowcount
        conn.execute(delete(t.direction_config).where(t.direction_config.c.integration == integration))
        self._forget_direction(conn, integration, None)
        closed = conn.execute(
            update(t.outbox)
            .where(t.outbox.c.integration == integration, t.outbox.c.state.in_(["pending", "failed"]))
            .values(
                state=OutboxState.CLOSED.value,
                updated_at=now,
                last_error="closed: the integration was unregistered",
            )
        ).rowcount
        if closed:
            conn.execute(
                insert(t.error_log).values(
                    occurred_at=now,
                    category="config",
                    integration=integration,
                    server=None,
                    reason=f"{closed} unsent notification(s) closed because {integration} was unregistered",
                )
            )
        return bool(deleted)

    def unregister(self, integration: str) -> bool:
        with self._begin() as conn:
            found = self._unregister(conn, integration, utcnow())
        self._dag_lookup.clear()
        return found

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

    # --- capture ------------------------------------------------------------------------------

    def _insert_ignore(
        self, conn: Connection, table: Any, values: Sequence[Mapping[str, Any]], conflict: Sequence[str]
    ) -> int:
        if not values:
            return 0
        if self.is_postgres:
            stmt: Any = pg.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
        else:
            stmt = sqlite_dialect.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
        return int(conn.execute(stmt, list(values)).rowcount or 0)

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

        Every record is activity of its integration-direction too. Returns the rows inserted.
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
                added = self._insert_ignore(
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
                            "entity": _db_text(record.entity),
                            "try_number": record.try_number,
                            "max_tries": record.max_tries,
                            "is_final": record.is_final,
                            "not_accessible": record.not_accessible,
                            "error_message": _db_text(record.error_message),
                            "traceback": _db_text(record.traceback),
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
                            error_message=_db_text(record.error_message),
                            traceback=_db_text(record.traceback),
                            not_accessible=record.not_accessible,
                            source=record.source,
                        )
                    )
                inserted += added
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

    def max_pending_immediate_event_id(self) -> int:
        """Highest id among unevaluated events that may need an immediate notification."""
        with self._connect() as conn:
            value = conn.execute(
                select(func.max(t.event.c.id)).where(
                    t.event.c.evaluated.is_(False),
                    or_(t.event.c.kind == EventKind.RUN_FAILED.value, t.event.c.not_accessible.is_(True)),
                )
            ).scalar()
        return int(value or 0)

    # --- evaluation ---------------------------------------------------------------------------

    def evaluate(
        self,
        evaluate_fn: Callable[..., Any],
        dag_status: Callable[[Sequence[str]], Mapping[str, Any]],
        *,
        now: datetime | None = None,
        batch_size: int = 5000,
    ) -> EvaluationOutcome:
        """Run the rules over the unevaluated events and write what is due to the outbox.

        Everything happens in one transaction that first locks the evaluation row: two
        evaluations never interleave (PostgreSQL: row lock; SQLite: BEGIN IMMEDIATE), and a
        crash halfway leaves the events unevaluated and the outbox untouched.
        ``dag_status`` is asked once for every registered DAG before the transaction starts,
        so no network call happens while the lock is held.
        """
        now = now or utcnow()
        with self._connect() as conn:
            regs = self._registrations(conn)
        dag_ids = [r.dag_id_for(d) for r in regs for d in r.directions()]
        status = dict(dag_status(dag_ids)) if dag_ids else {}

        with self._begin() as conn:
            lock = select(t.evaluation_lock).where(t.evaluation_lock.c.name == "evaluation")
            if self.is_postgres:
                lock = lock.with_for_update()
            conn.execute(lock).first()
            regs = self._registrations(conn)  # re-read under the lock
            states: dict[tuple[str, Direction], DirectionState] = {}
            for row in conn.execute(select(t.direction_state)):
                states[(row.integration, Direction(row.direction))] = _state_from_row(row)
            counted_ids = {i for state in states.values() for i in state.consecutive_failure_event_ids}
            if counted_ids:
                counted = {
                    row.id: _event_from_row(row)
                    for row in conn.execute(select(t.event).where(t.event.c.id.in_(sorted(counted_ids))))
                }
                for key, state in states.items():
                    failures = tuple(counted[i] for i in state.consecutive_failure_event_ids if i in counted)
                    states[key] = replace(state, counted_failures=failures)
            for row in conn.execute(select(t.activity)):
                key = (row.integration, Direction(row.direction))
                base = states.get(key) or DirectionState(integration=key[0], direction=key[1])
                states[key] = replace(base, last_activity_at=row.last_activity_at)
            events = [
                _event_from_row(row)
                for row in conn.execute(
                    select(t.event)
                    .where(t.event.c.evaluated.is_(False))
                    .order_by(t.event.c.id)
                    .limit(batch_size)
                )
            ]
            result = evaluate_fn(regs, states, events, status, now)
            by_name = {r.integration: r for r in regs}
            outbox_ids: list[int] = []
            written: list[NotificationDraft] = []
            for draft in result.drafts:
                reg = by_name.get(draft.integration)
                if reg is None:
                    continue
                outbox_id = self._write_draft(conn, draft, reg, now)
                if outbox_id is not None:
                    outbox_ids.append(outbox_id)
                    written.append(draft)
            if events:
                conn.execute(
                    update(t.event).where(t.event.c.id.in_([e.id for e in events])).values(evaluated=True)
                )
            # The rules return the state of every registered direction and nothing else: what they
            # leave out (an unregistered integration, a removed backward DAG) is forgotten.
            registered_keys = {(r.integration, d) for r in regs for d in r.directions()}
            conn.execute(delete(t.direction_state))
            rows = [_state_row(state) for key, state in result.states.items() if key in registered_keys]
            if rows:
                conn.execute(insert(t.direction_state), rows)
            conn.execute(
                update(t.evaluation_lock)
                .where(t.evaluation_lock.c.name == "evaluation")
                .values(last_evaluated_at=now)
            )
        return EvaluationOutcome(evaluated_events=len(events), outbox_ids=outbox_ids, drafts=written)

    def _write_draft(
        self, conn: Connection, draft: NotificationDraft, reg: Registration, now: datetime
    ) -> int | None:
        """Insert one notification unless its dedupe key, or one of its failures for this kind, exists."""
        exists = conn.execute(
            select(t.outbox.c.id).where(t.outbox.c.dedupe_key == draft.dedupe_key)
        ).scalar_one_or_none()
        if exists is not None:
            return None
        events = list(draft.events)
        if draft.kind is NotificationKind.PROCESSING and events:
            covered = set(
                conn.execute(
                    select(t.outbox_event.c.event_id).where(
                        t.outbox_event.c.kind == draft.kind.value,
                        t.outbox_event.c.event_id.in_([e.id for e in events]),
                    )
                ).scalars()
            )
            events = [e for e in events if e.id not in covered]
            if not events:
                return None
            draft = replace(draft, events=tuple(events))
        settings = reg.settings_for(draft.direction)
        dag_id = reg.dag_id_for(draft.direction) if draft.direction in reg.directions() else reg.integration
        outbox_id = conn.execute(
            insert(t.outbox)
            .values(
                kind=draft.kind.value,
                integration=draft.integration,
                direction=draft.direction.value,
                dedupe_key=draft.dedupe_key,
                state=OutboxState.PENDING.value,
                smtp_conn_id=settings.smtp_conn_id,
                immediate=draft.kind.is_immediate,
                payload=draft_to_payload(draft, settings, dag_id),
                message_id=message_id_for(draft.dedupe_key),
                attempts=0,
                created_at=now,
                updated_at=now,
            )
            .returning(t.outbox.c.id)
        ).scalar_one()
        # An inactivity notification covers no event; the others record what they report.
        self._insert_ignore(
            conn,
            t.outbox_event,
            [{"kind": draft.kind.value, "event_id": e.id, "outbox_id": outbox_id} for e in events],
            ["kind", "event_id"],
        )
        return int(outbox_id)

    # --- outbox -------------------------------------------------------------------------------

    def _item(self, row: Any) -> OutboxItem:
        draft, settings, dag_id = payload_to_draft(row.payload)
        return OutboxItem(
            id=row.id,
            kind=NotificationKind(row.kind),
            integration=row.integration,
            direction=Direction(row.direction),
            dedupe_key=row.dedupe_key,
            state=OutboxState(row.state),
            smtp_conn_id=row.smtp_conn_id,
            immediate=bool(row.immediate),
            attempts=row.attempts,
            message_id=row.message_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
            draft=draft,
            settings=settings,
            dag_id=dag_id,
            last_error=row.last_error,
            sent_at=row.sent_at,
        )

    def claim(
        self,
        worker: str,
        *,
        limit: int,
        lease_seconds: int,
        now: datetime | None = None,
        ids: Sequence[int] | None = None,
        after_id: int = 0,
    ) -> list[OutboxItem]:
        """Claim up to ``limit`` due notifications, oldest first, for ``lease_seconds``.

        Due = pending, or sending whose lease expired (its pass died). On PostgreSQL rows are
        locked with SKIP LOCKED so concurrent passes take disjoint sets; on SQLite the
        transaction's BEGIN IMMEDIATE serialises claimers.
        """
        now = now or utcnow()
        with self._begin() as conn:
            query = (
                select(t.outbox.c.id)
                .where(
                    or_(
                        t.outbox.c.state == OutboxState.PENDING.value,
                        and_(
                            t.outbox.c.state == OutboxState.SENDING.value, t.outbox.c.lease_expires_at < now
                        ),
                    )
                )
                .order_by(t.outbox.c.id)
                .limit(limit)
            )
            if ids is not None:
                query = query.where(t.outbox.c.id.in_(list(ids)))
            if after_id:
                query = query.where(t.outbox.c.id > after_id)
            if self.is_postgres:
                query = query.with_for_update(skip_locked=True)
            claimed = list(conn.execute(query).scalars())
            if not claimed:
                return []
            conn.execute(
                update(t.outbox)
                .where(t.outbox.c.id.in_(claimed))
                .values(
                    state=OutboxState.SENDING.value,
                    claimed_by=worker,
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                    updated_at=now,
                )
            )
            rows = conn.execute(
                select(t.outbox).where(t.outbox.c.id.in_(claimed)).order_by(t.outbox.c.id)
            ).all()
        return [self._item(row) for row in rows]

    def mark_sent(
        self, outbox_id: int, worker: str, *, now: datetime | None = None, note: str | None = None
    ) -> bool:
        """Durable "sent" mark, one row, right after the server accepted the message."""
        now = now or utcnow()
        with self._begin() as conn:
            changed = conn.execute(
                update(t.outbox)
                .where(t.outbox.c.id == outbox_id, t.outbox.c.state == OutboxState.SENDING.value)
                .values(
                    state=OutboxState.SENT.value,
                    sent_at=now,
                    updated_at=now,
                    claimed_by=worker,
                    attempts=t.outbox.c.attempts + 1,
                    last_error=note,
                    lease_expires_at=None,
                )
            ).rowcount
        return bool(changed)

    def mark_attempt_failed(
        self,
        outbox_id: int,
        reason: str,
        *,
        count_attempt: bool,
        permanent: bool,
        max_attempts: int,
        now: datetime | None = None,
    ) -> OutboxState:
        """Back to pending with the reason; failed once a permanent error has used max_attempts."""
        now = now or utcnow()
        with self._begin() as conn:
            row = conn.execute(select(t.outbox.c.attempts).where(t.outbox.c.id == outbox_id)).first()
            if row is None:
                return OutboxState.CLOSED
            attempts = row.attempts + (1 if count_attempt else 0)
            state = OutboxState.FAILED if permanent and attempts >= max_attempts else OutboxState.PENDING
            conn.execute(
                update(t.outbox)
                .where(t.outbox.c.id == outbox_id, t.outbox.c.state == OutboxState.SENDING.value)
                .values(
                    state=state.value,
                    attempts=attempts,
                    last_error=reason,
                    updated_at=now,
                    lease_expires_at=None,
                    claimed_by=None,
                )
            )
        return state

    def release(self, outbox_ids: Sequence[int], *, reason: str | None = None) -> None:
        """Give claimed notifications back untried (their server failed earlier in this pass)."""
        if not outbox_ids:
            return
        with self._begin() as conn:
            values: dict[str, Any] = {
                "state": OutboxState.PENDING.value,
                "lease_expires_at": None,
                "claimed_by": None,
                "updated_at": utcnow(),
            }
            if reason is not None:
                values["last_error"] = reason
            conn.execute(
                update(t.outbox)
                .where(t.outbox.c.id.in_(list(outbox_ids)), t.outbox.c.state == OutboxState.SENDING.value)
                .values(**values)
            )

    def requeue(self, outbox_id: int) -> bool:
        """A person retries a failed notification (never a sent one)."""
        with self._begin() as conn:
            changed = conn.execute(
                update(t.outbox)
                .where(t.outbox.c.id == outbox_id, t.outbox.c.state == OutboxState.FAILED.value)
                .values(state=OutboxState.PENDING.value, attempts=0, updated_at=utcnow())
            ).rowcount
        return bool(changed)

    def get_outbox_item(self, outbox_id: int) -> OutboxItem | None:
        with self._connect() as conn:
            row = conn.execute(select(t.outbox).where(t.outbox.c.id == outbox_id)).first()
        return None if row is None else self._item(row)

    def list_outbox(
        self,
        *,
        state: OutboxState | None = None,
        integration: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[OutboxItem], int]:
        conditions = []
        if state is not None:
            conditions.append(t.outbox.c.state == state.value)
        if integration:
            conditions.append(t.outbox.c.integration == integration)
        with self._connect() as conn:
            total = conn.execute(select(func.count()).select_from(t.outbox).where(*conditions)).scalar_one()
            rows = conn.execute(
                select(t.outbox).where(*conditions).order_by(t.outbox.c.id.desc()).limit(limit).offset(offset)
            ).all()
        return [self._item(row) for row in rows], int(total)

    def outbox_counts(self) -> dict[str, int]:
        with self._connect() as conn:
            rows = conn.execute(select(t.outbox.c.state, func.count()).group_by(t.outbox.c.state)).all()
        counts = {state.value: 0 for state in OutboxState}
        counts.update({row[0]: int(row[1]) for row in rows})
        return counts

    # --- error log and passes -----------------------------------------------------------------

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
                    reason=_db_text(reason[:10000]),
                    outbox_id=outbox_id,
                    pass_id=pass_id,
                )
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
        return [_event_from_row(r) for r in rows], int(total)

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


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
