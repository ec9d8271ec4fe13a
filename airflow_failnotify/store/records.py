"""The store's own records: what its queries hand out and take in, beside the core's model."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_failnotify.core.model import (
    Direction,
    DirectionSettings,
    NotificationDraft,
    NotificationKind,
    OutboxState,
)


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: NotificationKind
    integration: str
    direction: Direction
    dedupe_key: str
    state: OutboxState
    smtp_conn_id: str
    immediate: bool
    attempts: int
    message_id: str
    created_at: datetime
    updated_at: datetime
    draft: NotificationDraft
    settings: DirectionSettings
    dag_id: str
    last_error: str | None = None
    sent_at: datetime | None = None
    claim_token: str | None = None  # who holds the row while it is sending
    sent_message_id: str | None = None  # the Message-ID of the mail that carried it
    hold_until: datetime | None = None  # pending, but not to be sent before (noise control)


@dataclass(frozen=True)
class ErrorRow:
    id: int
    occurred_at: datetime
    category: str
    integration: str | None
    server: str | None
    reason: str
    outbox_id: int | None


@dataclass(frozen=True)
class PassRow:
    id: int
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    summary: dict[str, Any]


@dataclass
class ImportPlan:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


ALL_INTEGRATIONS = "*"  # a silence of every integration


@dataclass(frozen=True)
class Silence:
    """An integration (or ``*``: all) silenced until ``until``: its notifications are held, not sent."""

    integration: str
    until: datetime
    reason: str
    created_by: str
    created_at: datetime

    @property
    def is_global(self) -> bool:
        return self.integration == ALL_INTEGRATIONS


@dataclass(frozen=True)
class HeldNotifications:
    """The silenced outbox rows of one integration: how many, since when, held until when."""

    integration: str
    count: int
    oldest_created_at: datetime
    hold_until: datetime | None
