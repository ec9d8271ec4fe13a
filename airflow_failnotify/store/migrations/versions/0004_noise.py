"""Noise control: the Message-ID of the mail that carried each outbox row; rows held until a time.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("failnotify_outbox") as batch:
        batch.add_column(sa.Column("sent_message_id", sa.String(300), nullable=True))
        batch.add_column(sa.Column("hold_until", TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("failnotify_outbox") as batch:
        batch.drop_column("hold_until")
        batch.drop_column("sent_message_id")
