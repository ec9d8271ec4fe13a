"""Configuration: registrations (per integration and direction) and the plugin's settings."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from airflow_failnotify.core import audit
from airflow_failnotify.core.config import ConfigValidationError, check_dag_conflicts
from airflow_failnotify.core.model import Direction, DirectionSettings, OutboxState, Registration
from airflow_failnotify.store import tables as t
from airflow_failnotify.store.audit import write_audit
from airflow_failnotify.store.codecs import settings_from_row, settings_row
from airflow_failnotify.store.records import ImportPlan
from airflow_failnotify.store.session import StoreBase, utcnow


def read_registrations(
    conn: Connection, integration: str | None = None, *, among: Collection[str] | None = None
) -> list[Registration]:
    """Every registration, by name; only ``integration``'s, or only those ``among`` these names."""
    if among is None:
        return _read(conn, None if integration is None else [integration])
    names = sorted(set(among))
    chunks = (names[start : start + _CHUNK] for start in range(0, len(names), _CHUNK))
    return [reg for chunk in chunks for reg in _read(conn, chunk)]


#: Names per IN list when reading some registrations.
_CHUNK = 500
#: The direction_config columns a direction's settings are made of.
_SETTINGS_COLUMNS = tuple(
    c.name for c in t.direction_config.columns if c.name not in ("integration", "direction", "dag_id")
)


def _read(conn: Connection, names: Sequence[str] | None) -> list[Registration]:
    query = select(t.registration).order_by(t.registration.c.integration)
    if names is not None:
        query = query.where(t.registration.c.integration.in_(names))
    regs = conn.execute(query).all()
    if not regs:
        return []
    cfg_query = select(t.direction_config)
    if names is not None:
        cfg_query = cfg_query.where(t.direction_config.c.integration.in_(names))
    configs: dict[tuple[str, str], Any] = {
        (row.integration, row.direction): row for row in conn.execute(cfg_query)
    }
    # Integrations of one team tend to share their settings: each distinct row is decoded once.
    decoded: dict[tuple[Any, ...], DirectionSettings] = {}

    def settings_of(config: Any) -> DirectionSettings:
        key = tuple(getattr(config, name) for name in _SETTINGS_COLUMNS)
        if key not in decoded:
            decoded[key] = settings_from_row(config)
        return decoded[key]

    out = []
    for row in regs:
        forward = settings_of(configs[(row.integration, Direction.FORWARD.value)])
        backward_row = configs.get((row.integration, Direction.BACKWARD.value))
        backward = None
        if not row.same_for_backward and backward_row is not None:
            backward = settings_of(backward_row)
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


@dataclass(frozen=True)
class Actor:
    """Who makes a configuration change, for the audit trail: ``name`` (the UI user, or
    ``cli:<os user>``) and ``source`` (ui, bulk, cli, import)."""

    name: str
    source: str


def _audit_change(
    conn: Connection,
    actor: Actor | None,
    before: Registration | None,
    after: Registration | None,
    now: datetime,
) -> None:
    if actor is None:
        return
    name = (after or before).integration  # type: ignore[union-attr]
    action = audit.REGISTER if before is None else audit.UNREGISTER if after is None else audit.UPDATE
    write_audit(
        conn,
        actor=actor.name,
        source=actor.source,
        action=action,
        integration=name,
        changes=audit.changes_between(before, after),
        now=now,
    )


# What an unregister closes: rows not sent and not being sent (a silenced or storm-held row is held).
_UNSENT = [
    OutboxState.PENDING.value,
    OutboxState.FAILED.value,
    OutboxState.SILENCED.value,
    OutboxState.STORM_HELD.value,
]


class RegistrationStore(StoreBase):
    def get_setting(self, key: str) -> str | None:
        with self._connect() as conn:
            return conn.execute(select(t.setting.c.value).where(t.setting.c.key == key)).scalar_one_or_none()

    def set_setting(self, key: str, value: str | None, *, actor: Actor | None = None) -> bool:
        """Store (or with None clear) a setting; False, and nothing written, when it is unchanged."""
        with self._begin() as conn:
            before = conn.execute(
                select(t.setting.c.value).where(t.setting.c.key == key)
            ).scalar_one_or_none()
            if before == value:
                return False
            now = utcnow()
            conn.execute(delete(t.setting).where(t.setting.c.key == key))
            if value is not None:
                conn.execute(insert(t.setting).values(key=key, value=value, updated_at=now))
            if actor is not None:
                write_audit(
                    conn,
                    actor=actor.name,
                    source=actor.source,
                    action=audit.SETTING,
                    integration=None,
                    changes=audit.setting_changes(key, before, value),
                    now=now,
                )
        return True

    def list_registrations(self) -> list[Registration]:
        with self._connect() as conn:
            return read_registrations(conn)

    def registrations_of(self, integrations: Collection[str]) -> list[Registration]:
        """The registrations of these integrations (the unregistered ones are left out), by name."""
        if not integrations:
            return []
        with self._connect() as conn:
            return read_registrations(conn, among=integrations)

    def get_registration(self, integration: str) -> Registration | None:
        with self._connect() as conn:
            regs = read_registrations(conn, integration)
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
                **settings_row(reg.forward),
            }
        ]
        if reg.backward_integration:
            rows.append(
                {
                    "integration": reg.integration,
                    "direction": "backward",
                    "dag_id": reg.backward_integration,
                    **settings_row(reg.settings_for(Direction.BACKWARD)),
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
        self,
        registrations: Sequence[Registration],
        *,
        replace_all: bool = False,
        dry_run: bool = False,
        actor: Actor | None = None,
    ) -> ImportPlan:
        """Add or update ``registrations`` in one transaction (all or nothing).

        With ``replace_all`` every stored registration not in the list is unregistered. DAG
        conflicts with stored registrations are checked inside the transaction. With ``actor``
        each change (not the unchanged ones) gets its audit row in the same transaction.
        """
        plan = ImportPlan()
        with self._begin() as conn:
            stored = {reg.integration: reg for reg in read_registrations(conn)}
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
                    _audit_change(conn, actor, before, reg, now)
            if replace_all:
                for name in sorted(set(stored) - names):
                    plan.removed.append(name)
                    if not dry_run:
                        self._unregister(conn, name, now)
                        _audit_change(conn, actor, stored[name], None, now)
            if dry_run:
                conn.rollback()
        self._dag_lookup.clear()
        return plan

    def save_registration(self, registration: Registration, *, actor: Actor | None = None) -> ImportPlan:
        return self.save_registrations([registration], actor=actor)

    def register_new_only(
        self, registrations: Sequence[Registration], *, actor: Actor | None = None
    ) -> tuple[list[str], dict[str, str]]:
        """Bulk configuration: only integrations not configured yet; returns (configured, skipped)."""
        skipped: dict[str, str] = {}
        configured: list[str] = []
        with self._begin() as conn:
            stored = read_registrations(conn)
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
                _audit_change(conn, actor, None, reg, now)
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
            .where(t.outbox.c.integration == integration, t.outbox.c.state.in_(_UNSENT))
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

    def unregister(self, integration: str, *, actor: Actor | None = None) -> bool:
        with self._begin() as conn:
            before = read_registrations(conn, integration)
            now = utcnow()
            found = self._unregister(conn, integration, now)
            if found and before:
                _audit_change(conn, actor, before[0], None, now)
        self._dag_lookup.clear()
        return found
