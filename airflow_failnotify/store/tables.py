"""Every table of the package, on its own MetaData (never Airflow's).

The schema is created and changed only by the alembic migrations in ``migrations/``;
nothing here touches a database at import. Names are prefixed ``failnotify_`` so the
store can share a database with other applications.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)

metadata = MetaData()

# alembic keeps our revision in its own table, apart from Airflow's alembic_version.
VERSION_TABLE = "failnotify_alembic_version"


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (which stores naive text) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the failnotify store; use UTC-aware datetimes")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc)


ID_LEN = 250

# --- configuration (migration 0001) --------------------------------------------------------------

registration = Table(
    "failnotify_registration",
    metadata,
    Column("integration", String(ID_LEN), primary_key=True),
    Column("backward_integration", String(ID_LEN), nullable=True),
    Column("same_for_backward", Boolean, nullable=False, default=True),
    Column("registered_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# One row per (integration, direction). The backward row exists when the registration has a
# backward DAG; with same_for_backward it mirrors the forward settings. dag_id is unique, which
# is what keeps one DAG in at most one registration and gives the listener its lookup.
direction_config = Table(
    "failnotify_direction_config",
    metadata,
    Column(
        "integration",
        String(ID_LEN),
        ForeignKey("failnotify_registration.integration", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("direction", String(16), primary_key=True),
    Column("dag_id", String(ID_LEN), nullable=False, unique=True),
    Column("smtp_conn_id", String(ID_LEN), nullable=False),
    Column("recipients", Text, nullable=False),  # comma separated
    Column("cc", Text, nullable=False, default=""),
    Column("subject_prefix", String(200), nullable=False, default=""),
    Column("include_error_trace", Boolean, nullable=False, default=True),
    Column("global_enabled", Boolean, nullable=False),
    Column("inactivity_minutes", Integer, nullable=True),
    Column("notify_immediately", Boolean, nullable=False),
    Column("failure_count_threshold", Integer, nullable=False),
    Column("processing_enabled", Boolean, nullable=False),
    Column("notify_before_max_retries", Boolean, nullable=False),
    # Noise control (migration 0004); the server defaults are NoiseSettings' defaults.
    Column("noise_coalesce", Boolean, nullable=False, server_default=false()),
    Column("noise_group_wait_seconds", Integer, nullable=False, server_default="0"),
    Column("noise_repeat_interval_minutes", Integer, nullable=False, server_default="0"),
    Column("noise_recovery_mail", Boolean, nullable=False, server_default=false()),
)

setting = Table(
    "failnotify_setting",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# --- capture, rules and delivery (migration 0002) --------------------------------------------------

event = Table(
    "failnotify_event",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("integration", String(ID_LEN), nullable=False),
    Column("direction", String(16), nullable=False),
    Column("dag_id", String(ID_LEN), nullable=False),
    Column("run_id", String(ID_LEN), nullable=False),
    Column("task_id", String(ID_LEN), nullable=True),
    Column("map_index", Integer, nullable=False, default=-1),
    Column("entity", String(500), nullable=True),
    Column("try_number", Integer, nullable=True),
    Column("max_tries", Integer, nullable=True),
    Column("is_final", Boolean, nullable=False, default=True),
    Column("not_accessible", Boolean, nullable=False, default=False),
    Column("error_message", Text, nullable=False, default=""),
    Column("traceback", Text, nullable=False, default=""),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("source", String(32), nullable=False),  # task | scheduler | api | reconcile | entity_api
    # Makes capture idempotent: the same failure seen by the task and by the scheduler, a replayed
    # spool file, or `dags test` firing twice records one row.
    Column("capture_key", String(1200), nullable=False),
    # False until an evaluation has consumed the event; the evaluation cost follows these rows only.
    Column("evaluated", Boolean, nullable=False, default=False),
    UniqueConstraint("capture_key", name="uq_failnotify_event_capture_key"),
)
Index("ix_failnotify_event_pending", event.c.evaluated, event.c.id)
Index("ix_failnotify_event_browse", event.c.integration, event.c.occurred_at)
Index("ix_failnotify_event_run", event.c.dag_id, event.c.run_id)

activity = Table(
    "failnotify_activity",
    metadata,
    Column("integration", String(ID_LEN), primary_key=True),
    Column("direction", String(16), primary_key=True),
    Column("last_activity_at", UtcDateTime(), nullable=False),
)

direction_state = Table(
    "failnotify_direction_state",
    metadata,
    Column("integration", String(ID_LEN), primary_key=True),
    Column("direction", String(16), primary_key=True),
    Column("consecutive_failure_event_ids", Text, nullable=False, default=""),  # comma separated ids
    Column("notified_spell_start", UtcDateTime(), nullable=True),
    Column("was_paused", Boolean, nullable=False, default=False),
    Column("unpaused_seen_at", UtcDateTime(), nullable=True),
    Column("extra", Text, nullable=False, default="{}"),  # JSON: room for rule state without a migration
)

# A single row locked by every evaluation, so two evaluations never run at once.
evaluation_lock = Table(
    "failnotify_evaluation_lock",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("last_evaluated_at", UtcDateTime(), nullable=True),
)

outbox = Table(
    "failnotify_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("integration", String(ID_LEN), nullable=False),
    Column("direction", String(16), nullable=False),
    Column("dedupe_key", String(1200), nullable=False),
    Column("state", String(16), nullable=False),
    Column("smtp_conn_id", String(ID_LEN), nullable=False),
    Column("immediate", Boolean, nullable=False, default=False),
    Column("payload", Text, nullable=False),  # JSON: the draft and the settings it was made under
    Column("message_id", String(200), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("claimed_by", String(100), nullable=True),
    Column("lease_expires_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),
    # Migration 0004: the Message-ID of the mail that carried the row (one mail may carry several
    # rows), and a time the row is not to be claimed (or, silenced, released) before.
    Column("sent_message_id", String(300), nullable=True),
    Column("hold_until", UtcDateTime(), nullable=True),
    UniqueConstraint("dedupe_key", name="uq_failnotify_outbox_dedupe_key"),
)
Index("ix_failnotify_outbox_state", outbox.c.state, outbox.c.id)
Index("ix_failnotify_outbox_hold", outbox.c.state, outbox.c.hold_until)
# Migration 0005: the rows one integration-direction sent since a time (repeat interval, storm cap).
Index("ix_failnotify_outbox_sent", outbox.c.integration, outbox.c.direction, outbox.c.sent_at)

# Which failures a notification covers; the primary key is "a failure appears in at most one
# notification of each kind, ever".
outbox_event = Table(
    "failnotify_outbox_event",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("event_id", Integer, primary_key=True),
    Column("outbox_id", Integer, ForeignKey("failnotify_outbox.id", ondelete="CASCADE"), nullable=False),
)
Index("ix_failnotify_outbox_event_outbox", outbox_event.c.outbox_id)

error_log = Table(
    "failnotify_error_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("category", String(32), nullable=False),  # send | config | store | capture
    Column("integration", String(ID_LEN), nullable=True),
    Column("server", String(300), nullable=True),
    Column("reason", Text, nullable=False),
    Column("outbox_id", Integer, nullable=True),
    Column("pass_id", Integer, nullable=True),
)
Index("ix_failnotify_error_log_time", error_log.c.occurred_at)

notification_pass = Table(
    "failnotify_pass",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("trigger", String(32), nullable=False),  # schedule | immediate | cli | manual
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Column("summary", Text, nullable=True),  # JSON
)

# --- audit (migration 0003) -------------------------------------------------------------------------

# Who changed which configuration, when, and what changed (JSON list of {field, before, after}).
audit = Table(
    "failnotify_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("actor", String(ID_LEN), nullable=False),
    Column("source", String(32), nullable=False),  # ui | bulk | cli | import
    Column("action", String(32), nullable=False),  # register | update | unregister | setting
    Column("integration", String(ID_LEN), nullable=True),  # None: a plugin setting
    Column("changes", Text, nullable=False),
)
Index("ix_failnotify_audit_integration", audit.c.integration, audit.c.occurred_at)
Index("ix_failnotify_audit_time", audit.c.occurred_at)

# --- silences (migration 0004) ----------------------------------------------------------------------

# One row per silenced integration ("*": all of them) until ``until``; its notifications are written to
# the outbox as "silenced" and held until then. Expired rows are deleted when their held rows are
# released (service/silences.py); the audit trail keeps who set and lifted each silence.
silence = Table(
    "failnotify_silence",
    metadata,
    Column("integration", String(ID_LEN), primary_key=True),
    Column("until", UtcDateTime(), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", String(ID_LEN), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
Index("ix_failnotify_silence_until", silence.c.until)
