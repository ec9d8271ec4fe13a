"""What delivery works with: the outbox, the mails it sends, a channel's transport, the sent journal.

Pure protocols and small types, so :mod:`airflow_failnotify.core.delivery` can be tested with the
real store and the real SMTP server, and reasoned about alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from airflow_failnotify.core.model import OutboxState

Refused = Mapping[str, tuple[int, bytes]]
Clock = Callable[[], datetime]


class Outbox(Protocol):
    """The store's outbox as delivery sees it. Every write is fenced by the claim token."""

    def claim(
        self,
        worker: str,
        *,
        limit: int,
        lease_seconds: int,
        now: datetime | None = None,
        after_id: int = 0,
        ids: Sequence[int] | None = None,
    ) -> Sequence[Any]: ...

    def renew(
        self, outbox_ids: Sequence[int], claim_token: str, *, lease_seconds: int, now: datetime | None = None
    ) -> set[int]: ...

    def mark_sent(
        self,
        outbox_id: int,
        claim_token: str,
        *,
        now: datetime | None = None,
        note: str | None = None,
        message_id: str | None = None,
    ) -> bool: ...

    def mark_attempt_failed(
        self,
        outbox_id: int,
        reason: str,
        *,
        claim_token: str,
        attempts: int,
        state: OutboxState,
        now: datetime | None = None,
    ) -> OutboxState | None: ...

    def release(
        self,
        outbox_ids: Sequence[int],
        claim_token: str,
        *,
        reason: str | None = None,
        now: datetime | None = None,
        hold_until: datetime | None = None,
        state: OutboxState = OutboxState.PENDING,
    ) -> None: ...

    def sent_since(self, integration: str, direction: Any, since: datetime) -> Sequence[Any]: ...

    def claim_storm_held(
        self, worker: str, *, lease_seconds: int, now: datetime | None = None, every: bool = False
    ) -> Sequence[Any]:
        """Claim every row the storm cap held whose window has ended (``every``: all of them, the cap is
        off now), under one token, oldest first."""
        ...

    def mails_sent_since(self, senders: Sequence[tuple[str, str]], since: datetime) -> int:
        """How many distinct mails (Message-IDs) rows of these (integration, direction) pairs went out
        in at or after ``since``."""
        ...

    def log_error(
        self,
        category: str,
        reason: str,
        *,
        server: str | None = None,
        integration: str | None = None,
        outbox_id: int | None = None,
        pass_id: int | None = None,
        now: datetime | None = None,
    ) -> None: ...


@dataclass(frozen=True)
class SentFact:
    """The server accepted this row's mail; the store has not been told yet."""

    outbox_id: int
    claim_token: str
    at: datetime
    note: str | None = None
    message_id: str | None = None  # of the mail that carried it


class SentJournal(Protocol):
    """Where "sent" facts wait while the store cannot take them (on this host)."""

    def keep(self, fact: SentFact) -> None: ...

    def flush(self, outbox: Outbox) -> int:
        """Tell the store every kept fact; returns how many it confirmed. Raises if the store is down."""
        ...


@dataclass
class MemoryJournal:
    """A journal that lives as long as the pass (tests, and a host without a spool folder)."""

    facts: list[SentFact] = field(default_factory=list)

    def keep(self, fact: SentFact) -> None:
        self.facts.append(fact)

    def flush(self, outbox: Outbox) -> int:
        confirmed = 0
        while self.facts:
            fact = self.facts[0]
            confirmed += outbox.mark_sent(
                fact.outbox_id, fact.claim_token, now=fact.at, note=fact.note, message_id=fact.message_id
            )
            self.facts.pop(0)
        return confirmed


@dataclass(frozen=True)
class Mail:
    """One message to send: the outbox rows it covers, claimed under one token."""

    rows: tuple[Any, ...]
    claim_token: str
    storm_digest: bool = False  # the storm cap's digest of held rows (core/storm.py): never held again

    @property
    def first(self) -> Any:
        return self.rows[0]

    @property
    def ids(self) -> list[int]:
        return [int(row.id) for row in self.rows]

    @property
    def conn_id(self) -> str:
        return str(self.first.smtp_conn_id)

    @property
    def integration(self) -> str:
        return str(self.first.integration)


def mails_of(items: Sequence[Any]) -> list[Mail]:
    """The mails that carry claimed rows, oldest first: the rows of one integration-direction and
    connection that coalesce go out as one mail (its place is its oldest row's); the others alone."""
    groups: dict[tuple[str, str, str], list[Any]] = {}
    mails: list[list[Any]] = []
    for item in items:
        if not _coalesces(item):
            mails.append([item])
            continue
        key = (str(item.integration), str(item.direction), str(item.smtp_conn_id))
        if key not in groups:
            groups[key] = []
            mails.append(groups[key])
        groups[key].append(item)
    return [Mail(rows=tuple(rows), claim_token=str(rows[0].claim_token)) for rows in mails]


def _coalesces(item: Any) -> bool:
    """Whether the row's integration-direction sends its due notifications as one mail (opt-in)."""
    noise = getattr(item.settings, "noise", None)
    return bool(getattr(noise, "coalesce", False))


class Transport(Protocol):
    """A channel's connection to its server (email: one SMTP session)."""

    def send(self, notification: Any) -> Refused: ...


# open_transport(conn_id) -> a context manager yielding a connected Transport.
OpenTransport = Callable[[str], AbstractContextManager[Transport]]
# render(mail) -> the channel-neutral notification to send.
Render = Callable[[Mail], Any]
# refresh(rows) -> the rows with their connection and settings as currently configured.
Refresh = Callable[[Sequence[Any]], Sequence[Any]]
# peers(recipient key) -> the (integration, direction) pairs that, as configured now, mail that
# recipient set (the storm cap counts their mails together).
Peers = Callable[[str], Sequence[tuple[str, str]]]
