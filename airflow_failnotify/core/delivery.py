"""The outbox's delivery logic: one pass over the due notifications, oldest first.

Pure: it talks to the outbox, a channel's transport and the sent journal through the protocols
of :mod:`airflow_failnotify.core.outbox`, and asks the retry policy
(:mod:`airflow_failnotify.core.retry`) what a failure means.

- Notifications are claimed in pages under one claim token and a lease; the lease is renewed
  while the pass works, and a mail whose row is no longer held is never sent (fencing).
- Each page is grouped by connection, so each server gets one session per page. The
  connection and recipients are those configured now, not when the row was written.
- A server that fails at connection level is not tried again in this pass: one error row per
  server and waiting integration, the mail on the wire counts an attempt, the rest go back.
- A message-level refusal counts an attempt; the policy says whether it fails the mail.
- Once the server accepted a mail it is never sent again because the store was briefly
  unavailable: the "sent" fact goes to the journal and reaches the store as soon as it can,
  before this host claims anything again. A store error never aborts the rest of the page.
- Noise control holds a mail back without an attempt: the repeat interval (core/repeat.py) until its
  episode's next mail, the storm cap (core/storm.py) until its recipient set's window ends; the pass
  first sends the storm cap's digests of windows that ended.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from airflow_failnotify.core.model import OutboxState
from airflow_failnotify.core.outbox import (
    Clock,
    Mail,
    OpenTransport,
    Outbox,
    Peers,
    Refresh,
    Refused,
    Render,
    SentFact,
    SentJournal,
    mails_of,
)
from airflow_failnotify.core.repeat import repeat_hold
from airflow_failnotify.core.retry import RetryPolicy, SendFailure, SendStage, is_size_refusal
from airflow_failnotify.core.storm import StormCap, digest_mails, storm_hold
from airflow_failnotify.exceptions import MailDeliveryError, StoreNotReadyError, StoreUnavailableError

log = logging.getLogger(__name__)

PAGE_SIZE = 100
STORE_ERRORS = (StoreUnavailableError, StoreNotReadyError)


@dataclass
class DeliveryReport:
    sent: int = 0
    pending: int = 0  # tried or skipped in this pass, still pending
    failed: int = 0  # became failed (permanent) in this pass
    unconfirmed: int = 0  # sent, but the store took the "sent" fact only later (journal)
    held: int = 0  # held back by the repeat interval (sent with the next mail of their episode)
    storm_held: int = 0  # held by the storm cap (sent in its digest when the window ends)
    errors: list[dict[str, Any]] = field(default_factory=list)
    sent_ids: list[int] = field(default_factory=list)
    store_errors: list[str] = field(default_factory=list)

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


@dataclass
class _Page:
    """One claim: its token, its lease's end as this pass knows it, and the rows still held."""

    token: str
    until: datetime
    held: set[int]


@dataclass
class _Pass:
    """What one delivery pass shares: its collaborators and what it learnt so far."""

    outbox: Outbox
    open_transport: OpenTransport
    render: Render
    policy: RetryPolicy
    journal: SentJournal
    refresh: Refresh
    worker: str
    clock: Clock
    pass_id: int | None
    storm: StormCap = field(default_factory=StormCap)
    peers: Peers | None = None
    report: DeliveryReport = field(default_factory=DeliveryReport)
    paused_servers: dict[str, str] = field(default_factory=dict)
    blamed: set[tuple[str, str]] = field(default_factory=set)  # (server, integration) rows logged
    store_down: bool = False

    def store_failed(self, doing: str, err: Exception) -> None:
        self.store_down = True
        reason = f"the store failed while delivery {doing}: {err}"
        log.warning("failnotify: %s", reason)
        self.report.store_errors.append(reason)

    def log_error(self, reason: str, **where: Any) -> None:
        if self.store_down:
            return  # kept in report.store_errors' outage; the row is written by a later pass
        try:
            self.outbox.log_error("send", reason, pass_id=self.pass_id, now=self.clock(), **where)
        except STORE_ERRORS as err:
            self.store_failed("logged an error", err)


def deliver(
    outbox: Outbox,
    open_transport: OpenTransport,
    render: Render,
    *,
    policy: RetryPolicy,
    journal: SentJournal,
    worker: str,
    clock: Clock,
    refresh: Refresh = lambda rows: rows,
    pass_id: int | None = None,
    only_ids: Sequence[int] | None = None,
    storm: StormCap | None = None,
    peers: Peers | None = None,
) -> DeliveryReport:
    """Send every due notification (or only ``only_ids``) once; see the module docstring.

    ``storm`` is the storm cap (off by default); ``peers`` say which integration-directions share a
    recipient set (default: each mail's own).
    """
    run = _Pass(outbox, open_transport, render, policy, journal, refresh, worker, clock, pass_id)
    run.storm, run.peers = storm or StormCap(), peers
    if not _flush(run):
        return run.report  # facts of an earlier pass are not in the store yet: claim nothing
    if only_ids is None:
        _storm_digests(run)
        if run.store_down:
            return run.report
    for page, rows in _pages(run, only_ids):
        _deliver_page(run, page, mails_of(rows))
        if run.store_down:
            break
    return run.report


def _deliver_page(run: _Pass, page: _Page, mails: Sequence[Mail]) -> None:
    """The mails of one claim, one session per server, then the journal's facts to the store."""
    groups: dict[str, list[Mail]] = {}
    for mail in mails:
        groups.setdefault(mail.conn_id, []).append(mail)
    for conn_id, of_server in groups.items():
        if conn_id in run.paused_servers:
            _blame(run, conn_id, run.paused_servers[conn_id], of_server)
            _release(run, page, of_server, run.paused_servers[conn_id])
            continue
        _deliver_group(run, page, conn_id, of_server)
    _flush(run)


def _storm_digests(run: _Pass) -> None:
    """The storm cap's digests: every held row whose window ended (all of them once the cap is off),
    one mail per recipient set."""
    now = run.clock()
    try:
        rows = run.outbox.claim_storm_held(
            run.worker, lease_seconds=run.policy.lease_seconds, now=now, every=not run.storm.on
        )
    except STORE_ERRORS as err:
        run.store_failed("claimed the notifications the storm cap held", err)
        return
    if rows:
        page, rows = _page_of(run, rows, now)
        _deliver_page(run, page, digest_mails(rows))


def _flush(run: _Pass) -> bool:
    try:
        run.journal.flush(run.outbox)
    except STORE_ERRORS as err:
        run.store_failed("recorded sent mails", err)
        return False
    run.store_down = False
    return True


def _pages(run: _Pass, ids: Sequence[int] | None) -> Iterator[tuple[_Page, Sequence[Any]]]:
    after_id = 0
    while True:
        now = run.clock()
        try:
            rows = run.outbox.claim(
                run.worker,
                limit=PAGE_SIZE,
                lease_seconds=run.policy.lease_seconds,
                now=now,
                after_id=after_id,
                ids=ids,
            )
        except STORE_ERRORS as err:
            run.store_failed("claimed notifications", err)
            return
        if not rows:
            return
        after_id = max(row.id for row in rows)
        yield _page_of(run, rows, now)


def _page_of(run: _Pass, rows: Sequence[Any], now: datetime) -> tuple[_Page, Sequence[Any]]:
    """The claim of ``rows``, and the rows as configured now."""
    page = _Page(
        str(rows[0].claim_token), now + timedelta(seconds=run.policy.lease_seconds), {r.id for r in rows}
    )
    try:
        rows = run.refresh(rows)
    except STORE_ERRORS as err:  # sent as written; their "sent" facts are journaled
        run.store_failed("read the current configuration", err)
    return page, rows


def _holds(run: _Pass, page: _Page, mail: Mail) -> bool:
    """Whether this pass still holds the mail's rows, renewing the page's lease past its half."""
    now = run.clock()
    half = timedelta(seconds=run.policy.lease_seconds / 2)
    if now >= page.until - half and not run.store_down:
        try:
            page.held = run.outbox.renew(
                sorted(page.held), page.token, lease_seconds=run.policy.lease_seconds, now=now
            )
            page.until = now + timedelta(seconds=run.policy.lease_seconds)
        except STORE_ERRORS as err:
            run.store_failed("renewed its claim", err)
    if now >= page.until:
        return False  # the lease may have passed to another pass: sending could duplicate
    return all(i in page.held for i in mail.ids)


def _held_back(run: _Pass, page: _Page, mail: Mail) -> bool:
    """Noise control: hold the mail (untried, not an attempt) until it may go. The repeat interval
    holds it pending for its episode's next mail; the storm cap, for its recipient set's digest."""
    if run.store_down or mail.storm_digest:
        return False
    now = run.clock()
    try:
        until, state, reason = repeat_hold(run.outbox, mail, now), OutboxState.PENDING, None
        if until is None:
            storm = storm_hold(run.storm, run.outbox, run.peers, mail, now)
            if storm is None:
                return False
            (until, reason), state = storm, OutboxState.STORM_HELD
    except STORE_ERRORS as err:
        run.store_failed("read the mails already sent", err)
        return False
    ids = mail.ids
    page.held.difference_update(ids)
    if state is OutboxState.STORM_HELD:
        run.report.storm_held += len(ids)
    else:
        run.report.held += len(ids)
    try:
        run.outbox.release(ids, page.token, reason=reason, now=now, hold_until=until, state=state)
    except STORE_ERRORS as err:
        run.store_failed("held mails back", err)
    return True


def _release(run: _Pass, page: _Page, mails: Sequence[Mail], reason: str) -> None:
    """Give mails back untried; a storm digest's rows stay held for the next pass's digest."""
    ids = [i for mail in mails for i in mail.ids]
    page.held.difference_update(ids)
    run.report.pending += len(ids)
    if run.store_down:
        return  # they stay claimed until the lease ends, then the next pass takes them
    now = run.clock()
    digest_ids = [i for mail in mails if mail.storm_digest for i in mail.ids]
    try:
        if digest_ids:
            held = OutboxState.STORM_HELD
            run.outbox.release(digest_ids, page.token, reason=reason, now=now, hold_until=now, state=held)
        run.outbox.release([i for i in ids if i not in digest_ids], page.token, reason=reason, now=now)
    except STORE_ERRORS as err:
        run.store_failed("gave mails back", err)


def _deliver_group(run: _Pass, page: _Page, conn_id: str, mails: list[Mail]) -> None:
    remaining = list(mails)
    apart: set[int] = set()  # rows of a combined mail refused as too big: sent alone, never held back
    in_flight: Mail | None = None
    try:
        with run.open_transport(conn_id) as transport:
            while remaining:
                mail = remaining.pop(0)
                if mail.first.id not in apart and _held_back(run, page, mail):
                    continue
                if not _holds(run, page, mail):
                    log.warning(
                        "failnotify: notification %s is no longer held by this pass; not sent", mail.ids
                    )
                    continue
                try:
                    notification = run.render(mail)
                except Exception as err:  # a rendering bug must not hold back the others
                    log.exception("failnotify: notification %s could not be rendered", mail.ids)
                    reason = f"could not build the email: {type(err).__name__}: {err}"
                    _failed_once(run, page, mail, SendFailure(reason, False, False, SendStage.RENDER))
                    continue
                in_flight = mail
                try:
                    refused = transport.send(notification)
                except MailDeliveryError as err:
                    if run.policy.treatment(failure_of(err)).server_level:
                        raise
                    in_flight = None
                    if len(mail.rows) > 1 and is_size_refusal(failure_of(err)):
                        # A combined mail too big for the server: its notifications go one by one.
                        log.warning("failnotify: combined mail %s refused as too big; sent apart", mail.ids)
                        remaining[:0] = [Mail((row,), mail.claim_token) for row in mail.rows]
                        apart.update(mail.ids)
                        continue
                    _failed_once(run, page, mail, failure_of(err))
                    continue
                in_flight = None
                _sent(run, page, mail, refused, str(getattr(notification, "message_id", "")) or None)
    except MailDeliveryError as err:
        _server_failed(run, page, conn_id, remaining, in_flight, failure_of(err))


def _sent(run: _Pass, page: _Page, mail: Mail, refused: Refused, message_id: str | None) -> None:
    note = None
    if refused:
        note = "refused recipients: " + ", ".join(
            f"{addr} ({code} {reply.decode(errors='replace').strip()})"
            for addr, (code, reply) in refused.items()
        )
        run.log_error(
            f"sent, but the server {note}",
            server=mail.conn_id,
            integration=mail.integration,
            outbox_id=mail.first.id,
        )
        run.report.error(note, server=mail.conn_id, outbox_id=mail.first.id)
    page.held.difference_update(mail.ids)
    run.report.sent += len(mail.rows)
    run.report.sent_ids.extend(mail.ids)
    now = run.clock()
    for outbox_id in mail.ids:
        fact = SentFact(outbox_id, page.token, now, note, message_id)
        if run.store_down:
            run.journal.keep(fact)
            run.report.unconfirmed += 1
            continue
        try:
            if not run.outbox.mark_sent(outbox_id, page.token, now=now, note=note, message_id=message_id):
                log.warning(
                    "failnotify: notification %s was sent, but another pass had claimed it", outbox_id
                )
        except STORE_ERRORS as err:
            run.store_failed("marked a mail sent", err)
            run.journal.keep(fact)
            run.report.unconfirmed += 1


def _blame(run: _Pass, conn_id: str, reason: str, mails: Sequence[Mail]) -> None:
    """One error row per (server, waiting integration) per pass, with the count of its mails."""
    waiting: dict[str, int] = {}
    for mail in mails:
        waiting[mail.integration] = waiting.get(mail.integration, 0) + len(mail.rows)
    for integration, count in sorted(waiting.items()):
        if (conn_id, integration) in run.blamed:
            continue
        run.blamed.add((conn_id, integration))
        run.log_error(
            f"{reason} ({count} notification(s) of {integration} waiting)",
            server=conn_id,
            integration=integration,
        )


def _server_failed(
    run: _Pass,
    page: _Page,
    conn_id: str,
    remaining: list[Mail],
    in_flight: Mail | None,
    failure: SendFailure,
) -> None:
    """The server as a whole is unusable: the attempt is charged to the mail on the wire (or, when
    connecting failed, to the first one waiting); the others go back untried."""
    run.paused_servers[conn_id] = failure.reason
    charged = in_flight if in_flight is not None else (remaining.pop(0) if remaining else None)
    _blame(run, conn_id, failure.reason, ([charged] if charged else []) + remaining)
    run.report.error(failure.reason, server=conn_id)
    if charged is not None:
        states = [_record_failure(run, page, row, failure, charged.storm_digest) for row in charged.rows]
        run.report.pending += sum(state is not OutboxState.FAILED for state in states)
    _release(run, page, remaining, failure.reason)


def _record_failure(
    run: _Pass, page: _Page, row: Any, failure: SendFailure, digest: bool = False
) -> OutboxState:
    verdict = run.policy.after_failure(row.attempts, failure)
    page.held.discard(row.id)
    if run.store_down:
        return OutboxState.PENDING  # still claimed; tried again once its lease ends
    state = verdict.state
    if digest and state is OutboxState.PENDING:
        state = OutboxState.STORM_HELD  # retried in the next pass's digest (its hold has ended)
    try:
        recorded = run.outbox.mark_attempt_failed(
            row.id,
            failure.reason,
            claim_token=page.token,
            attempts=verdict.attempts,
            state=state,
            now=run.clock(),
        )
    except STORE_ERRORS as err:
        run.store_failed("recorded a failed attempt", err)
        return OutboxState.PENDING
    return recorded or OutboxState.PENDING


def _failed_once(run: _Pass, page: _Page, mail: Mail, failure: SendFailure) -> None:
    for row in mail.rows:
        state = _record_failure(run, page, row, failure, mail.storm_digest)
        run.log_error(failure.reason, server=mail.conn_id, integration=row.integration, outbox_id=row.id)
        run.report.error(failure.reason, server=mail.conn_id, outbox_id=row.id)
        if state is OutboxState.FAILED:
            run.report.failed += 1
        else:
            run.report.pending += 1
