"""The outbox's delivery logic: one pass over the due notifications, oldest first.

Pure: it talks to the outbox and to a channel's transport through the small protocols below,
and asks the retry policy (:mod:`airflow_failnotify.core.retry`) what a failure means. So it
can be tested with the real store and the real SMTP server, and reasoned about alone.

- Notifications are claimed in pages (bounded memory) and grouped by connection, so each
  server gets one connection per page. Each claimed row goes out in a :class:`Mail`; a mail
  covers one or more rows claimed under one token (today one row per mail).
- A server that fails at connection level is not tried again in this pass: one error row for
  the server, the mail being sent counts an attempt, the rest go back untried.
- A message-level refusal counts an attempt; the policy says whether it fails the mail.
- A recipient refused among accepted ones: sent, and the refusal logged.
- Every failed send is logged with the server, the reason and the time. Nothing is
  dropped silently; one bad notification does not hold back the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from airflow_failnotify.core.model import OutboxState
from airflow_failnotify.core.retry import RetryPolicy, SendFailure, SendStage
from airflow_failnotify.exceptions import MailDeliveryError

log = logging.getLogger(__name__)

PAGE_SIZE = 100

Refused = Mapping[str, tuple[int, bytes]]
Clock = Callable[[], datetime]


class DueNotification(Protocol):
    id: int
    smtp_conn_id: str
    integration: str
    attempts: int
    claim_token: str | None


class Outbox(Protocol):
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

    def mark_sent(
        self, outbox_id: int, worker: str, *, now: datetime | None = None, note: str | None = None
    ) -> bool: ...

    def mark_attempt_failed(
        self, outbox_id: int, reason: str, *, attempts: int, state: OutboxState, now: datetime | None = None
    ) -> OutboxState: ...

    def release(
        self, outbox_ids: Sequence[int], *, reason: str | None = None, now: datetime | None = None
    ) -> None: ...

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
class Mail:
    """One message to send: the outbox rows it covers, claimed under one token."""

    rows: tuple[Any, ...]
    claim_token: str | None

    @property
    def first(self) -> Any:
        return self.rows[0]

    @property
    def conn_id(self) -> str:
        return str(self.first.smtp_conn_id)

    @property
    def integration(self) -> str:
        return str(self.first.integration)


class Transport(Protocol):
    """A channel's connection to its server (email: one SMTP session)."""

    def send(self, notification: Any) -> Refused: ...


# open_transport(conn_id) -> a context manager yielding a connected Transport.
OpenTransport = Callable[[str], AbstractContextManager[Transport]]
# render(mail) -> the channel-neutral notification to send.
Render = Callable[[Mail], Any]


@dataclass
class DeliveryReport:
    sent: int = 0
    pending: int = 0  # tried or skipped in this pass, still pending
    failed: int = 0  # became failed (permanent) in this pass
    errors: list[dict[str, Any]] = field(default_factory=list)
    sent_ids: list[int] = field(default_factory=list)

    def error(self, reason: str, *, server: str | None, outbox_id: int | None = None) -> None:
        self.errors.append({"server": server, "reason": reason, "outbox_id": outbox_id})


def failure_of(err: MailDeliveryError) -> SendFailure:
    return SendFailure(
        reason=str(err),
        temporary=err.temporary,
        server_level=err.server_level,
        stage=err.stage,
        code=err.code,
    )


def mails_of(items: Sequence[Any]) -> list[Mail]:
    """The mails that carry claimed rows (one row each; coalescing is a later policy)."""
    return [Mail(rows=(item,), claim_token=item.claim_token) for item in items]


@dataclass
class _Pass:
    """What one delivery pass shares: its collaborators and what it learnt so far."""

    outbox: Outbox
    open_transport: OpenTransport
    render: Render
    policy: RetryPolicy
    worker: str
    clock: Clock
    pass_id: int | None
    report: DeliveryReport = field(default_factory=DeliveryReport)
    paused_servers: dict[str, str] = field(default_factory=dict)


def deliver(
    outbox: Outbox,
    open_transport: OpenTransport,
    render: Render,
    *,
    policy: RetryPolicy,
    worker: str,
    clock: Clock,
    pass_id: int | None = None,
    only_ids: Sequence[int] | None = None,
) -> DeliveryReport:
    """Send every due notification (or only ``only_ids``) once; see the module docstring."""
    run = _Pass(outbox, open_transport, render, policy, worker, clock, pass_id)
    for page in _pages(run, only_ids):
        groups: dict[str, list[Mail]] = {}
        for mail in mails_of(page):
            groups.setdefault(mail.conn_id, []).append(mail)
        for conn_id, mails in groups.items():
            if conn_id in run.paused_servers:
                _release(run, mails, run.paused_servers[conn_id])
                continue
            _deliver_group(run, conn_id, mails)
    return run.report


def _pages(run: _Pass, ids: Sequence[int] | None) -> Iterator[Sequence[Any]]:
    after_id = 0
    while True:
        page = run.outbox.claim(
            run.worker,
            limit=PAGE_SIZE,
            lease_seconds=run.policy.lease_seconds,
            now=run.clock(),
            after_id=after_id,
            ids=ids,
        )
        if not page:
            return
        after_id = max(item.id for item in page)
        yield page


def _release(run: _Pass, mails: Sequence[Mail], reason: str) -> None:
    ids = [row.id for mail in mails for row in mail.rows]
    run.outbox.release(ids, reason=reason, now=run.clock())
    run.report.pending += len(ids)


def _deliver_group(run: _Pass, conn_id: str, mails: list[Mail]) -> None:
    remaining = list(mails)
    in_flight: Mail | None = None
    try:
        with run.open_transport(conn_id) as transport:
            while remaining:
                mail = remaining.pop(0)
                try:
                    notification = run.render(mail)
                except Exception as err:  # a rendering bug must not hold back the others
                    log.exception("failnotify: notification %s could not be rendered", mail.first.id)
                    reason = f"could not build the email: {type(err).__name__}: {err}"
                    failure = SendFailure(reason, temporary=False, server_level=False, stage=SendStage.RENDER)
                    _failed_once(run, mail, failure)
                    continue
                in_flight = mail
                try:
                    refused = transport.send(notification)
                except MailDeliveryError as err:
                    if run.policy.treatment(failure_of(err)).server_level:
                        raise
                    in_flight = None
                    _failed_once(run, mail, failure_of(err))
                    continue
                in_flight = None
                _sent(run, mail, refused)
    except MailDeliveryError as err:
        _server_failed(run, conn_id, mails, remaining, in_flight, failure_of(err))


def _sent(run: _Pass, mail: Mail, refused: Refused) -> None:
    note = None
    if refused:
        note = "refused recipients: " + ", ".join(
            f"{addr} ({code})" for addr, (code, _reply) in refused.items()
        )
        run.outbox.log_error(
            "send",
            f"sent, but the server {note}",
            server=mail.conn_id,
            integration=mail.integration,
            outbox_id=mail.first.id,
            pass_id=run.pass_id,
            now=run.clock(),
        )
        run.report.error(note, server=mail.conn_id, outbox_id=mail.first.id)
    for row in mail.rows:
        if run.outbox.mark_sent(row.id, run.worker, note=note, now=run.clock()):
            run.report.sent += 1
            run.report.sent_ids.append(row.id)


def _server_failed(
    run: _Pass,
    conn_id: str,
    mails: Sequence[Mail],
    remaining: list[Mail],
    in_flight: Mail | None,
    failure: SendFailure,
) -> None:
    """The server as a whole is unusable: one error row for it in this pass. The attempt is
    charged to the mail on the wire (or, when connecting failed, to the first one waiting);
    the others go back untried."""
    run.paused_servers[conn_id] = failure.reason
    blamed = in_flight or mails[0]
    run.outbox.log_error(
        "send",
        failure.reason,
        server=conn_id,
        pass_id=run.pass_id,
        integration=blamed.integration,
        now=run.clock(),
    )
    run.report.error(failure.reason, server=conn_id)
    charged = in_flight if in_flight is not None else (remaining.pop(0) if remaining else None)
    if charged is not None:
        states = [_record_failure(run, row, failure) for row in charged.rows]
        run.report.pending += sum(state is OutboxState.PENDING for state in states)
    _release(run, remaining, failure.reason)


def _record_failure(run: _Pass, row: Any, failure: SendFailure) -> OutboxState:
    verdict = run.policy.after_failure(row.attempts, failure)
    return run.outbox.mark_attempt_failed(
        row.id, failure.reason, attempts=verdict.attempts, state=verdict.state, now=run.clock()
    )


def _failed_once(run: _Pass, mail: Mail, failure: SendFailure) -> None:
    for row in mail.rows:
        state = _record_failure(run, row, failure)
        run.outbox.log_error(
            "send",
            failure.reason,
            server=mail.conn_id,
            integration=row.integration,
            outbox_id=row.id,
            pass_id=run.pass_id,
            now=run.clock(),
        )
        run.report.error(failure.reason, server=mail.conn_id, outbox_id=row.id)
        if state is OutboxState.FAILED:
            run.report.failed += 1
        else:
            run.report.pending += 1
