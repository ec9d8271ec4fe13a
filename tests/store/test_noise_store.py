"""Migration 0004 and the noise settings in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

from alembic import command
from sqlalchemy import insert, inspect, text

from airflow_failnotify.core.config import parse_registration
from airflow_failnotify.core.model import Direction, NoiseSettings
from airflow_failnotify.store import Store
from airflow_failnotify.store import tables as t
from airflow_failnotify.store.engine import (
    _CREATING,
    _alembic_config,
    code_head,
    create_store_engine,
    current_revision,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def test_noise_settings_round_trip_per_direction(store: Store) -> None:
    registration = parse_registration(
        {
            "integration": "sync_a",
            "backward_integration": "sync_b",
            "smtp_conn_id": "mail",
            "recipients": "ops@example.com",
            "noise": {"coalesce": False, "group_wait_seconds": 0, "repeat_interval_minutes": "2h"},
            "same_for_backward": False,
            "backward": {"noise": {"recovery_mail": True}},
        }
    )
    store.save_registration(registration)
    stored = store.get_registration("sync_a")
    assert stored is not None
    assert stored.forward.noise == NoiseSettings(
        coalesce=False, group_wait_seconds=0, repeat_interval_minutes=120, recovery_mail=False
    )
    assert stored.settings_for(Direction.BACKWARD).noise.recovery_mail is True
    assert stored.settings_for(Direction.BACKWARD).noise.repeat_interval_minutes == 120


def test_migration_0004_keeps_existing_rows_as_they_were_and_adds_its_tables(store_url: str) -> None:
    engine = create_store_engine(store_url, timeout=5)
    _CREATING.add(engine)  # as migrate() does: the SQLite file is made by the first connection
    try:
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "0003")
            conn.execute(
                text(
                    "INSERT INTO failnotify_registration (integration, same_for_backward, registered_at, "
                    "updated_at) VALUES ('sync_a', :yes, :at, :at)"
                ),
                {"yes": True, "at": T0},
            )
            conn.execute(
                text(
                    "INSERT INTO failnotify_direction_config (integration, direction, dag_id, smtp_conn_id, "
                    "recipients, cc, subject_prefix, include_error_trace, global_enabled, "
                    "notify_immediately, failure_count_threshold, processing_enabled, "
                    "notify_before_max_retries) VALUES ('sync_a', 'forward', 'sync_a', 'mail', "
                    "'ops@example.com', '', '', :yes, :yes, :yes, 1, :yes, :no)"
                ),
                {"yes": True, "no": False},
            )
        store = Store(engine)
        assert store.migrate() == ("0003", code_head())
        stored = store.get_registration("sync_a")
        # Registrations saved before noise control keep one mail per notification (all off); new ones
        # get the defaults.
        off = NoiseSettings(coalesce=False, group_wait_seconds=0, repeat_interval_minutes=0)
        assert stored is not None and stored.forward.noise == off
        inspector = inspect(engine)
        outbox_columns = {c["name"]: c for c in inspector.get_columns("failnotify_outbox")}
        assert outbox_columns["sent_message_id"]["nullable"] and outbox_columns["hold_until"]["nullable"]
        assert "ix_failnotify_outbox_hold" in {i["name"] for i in inspector.get_indexes("failnotify_outbox")}
        assert {c["name"] for c in inspector.get_columns("failnotify_silence")} == {
            "integration",
            "until",
            "reason",
            "created_by",
            "created_at",
        }
        with engine.begin() as conn:  # the new datetime column takes the package's aware UTC values
            conn.execute(
                insert(t.silence).values(
                    integration="*", until=T0, reason="r", created_by="me", created_at=T0
                )
            )
    finally:
        _CREATING.discard(engine)
        engine.dispose()


def test_migration_0004_downgrades_cleanly(store_url: str) -> None:
    engine = create_store_engine(store_url, timeout=5)
    try:
        Store(engine).migrate()
        with engine.begin() as conn:
            command.downgrade(_alembic_config(conn), "0003")
        assert current_revision(engine) == "0003"
        inspector = inspect(engine)
        assert not inspector.has_table("failnotify_silence")
        assert "hold_until" not in {c["name"] for c in inspector.get_columns("failnotify_outbox")}
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "head")
        assert current_revision(engine) == code_head()
    finally:
        _CREATING.discard(engine)
        engine.dispose()


def test_an_outbox_payload_written_before_noise_control_reads_with_the_defaults() -> None:
    import json

    from airflow_failnotify.core.model import NotificationDraft, NotificationKind
    from airflow_failnotify.store.codecs import draft_to_payload, payload_to_draft

    settings = parse_registration(
        {"integration": "sync_a", "smtp_conn_id": "mail", "recipients": "ops@example.com"}
    ).forward
    draft = NotificationDraft(NotificationKind.INACTIVITY, "sync_a", Direction.FORWARD, "k", T0)
    payload = json.loads(draft_to_payload(draft, settings, "sync_a"))
    del payload["settings"]["noise"]
    _, read, _ = payload_to_draft(json.dumps(payload))
    assert read == settings
