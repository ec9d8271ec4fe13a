"""Noise control (issue 18): per-direction noise settings, silences, and outbox columns for delivery.

- ``failnotify_direction_config``: ``noise_coalesce``, ``noise_group_wait_seconds``,
  ``noise_repeat_interval_minutes``, ``noise_recovery_mail`` (existing rows get the defaults).
- ``failnotify_outbox``: ``sent_message_id`` (the Message-ID of the mail that carried the row) and
  ``hold_until`` (not to be claimed, or released from silenced, before), indexed with ``state``.
- ``failnotify_silence``: one row per silenced integration (``*``: all).

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
_NOISE_COLUMN_NAMES = (
    "noise_coalesce",
    "noise_group_wait_seconds",
    "noise_repeat_interval_minutes",
    "noise_recovery_mail",
)


def _noise_columns() -> list[sa.Column[object]]:
    """The new direction columns; their server defaults are NoiseSettings' defaults."""
    return [
        sa.Column("noise_coalesce", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("noise_group_wait_seconds", sa.Integer, nullable=False, server_default="0"),
        sa.Column("noise_repeat_interval_minutes", sa.Integer, nullable=False, server_default="0"),
        sa.Column("noise_recovery_mail", sa.Boolean, nullable=False, server_default=sa.false()),
    ]


def upgrade() -> None:
    # batch_alter_table: SQLite cannot ALTER most things; it recreates the table where it must.
    with op.batch_alter_table("failnotify_direction_config") as batch:
        for column in _noise_columns():
            batch.add_column(column)
    with op.batch_alter_table("failnotify_outbox") as batch:
        batch.add_column(sa.Column("sent_message_id", sa.String(300), nullable=True))
        batch.add_column(sa.Column("hold_until", TS, nullable=True))
    op.create_index("ix_failnotify_outbox_hold", "failnotify_outbox", ["state", "hold_until"])
    op.create_table(
        "failnotify_silence",
        sa.Column("integration", sa.String(250), primary_key=True),
        sa.Column("until", TS, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(250), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_failnotify_silence_until", "failnotify_silence", ["until"])


def downgrade() -> None:
    op.drop_index("ix_failnotify_silence_until", table_name="failnotify_silence")
    op.drop_table("failnotify_silence")
    op.drop_index("ix_failnotify_outbox_hold", table_name="failnotify_outbox")
    with op.batch_alter_table("failnotify_outbox") as batch:
        batch.drop_column("hold_until")
        batch.drop_column("sent_message_id")
    with op.batch_alter_table("failnotify_direction_config") as batch:
        for name in reversed(_NOISE_COLUMN_NAMES):
            batch.drop_column(name)
