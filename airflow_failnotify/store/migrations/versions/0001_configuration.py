"""Notification configuration per integration and direction, and settings.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "failnotify_registration",
        sa.Column("integration", sa.String(250), primary_key=True),
        sa.Column("backward_integration", sa.String(250), nullable=True),
        sa.Column("same_for_backward", sa.Boolean, nullable=False),
        sa.Column("registered_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "failnotify_direction_config",
        sa.Column(
            "integration",
            sa.String(250),
            sa.ForeignKey("failnotify_registration.integration", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("direction", sa.String(16), primary_key=True),
        sa.Column("dag_id", sa.String(250), nullable=False, unique=True),
        sa.Column("smtp_conn_id", sa.String(250), nullable=False),
        sa.Column("recipients", sa.Text, nullable=False),
        sa.Column("cc", sa.Text, nullable=False),
        sa.Column("subject_prefix", sa.String(200), nullable=False),
        sa.Column("include_error_trace", sa.Boolean, nullable=False),
        sa.Column("global_enabled", sa.Boolean, nullable=False),
        sa.Column("inactivity_minutes", sa.Integer, nullable=True),
        sa.Column("notify_immediately", sa.Boolean, nullable=False),
        sa.Column("failure_count_threshold", sa.Integer, nullable=False),
        sa.Column("processing_enabled", sa.Boolean, nullable=False),
        sa.Column("notify_before_max_retries", sa.Boolean, nullable=False),
    )
    op.create_table(
        "failnotify_setting",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("failnotify_setting")
    op.drop_table("failnotify_direction_config")
    op.drop_table("failnotify_registration")
