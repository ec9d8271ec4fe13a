"""The outbox's sent rows by integration-direction: what the repeat interval and the storm cap read.

Both ask, per mail, for the rows one integration-direction (or a few) sent since a time. Without this
index each question scanned every outbox row ever written, so a pass slowed down as its history grew.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_failnotify_outbox_sent", "failnotify_outbox", ["integration", "direction", "sent_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_failnotify_outbox_sent", table_name="failnotify_outbox")
