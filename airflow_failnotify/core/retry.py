"""The outbox's retry policy: what a failed send does to the notification and to its server.

One object that delivery and the outbox both consult (DESIGN.md, Delivery):

- a server-level failure (cannot connect, credentials refused, token endpoint failing) keeps
  the notification pending and pauses the server for the rest of the pass;
- a message-level temporary failure keeps it pending;
- a message-level permanent failure fails it once it has used ``max_attempts``.

Failures are keyed by the SMTP stage they came at and the server's reply code. Today every
failure is treated as its transport flagged it (``temporary``, ``server_level``); the table
:attr:`RetryPolicy.overrides` is where a (stage, code) gets a treatment of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from airflow_failnotify.core.model import OutboxState

#: Bounds the configuration cannot go below: at least one try; a lease long enough for one page.
MIN_ATTEMPTS = 1
MIN_LEASE_SECONDS = 10


class SendStage(str, Enum):
    """Where in a send a failure happened."""

    RENDER = "render"  # building the message, before any network
    TOKEN = "token"  # the OAuth 2.0 token endpoint
    CONNECT = "connect"  # TCP, TLS, greeting, EHLO, STARTTLS
    AUTH = "auth"
    MAIL = "mail"  # MAIL FROM
    RCPT = "rcpt"
    DATA = "data"


@dataclass(frozen=True)
class SendFailure:
    """A failed send, as the transport saw it."""

    reason: str
    temporary: bool
    server_level: bool
    stage: SendStage | None = None
    code: int | None = None


@dataclass(frozen=True)
class Treatment:
    """How a failure is handled: fail the message (when out of attempts) and/or pause the server."""

    permanent: bool
    server_level: bool


@dataclass(frozen=True)
class Verdict:
    """What becomes of the notification after a failure."""

    state: OutboxState  # PENDING or FAILED
    attempts: int
    pause_server: bool


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    lease_seconds: int = 300
    overrides: Mapping[tuple[SendStage, int], Treatment] = field(default_factory=dict)

    @classmethod
    def from_options(cls, *, max_attempts: int, lease_seconds: int) -> RetryPolicy:
        """The configured values, raised to the bounds the outbox needs."""
        return cls(
            max_attempts=max(MIN_ATTEMPTS, max_attempts), lease_seconds=max(MIN_LEASE_SECONDS, lease_seconds)
        )

    def treatment(self, failure: SendFailure) -> Treatment:
        if failure.stage is not None and failure.code is not None:
            override = self.overrides.get((failure.stage, failure.code))
            if override is not None:
                return override
        if failure.server_level:
            # The server is unusable; the notification itself is not at fault, so it stays pending.
            return Treatment(permanent=False, server_level=True)
        return Treatment(permanent=not failure.temporary, server_level=False)

    def after_failure(self, attempts_before: int, failure: SendFailure) -> Verdict:
        """The notification's state after one more (failed) attempt."""
        treatment = self.treatment(failure)
        attempts = attempts_before + 1
        failed = treatment.permanent and attempts >= self.max_attempts
        return Verdict(
            state=OutboxState.FAILED if failed else OutboxState.PENDING,
            attempts=attempts,
            pause_server=treatment.server_level,
        )
