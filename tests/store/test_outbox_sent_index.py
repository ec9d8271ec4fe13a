"""Migration 0005: the outbox's sent rows indexed by integration-direction, and the reads that need it.

The repeat interval (``sent_since``) and the storm cap (``mails_sent_since``) ask, for every mail a pass
sends, what one integration-direction (or a few) sent since a time. The plans below are the database's
own (EXPLAIN) for the statements those methods run, over an outbox with a long sent history.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from alembic import command
from sqlalchemy import event, insert, inspect, text
from sqlalchemy.engine import Engine

from airflow_failnotify.core.model import (
    Direction,
    DirectionSettings,
    NotificationDraft,
    NotificationKind,
    OutboxState,
)
from airflow_failnotify.store import Store
from airflow_failnotify.store import tables as t
from airflow_failnotify.store.codecs import draft_to_payload
from airflow_failnotify.store.engine import _CREATING, _alembic_config, create_store_engine, current_revision

INDEX = "ix_failnotify_outbox_sent"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
INTEGRATIONS = 200
PER_INTEGRATION = 100


def _payload(integration: str, dedupe_key: str, at: datetime) -> str:
    draft = NotificationDraft(kind=NotificationKind.GLOBAL_IMMEDIATE, integration=integration,
                              direction=Direction.FORWARD, dedupe_key=dedupe_key, created_at=at)
    return draft_to_payload(draft, DirectionSettings(smtp_conn_id="mail", recipients=("ops@example.com",)),
                            integration)


def _sent_row(i: int, integration: str, sent_at: datetime) -> dict[str, Any]:
    key = f"global_immediate:{integration}:forward:r{i}"
    return {
        "kind": "global_immediate", "integration": integration, "direction": "forward",
        "dedupe_key": key, "state": OutboxState.SENT.value, "smtp_conn_id": "mail", "immediate": True,
        "payload": _payload(integration, key, sent_at), "message_id": f"<m{i}@failnotify>",
        "attempts": 1, "created_at": sent_at, "updated_at": sent_at, "sent_at": sent_at,
    }


def _fill_history(store: Store) -> None:
    """INTEGRATIONS x PER_INTEGRATION sent rows, one an hour, oldest first."""
    rows = [
        _sent_row(n * PER_INTEGRATION + k, f"sync_{n:03d}", NOW - timedelta(hours=PER_INTEGRATION - k))
        for n in range(INTEGRATIONS)
        for k in range(PER_INTEGRATION)
    ]
    with store.engine.begin() as conn:
        conn.execute(insert(t.outbox), rows)
        conn.execute(text("ANALYZE"))


def _plan_of(store: Store, read: Callable[[], Any]) -> tuple[Any, str]:
    """What ``read`` returns, and the database's plan for the statement it ran."""
    ran: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        ran.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        result = read()
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    (statement, parameters), = [(s, p) for s, p in ran if "failnotify_outbox" in s]
    explain = "EXPLAIN " if store.is_postgres else "EXPLAIN QUERY PLAN "
    with store.engine.connect() as conn:
        plan = conn.exec_driver_sql(explain + statement, parameters).all()
    return result, "\n".join(" ".join(str(c) for c in row) for row in plan)


def test_the_repeat_and_storm_reads_use_the_sent_index(store: Store) -> None:
    _fill_history(store)
    since = NOW - timedelta(hours=3, minutes=30)

    sent, plan = _plan_of(store, lambda: store.sent_since("sync_007", Direction.FORWARD, since))
    assert [item.dedupe_key for item in sent] == [
        f"global_immediate:sync_007:forward:r{7 * PER_INTEGRATION + k}" for k in (99, 98, 97)]
    assert INDEX in plan, plan

    senders = [("sync_001", "forward"), ("sync_002", "forward")]
    mails, plan = _plan_of(store, lambda: store.mails_sent_since(senders, since))
    assert mails == 6
    assert INDEX in plan, plan


def test_migration_0005_adds_the_index_to_a_used_outbox_and_downgrades(store_url: str) -> None:
    engine: Engine = create_store_engine(store_url, timeout=5)
    _CREATING.add(engine)  # as migrate() does: the SQLite file is made by the first connection
    try:
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "0004")
            conn.execute(insert(t.outbox), [_sent_row(1, "sync_a", NOW)])
        assert Store(engine).migrate() == ("0004", "0005")
        assert INDEX in {i["name"] for i in inspect(engine).get_indexes("failnotify_outbox")}
        assert [i.dedupe_key for i in Store(engine).sent_since("sync_a", Direction.FORWARD, NOW)] == [
            "global_immediate:sync_a:forward:r1"]
        with engine.begin() as conn:
            command.downgrade(_alembic_config(conn), "0004")
        assert current_revision(engine) == "0004"
        assert INDEX not in {i["name"] for i in inspect(engine).get_indexes("failnotify_outbox")}
    finally:
        _CREATING.discard(engine)
        engine.dispose()
