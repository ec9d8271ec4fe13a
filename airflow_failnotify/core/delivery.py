"""The outbox's delivery logic: one pass over the due notifications, oldest first.

Pure: it talks to the outbox and to mail servers through the two small protocols
below, so it can be tested with the real store and the real SMTP server, and reasoned
about alone. The policy (DESIGN.md, Delivery):

- Notifications are claimed in pages (bounded memory) and grouped by SMTP connection,
  so each server gets one connection per page.
- A server that fails at connection level (cannot connect, credentials refused, token
  endpoint failing) is not tried again in this pass: one error row for the server, the
  notification being sent counts an attempt, the rest go back untried.
- A message-level refusal counts an attempt; a permanent one marks the notification
  failed after ``max_attempts``; a temporary one keeps it pending.
- A recipient refused among accepted ones: sent, and the refusal logged.
- Every failed send is logged with the server, the reason and the time. Nothing is
  dropped silently; one bad notification does not hold back the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, Protocol

from airflow_failnotify.core.model import OutboxState
from airflow_failnotify.exceptions import MailDeliveryError

log = logging.getLogger(__name__)

PAGE_SIZE = 100


class DueNotification(Protocol):
    id: int
    smtp_conn_id: str
    integration: str


class Outbox(Protocol):
    def claim(
        self,
        worker: str,
        *,
        limit: int,
        lease_seconds: int,
        after_id: int = 0,
        ids: Sequence[int] | None = None,
    ) -> Sequence[Any]: ...

    def mark_sent(self, outbox_id: int, worker: str, *, note: str | None = None) -> bool: ...

    def mark_attempt_failed(
        self, outbox_id: int, reason: str, *, count_attempt: bool, permanent: bool, max_attempts: int
    ) -> OutboxState: ...

    def release(self, outbox_ids: Sequence[int], *, reason: str | None = None) -> None: ...

    def log_error(
        self,
        category: str,
        reason: str,
        *,
        server: str | None = None,
        integration: str | None = None,
        outbox_id: int | None = None,
        pass_id: int | None = None,
    ) -> None: ...


class MailServer(Protocol):
    def send_message(self, msg: Message) -> Mapping[str, tuple[int, bytes]]: ...


# open_server(conn_id) -> a context manager yielding a connected MailServer (connects lazily or at once).
OpenServer = Callable[[str], AbstractContextManager[MailServer]]
# render(notification) -> the message to send.
Render = Callable[[Any], Message]


@dataclass
class DeliveryReport:
    sent: int = 0
    pending: int = 0  # tried or skipped in this pass, still pending
    failed: int = 0  # became failed (permanent) in this pass
    errors: list[dict[str, Any]] = field(default_factory=list)
    sent_ids: list[int] = field(default_factory=list)

    def error(self, reason: str, *, server: str | None, outbox_id: int | None = None) -> None:
        self.errors.append({"server": server, "reason": reason, "outbox_id": outbox_id})


def _pages(
    outbox: Outbox, worker: str, lease_seconds: int, ids: Sequence[int] | None
) -> Iterator[Sequence[Any]]:
    after_id = 0
    while True:
        page = outbox.claim(worker, limit=PAGE_SIZE, lease_seconds=lease_seconds, after_id=after_id, ids=ids)
        if not page:
            return
        after_id = max(item.id for item in page)
        yield page


def deliver(
    outbox: Outbox,
    open_server: OpenServer,
    render: Render,
    *,
    worker: str,
    max_attempts: int,
    lease_seconds: int,
    pass_id: int | None = None,
    only_ids: Sequence[int] | None = None,
) -> DeliveryReport:
    """Send every due notification (or only ``only_ids``) once; see the module docstring."""
    report = DeliveryReport()
    dead_servers: dict[str, str] = {}
    for page in _pages(outbox, worker, lease_seconds, only_ids):
        groups: dict[str, list[Any]] = {}
        for item in page:
            groups.setdefault(item.smtp_conn_id, []).append(item)
        for conn_id, items in groups.items():
            if conn_id in dead_servers:
                outbox.release([i.id for i in items], reason=dead_servers[conn_id])
                report.pending += len(items)
                continue
            _deliver_group(
                outbox,
                open_server,
                render,
                conn_id,
                items,
                report,
                dead_servers,
                worker=worker,
                max_attempts=max_attempts,
                pass_id=pass_id,
            )
    return report


def _deliver_group(
    outbox: Outbox,
    open_server: OpenServer,
    render: Render,
    conn_id: str,
    items: list[Any],
    report: DeliveryReport,
    dead_servers: dict[str, str],
    *,
    worker: str,
    max_attempts: int,
    pass_id: int | None,
) -> None:
    remaining = list(items)
    in_flight: Any = None
    try:
        with open_server(conn_id) as server:
            while remaining:
                item = remaining.pop(0)
                try:
                    message = render(item)
                except Exception as err:  # a rendering bug must not hold back the others
                    log.exception("failnotify: notification %s could not be rendered", item.id)
                    reason = f"could not build the email: {type(err).__name__}: {err}"
                    _failed_once(
                        outbox,
                        item,
                        reason,
                        permanent=True,
                        max_attempts=max_attempts,
                        report=report,
                        conn_id=conn_id,
                        pass_id=pass_id,
                    )
                    continue
                in_flight = item
                try:
                    refused = server.send_message(message)
                except MailDeliveryError as err:
                    if err.server_level:
                        raise
                    in_flight = None
                    _failed_once(
                        outbox,
                        item,
                        str(err),
                        permanent=not err.temporary,
                        max_attempts=max_attempts,
                        report=report,
                        conn_id=conn_id,
                        pass_id=pass_id,
                    )
                    continue
                in_flight = None
                note = None
                if refused:
                    note = "refused recipients: " + ", ".join(
                        f"{addr} ({code})" for addr, (code, _reply) in refused.items()
                    )
                    outbox.log_error(
                        "send",
                        f"sent, but the server {note}",
                        server=conn_id,
                        integration=item.integration,
                        outbox_id=item.id,
                        pass_id=pass_id,
                    )
                    report.error(note, server=conn_id, outbox_id=item.id)
                if outbox.mark_sent(item.id, worker, note=note):
                    report.sent += 1
                    report.sent_ids.append(item.id)
    except MailDeliveryError as err:
        # The server as a whole is unusable: one error row for it in this pass. The attempt is
        # charged to the notification on the wire (or, when connecting failed, to the first one
        # waiting); the others go back untried.
        reason = str(err)
        dead_servers[conn_id] = reason
        outbox.log_error(
            "send", reason, server=conn_id, pass_id=pass_id, integration=(in_flight or items[0]).integration
        )
        report.error(reason, server=conn_id)
        charged = in_flight if in_flight is not None else (remaining.pop(0) if remaining else None)
        if charged is not None:
            state = outbox.mark_attempt_failed(
                charged.id, reason, count_attempt=True, permanent=False, max_attempts=max_attempts
            )
            report.pending += state is OutboxState.PENDING
        outbox.release([i.id for i in remaining], reason=reason)
        report.pending += len(remaining)


def _failed_once(
    outbox: Outbox,
    item: Any,
    reason: str,
    *,
    permanent: bool,
    max_attempts: int,
    report: DeliveryReport,
    conn_id: str,
    pass_id: int | None,
) -> None:
    state = outbox.mark_attempt_failed(
        item.id, reason, count_attempt=True, permanent=permanent, max_attempts=max_attempts
    )
    outbox.log_error(
        "send", reason, server=conn_id, integration=item.integration, outbox_id=item.id, pass_id=pass_id
    )
    report.error(reason, server=conn_id, outbox_id=item.id)
    if state is OutboxState.FAILED:
        report.failed += 1
    else:
        report.pending += 1
