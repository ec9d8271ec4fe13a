"""The audit trail of configuration changes: who, when, what changed.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "failnotify_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("integration", sa.String(250), nullable=True),
        sa.Column("changes", sa.Text, nullable=False),
    )
    op.create_index("ix_failnotify_audit_integration", "failnotify_audit", ["integration", "occurred_at"])
    op.create_index("ix_failnotify_audit_time", "failnotify_audit", ["occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_failnotify_audit_time", table_name="failnotify_audit")
    op.drop_index("ix_failnotify_audit_integration", table_name="failnotify_audit")
    op.drop_table("failnotify_audit")
