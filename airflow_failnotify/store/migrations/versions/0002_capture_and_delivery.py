"""Captured events, activity, rule state, the outbox, the error log and notification passes.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "failnotify_event",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("integration", sa.String(250), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("task_id", sa.String(250), nullable=True),
        sa.Column("map_index", sa.Integer, nullable=False),
        sa.Column("entity", sa.String(500), nullable=True),
        sa.Column("try_number", sa.Integer, nullable=True),
        sa.Column("max_tries", sa.Integer, nullable=True),
        sa.Column("is_final", sa.Boolean, nullable=False),
        sa.Column("not_accessible", sa.Boolean, nullable=False),
        sa.Column("error_message", sa.Text, nullable=False),
        sa.Column("traceback", sa.Text, nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("capture_key", sa.String(1200), nullable=False),
        sa.Column("evaluated", sa.Boolean, nullable=False),
        sa.UniqueConstraint("capture_key", name="uq_failnotify_event_capture_key"),
    )
    op.create_index("ix_failnotify_event_pending", "failnotify_event", ["evaluated", "id"])
    op.create_index("ix_failnotify_event_browse", "failnotify_event", ["integration", "occurred_at"])
    op.create_index("ix_failnotify_event_run", "failnotify_event", ["dag_id", "run_id"])

    op.create_table(
        "failnotify_activity",
        sa.Column("integration", sa.String(250), primary_key=True),
        sa.Column("direction", sa.String(16), primary_key=True),
        sa.Column("last_activity_at", TS, nullable=False),
    )
    op.create_table(
        "failnotify_direction_state",
        sa.Column("integration", sa.String(250), primary_key=True),
        sa.Column("direction", sa.String(16), primary_key=True),
        sa.Column("consecutive_failure_event_ids", sa.Text, nullable=False),
        sa.Column("notified_spell_start", TS, nullable=True),
        sa.Column("was_paused", sa.Boolean, nullable=False),
        sa.Column("unpaused_seen_at", TS, nullable=True),
        sa.Column("extra", sa.Text, nullable=False),
    )
    op.create_table(
        "failnotify_evaluation_lock",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("last_evaluated_at", TS, nullable=True),
    )
    op.bulk_insert(
        sa.table("failnotify_evaluation_lock", sa.column("name", sa.String)),
        [{"name": "evaluation"}],
    )
    op.create_table(
        "failnotify_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("integration", sa.String(250), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("dedupe_key", sa.String(1200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("smtp_conn_id", sa.String(250), nullable=False),
        sa.Column("immediate", sa.Boolean, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("claimed_by", sa.String(100), nullable=True),
        sa.Column("lease_expires_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.UniqueConstraint("dedupe_key", name="uq_failnotify_outbox_dedupe_key"),
    )
    op.create_index("ix_failnotify_outbox_state", "failnotify_outbox", ["state", "id"])
    op.create_table(
        "failnotify_outbox_event",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("event_id", sa.Integer, primary_key=True),
        sa.Column(
            "outbox_id",
            sa.Integer,
            sa.ForeignKey("failnotify_outbox.id", ondelete="CASCADE"),
            nullable=False,
        ),
    )
    op.create_index("ix_failnotify_outbox_event_outbox", "failnotify_outbox_event", ["outbox_id"])
    op.create_table(
        "failnotify_error_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("integration", sa.String(250), nullable=True),
        sa.Column("server", sa.String(300), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("outbox_id", sa.Integer, nullable=True),
        sa.Column("pass_id", sa.Integer, nullable=True),
    )
    op.create_index("ix_failnotify_error_log_time", "failnotify_error_log", ["occurred_at"])
    op.create_table(
        "failnotify_pass",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("summary", sa.Text, nullable=True),
    )


def downgrade() -> None:
    for name in (
        "failnotify_pass",
        "failnotify_error_log",
        "failnotify_outbox_event",
        "failnotify_outbox",
        "failnotify_evaluation_lock",
        "failnotify_direction_state",
        "failnotify_activity",
        "failnotify_event",
    ):
        op.drop_table(name)
