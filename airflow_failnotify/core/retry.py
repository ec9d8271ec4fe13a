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

import re
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


_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


def enhanced_code(reply: str) -> str | None:
    """The RFC 3463 enhanced status code of a reply ("5.3.4"), if it has one."""
    found = _ENHANCED.search(reply)
    return ".".join(found.groups()) if found else None


def _is_size_refusal(code: int, enhanced: str | None) -> bool:
    # RFC 1870: 552 at MAIL FROM (with SIZE) or after DATA; RFC 3463: 5.3.4 too big, 5.2.3 over a quota.
    return code == 552 or enhanced in ("5.3.4", "5.2.3", "4.3.4")


def is_size_refusal(failure: SendFailure) -> bool:
    """Whether the server refused this message for its size (so smaller parts of it may go)."""
    if failure.code is None or failure.stage not in (SendStage.MAIL, SendStage.DATA):
        return False
    return _is_size_refusal(failure.code, enhanced_code(failure.reason))


def classify_reply(stage: SendStage, code: int, reply: str) -> Treatment:
    """What an SMTP refusal means, by the stage it came at and its (enhanced) code.

    Message-level refusals (this mail's size, content, recipients, or a policy refusal of this
    mail) fail or delay this mail only; server-level ones (connection, authentication, the
    connection's sender or account) pause the server for the pass and keep every mail pending.
    """
    temporary = 400 <= code < 500
    enhanced = enhanced_code(reply)
    subject = enhanced.split(".")[1] if enhanced else None
    if code == 421 or stage in (SendStage.CONNECT, SendStage.TOKEN, SendStage.AUTH):
        return Treatment(permanent=False, server_level=True)
    if stage is SendStage.MAIL:
        about_this_mail = _is_size_refusal(code, enhanced) or subject == "6" or enhanced == "5.7.1"
        if not about_this_mail:
            # The connection's sender or account is refused (5.1.x, 5.7.x, 550, 553) or the server
            # is short of resources (452): every mail of this connection would be refused alike.
            return Treatment(permanent=False, server_level=True)
    return Treatment(permanent=not temporary, server_level=False)


def refusal_hint(stage: SendStage, code: int, reply: str, size_bytes: int | None) -> str:
    """What a person can do about a message-level refusal ("" when there is nothing specific)."""
    enhanced = enhanced_code(reply)
    if stage in (SendStage.MAIL, SendStage.DATA) and _is_size_refusal(code, enhanced):
        size = f"message of {max(1, round(size_bytes / 1024))} KB" if size_bytes else "the message"
        return (
            f"{size} exceeds the server's size limit; turn off 'Include error trace' for this "
            "integration (the PDF is most of the mail) or raise the server's message size limit"
        )
    if enhanced and enhanced.split(".")[1] == "6":
        return "the server refused the message's content"
    if enhanced == "5.7.1":
        return (
            "the server's policy refused this message (check relaying and sender rights for these recipients)"
        )
    return ""


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
