"""Delivery faults with real parts (the dev SMTP server, SQLite and PostgreSQL): fencing, size refusals,
server outages that name who waits, a queued mail that follows its integration to a new server, and
outage reports that survive a failing report. Each case is a row of the reliability summary."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_failnotify.channels.email import open_email_transport
from airflow_failnotify.core.model import OutboxState
from airflow_failnotify.listeners import spool
from airflow_failnotify.service.passes import run_notification_pass
from airflow_failnotify.service.store_errors import (
    outages_file,
    remember_store_error,
    report_remembered_store_errors,
)
from airflow_failnotify.store import Store
from devtools.smtp_server import DevSmtpServer
from tests.fixtures.mail import SMTP_PASSWORD, SMTP_USER
from tests.fixtures.soak import Summary
from tests.reliability.helpers import (
    delivery,
    error_rows,
    no_status,
    register,
    run_failed,
    run_failures,
    task_failed,
)


class FakeClock:
    """One clock for several passes, moved by the test (the lease is compared with it)."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_a_page_on_a_slow_server_keeps_its_lease_past_the_lease_time(
    store: Store, smtp_server: DevSmtpServer, smtp_connection: Callable[..., str], summary: Summary
) -> None:
    """30 mails at 3 s each (90 s > the 60 s lease): the pass renews its claim, so a second pass that
    tries after every mail finds nothing to take. 0 duplicates."""
    conn = smtp_connection("mail_slow", server=smtp_server, auth_type="basic")
    register(store, conn)
    store.record_events(run_failures(30))
    clock = FakeClock()
    rival_sent: list[int] = []

    @contextmanager
    def slow_transport(conn_id: str) -> Iterator[Any]:
        with open_email_transport(conn_id) as transport:

            class Slow:
                def send(self, notification: Any) -> Any:
                    clock.advance(3)
                    refused = transport.send(notification)
                    rival = run_notification_pass(trigger="x", store=store, dag_status=no_status, clock=clock)
                    rival_sent.append(rival.sent)
                    return refused

            yield Slow()

    first = run_notification_pass(
        trigger="cli", store=store, dag_status=no_status, clock=clock, open_transport=slow_transport
    )
    counts = delivery(store, smtp_server)
    summary.record(
        f"a page on a slow server outlives the lease time (30 x 3 s > 60 s) [{store.engine.dialect.name}]",
        "the claim is renewed: a rival pass after every mail takes nothing; 30 delivered once",
        f"slow pass sent {first.sent}, rival passes sent {sum(rival_sent)}; {counts}",
        ok=counts.exactly_once and first.sent == 30 and sum(rival_sent) == 0,
    )
    assert first.sent == 30 and sum(rival_sent) == 0 and counts.exactly_once, (first, rival_sent, counts)


class FreezingStore(Store):
    """A store whose first "sent" mark is followed by a freeze of the pass (GC pause, SIGSTOP...)."""

    freeze: Callable[[], None] | None = None

    def mark_sent(self, outbox_id: int, claim_token: str, **kwargs: Any) -> bool:
        marked = super().mark_sent(outbox_id, claim_token, **kwargs)
        if self.freeze is not None:
            freeze, self.freeze = self.freeze, None
            freeze()
        return marked


def test_a_pass_frozen_past_its_lease_sends_nothing_it_no_longer_holds(
    store: Store, smtp_server: DevSmtpServer, smtp_connection: Callable[..., str], summary: Summary
) -> None:
    """The pass freezes for 61 s after its first mail; another pass takes the rest and sends it. When the
    first wakes up its lease is over, so it sends nothing more: 0 duplicates."""
    conn = smtp_connection("mail_frozen", server=smtp_server, auth_type="basic")
    register(store, conn)
    store.record_events(run_failures(10))
    clock = FakeClock()
    frozen = FreezingStore(store.engine)
    rival: list[Any] = []

    def freeze() -> None:
        clock.advance(61)  # past the 60 s lease
        rival.append(run_notification_pass(trigger="cli", store=store, dag_status=no_status, clock=clock))

    frozen.freeze = freeze
    first = run_notification_pass(trigger="cli", store=frozen, dag_status=no_status, clock=clock)
    counts = delivery(store, smtp_server)
    summary.record(
        f"a pass frozen past its lease after its first mail [{store.engine.dialect.name}]",
        "the rival sends the other 9; the frozen pass sends nothing more: 0 dup, 0 lost",
        f"frozen pass sent {first.sent}, rival sent {rival[0].sent}; {counts}",
        ok=counts.exactly_once and (first.sent, rival[0].sent) == (1, 9),
    )
    assert (first.sent, rival[0].sent) == (1, 9) and counts.exactly_once, (first, rival, counts)


def test_a_stale_claim_cannot_mark_or_release_what_another_pass_holds(store: Store) -> None:
    register(store, "mail_any")
    store.record_events(run_failures(1))
    run_notification_pass(trigger="cli", store=store, dag_status=no_status, open_transport=_down)
    start = datetime.now(timezone.utc)
    old = store.claim("pass-a", limit=10, lease_seconds=60, now=start)
    new = store.claim("pass-b", limit=10, lease_seconds=60, now=start + timedelta(seconds=61))
    assert [r.id for r in old] == [r.id for r in new] and old[0].claim_token != new[0].claim_token
    assert store.renew([old[0].id], str(old[0].claim_token), lease_seconds=60) == set()
    assert not store.mark_sent(old[0].id, str(old[0].claim_token))
    store.release([old[0].id], str(old[0].claim_token))
    item = store.get_outbox_item(old[0].id)
    assert item is not None and item.state is OutboxState.SENDING and item.claim_token == new[0].claim_token


@contextmanager
def _down(conn_id: str) -> Iterator[Any]:
    from airflow_failnotify.exceptions import MailDeliveryError

    raise MailDeliveryError("server down (test)", temporary=True)
    yield  # pragma: no cover


def test_a_mail_over_the_size_limit_fails_alone_with_a_size_hint(
    sqlite_store: Store,
    smtp_connection: Callable[..., str],
    summary: Summary,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server with a 40 KB limit refuses the entity mail (its error-trace PDF) at MAIL FROM with 552.
    The job mail on the same connection goes out in the same pass; the big one ends failed after
    max_attempts, with a hint that says how to shrink it, and the server's reply kept."""
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__MAX_ATTEMPTS", "2")
    store = sqlite_store
    with DevSmtpServer(users={SMTP_USER: SMTP_PASSWORD}, size_limit=40 * 1024) as server:
        conn = smtp_connection("mail_small", server=server, auth_type="basic")
        register(store, conn)
        trace = "\n".join(secrets.token_hex(60) for _ in range(2000))  # incompressible, ~240 KB
        store.record_events([task_failed("r1", traceback=trace), run_failed("r1")])
        first = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
        after_first = len(server.messages)
        second = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
        outbox, _ = store.list_outbox(limit=10)
    states = sorted(item.state.value for item in outbox)
    reasons = [row.reason for row in error_rows(store, "send")]
    hinted = [r for r in reasons if "exceeds the server's size limit" in r and "552" in r]
    summary.record(
        "a mail over the server's size limit (552 at MAIL FROM) beside a small one, same connection",
        "small one delivered in the same pass; big one failed after max_attempts (2) with a size hint",
        f"pass 1 sent {first.sent} ({after_first} received); pass 2 failed {second.failed}; states {states}; "
        f"{len(hinted)} hinted error rows",
        ok=after_first == 1 and states == ["failed", "sent"] and len(hinted) == 2,
    )
    assert after_first == 1 and first.sent == 1, first
    assert states == ["failed", "sent"], states
    assert len(hinted) == 2 and "KB" in hinted[0] and "Include error trace" in hinted[0], reasons


def test_an_smtp_outage_names_every_waiting_integration(
    store: Store, smtp_connection: Callable[..., str], summary: Summary
) -> None:
    """The server is down: one error row per waiting integration (with its count), not one that blames
    the oldest mail's integration for everybody."""
    conn = smtp_connection("mail_down", host="127.0.0.1", port=_closed_port(), auth_type="none")
    register(store, conn, integration="sync_a")
    register(store, conn, integration="sync_b")
    store.record_events(run_failures(3, dag_id="sync_a") + run_failures(2, dag_id="sync_b", prefix="b"))
    run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    rows = {row.integration: row.reason for row in error_rows(store, "send")}
    summary.record(
        f"SMTP server down, two integrations waiting [{store.engine.dialect.name}]",
        "one error row per waiting integration, with its count",
        "; ".join(f"{k}: ...{v[-40:]}" for k, v in sorted(rows.items())),
        ok=set(rows) == {"sync_a", "sync_b"},
    )
    assert set(rows) == {"sync_a", "sync_b"}, rows
    assert "3 notification(s) of sync_a waiting" in rows["sync_a"]
    assert "2 notification(s) of sync_b waiting" in rows["sync_b"]


def test_a_queued_mail_goes_through_the_server_configured_now(
    store: Store, smtp_server: DevSmtpServer, smtp_connection: Callable[..., str], summary: Summary
) -> None:
    broken = smtp_connection("mail_broken", host="127.0.0.1", port=_closed_port(), auth_type="none")
    working = smtp_connection("mail_working", server=smtp_server, auth_type="basic")
    register(store, broken)
    store.record_events(run_failures(1))
    stuck = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    register(store, working, recipients="new-team@example.com")
    fixed = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    received = [m.rcpt_tos for m in smtp_server.messages]
    summary.record(
        f"integration switched to a working server while its mail waits [{store.engine.dialect.name}]",
        "Send now / the next pass uses the new server and recipients",
        f"before: sent {stuck.sent}; after: sent {fixed.sent}, to {received}",
        ok=fixed.sent == 1 and received == [["new-team@example.com"]],
    )
    assert stuck.sent == 0 and fixed.sent == 1
    assert received == [["new-team@example.com"]]


def test_an_outage_report_is_never_read_by_the_spool_and_survives_a_failed_report(
    sqlite_store: Store, tmp_path: Any, summary: Summary, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SPOOL_DIR", str(tmp_path / "spool"))
    remember_store_error("store away (test)")
    # The capture spool's replay of that folder must leave the outage alone.
    spool.replay(sqlite_store.record_events, sqlite_store.record_activity)
    kept_after_replay = outages_file().read_text().count("store away")

    class Broken:
        def log_errors(self, *args: Any) -> None:
            from airflow_failnotify.exceptions import StoreUnavailableError

            raise StoreUnavailableError("still away (test)")

    assert report_remembered_store_errors(Broken()) == 0  # type: ignore[arg-type]
    kept_after_failure = outages_file().read_text().count("store away")
    reported = report_remembered_store_errors(sqlite_store)
    rows = [row.reason for row in error_rows(sqlite_store, "store")]
    again = report_remembered_store_errors(sqlite_store)
    summary.record(
        "a store outage report while the store fails again, then recovers",
        "kept until stored, shown once in Error Management, never replayed as an event",
        f"kept after replay {kept_after_replay}, after a failed report {kept_after_failure}; "
        f"reported {reported} then {again}; rows {len(rows)}",
        ok=(kept_after_replay, kept_after_failure, reported, again, len(rows)) == (1, 1, 1, 0, 1),
    )
    assert (kept_after_replay, kept_after_failure, reported, again) == (1, 1, 1, 0)
    assert rows == ["store away (test)"]


def _closed_port() -> int:
    from tests.fixtures.airflow_env import free_port

    return free_port()
