"""Faults during a notification pass, each ending with: every due notification delivered exactly once
(counted by Message-ID at the DevSmtpServer), none lost, and every failure visible in the error log.

Mail side: token endpoint down / slow / answering garbage (XOAUTH2 connection), SMTP dropping the
connection mid-DATA, SMTP never greeting. Store side: PostgreSQL stopped, a PostgreSQL host that
never answers, a table locked by another session, SQLite locked by another connection (BEGIN
EXCLUSIVE) for longer than store_timeout: the pass raises StoreUnavailableError within the bound,
``failnotify run`` exits 2 with the reason, and the next pass after recovery delivers.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airflow_failnotify.exceptions import StoreUnavailableError
from airflow_failnotify.service.passes import run_notification_pass
from airflow_failnotify.store import Store
from airflow_failnotify.store.engine import create_store_engine
from devtools.smtp_server import DevSmtpServer
from devtools.token_server import TokenServer
from tests.fixtures.soak import Summary
from tests.reliability.helpers import (
    delivery,
    error_rows,
    failnotify_cli,
    no_status,
    register,
    run_failures,
)

CONN_TIMEOUT = 1.0  # seconds: the connection's timeout (token request, SMTP connect and send)
STORE_TIMEOUT = 1.0  # seconds: [failnotify] store_timeout of the store under test
MESSAGES = 3


def one_pass(store: Store) -> tuple[object, float]:
    started = time.monotonic()
    summary = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    return summary, time.monotonic() - started


# ------------------------------------------------------------------------------------------------
# Token endpoint faults (OAuth 2.0 + XOAUTH2)
# ------------------------------------------------------------------------------------------------

TOKEN_FAULTS = {
    # name: (how to break it, what the error row says)
    "down": (lambda ts: ts.stop(), "unreachable"),
    "slow": (lambda ts: setattr(ts, "fault", "slow"), "did not answer within"),
    "server_error": (lambda ts: setattr(ts, "fault", "server_error"), "answered 500"),
    "not_json": (lambda ts: setattr(ts, "fault", "not_json"), "not a JSON object"),
    "missing_token": (lambda ts: setattr(ts, "fault", "missing_token"), "has no 'access_token'"),
    "invalid_client": (lambda ts: setattr(ts, "fault", "invalid_client"), "answered 401"),
}


def _fix(token_server: TokenServer) -> None:
    token_server.fault = None
    if token_server._httpd is None:
        token_server.start()  # same port


@pytest.mark.parametrize("fault", list(TOKEN_FAULTS))
def test_token_endpoint_fault_for_a_pass_then_fixed(
    fault: str,
    sqlite_store: Store,
    smtp_server: DevSmtpServer,
    token_server: TokenServer,
    smtp_connection: Callable[..., str],
    summary: Summary,
) -> None:
    conn_id = smtp_connection(
        "mail_oauth", server=smtp_server, auth_type="oauth2", token_server=token_server, timeout=CONN_TIMEOUT
    )
    register(sqlite_store, conn_id)
    sqlite_store.record_events(run_failures(MESSAGES))
    token_server.delay = CONN_TIMEOUT + 2  # "slow": beyond the connection timeout
    breaker, reason = TOKEN_FAULTS[fault]
    breaker(token_server)

    broken, seconds = one_pass(sqlite_store)
    assert (broken.sent, broken.pending) == (0, MESSAGES)  # type: ignore[attr-defined]
    assert seconds < CONN_TIMEOUT + 5, f"a pass with a {fault} token endpoint took {seconds:.1f} s"
    rows = error_rows(sqlite_store, "send")
    assert len(rows) == 1, "one error row per server per pass"
    assert reason in rows[0].reason and conn_id == rows[0].server
    assert not smtp_server.messages

    _fix(token_server)
    fixed, _ = one_pass(sqlite_store)
    counts = delivery(sqlite_store, smtp_server)
    summary.record(
        f"token endpoint {fault} for a pass, then fixed (XOAUTH2)",
        f"pass bounded; 1 error row '{reason}'; then {MESSAGES} delivered once",
        f"pass {seconds:.1f}s; {len(rows)} error row; {counts}",
        ok=counts.exactly_once and counts.due == MESSAGES,
    )
    assert fixed.sent == MESSAGES  # type: ignore[attr-defined]
    assert counts.exactly_once and counts.due == MESSAGES, counts
    assert all(m.auth_mechanism == "XOAUTH2" for m in smtp_server.messages)
    assert len(error_rows(sqlite_store, "send")) == 1  # the good pass logged nothing


# ------------------------------------------------------------------------------------------------
# SMTP faults
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["drop_in_data", "never_greet"])
def test_smtp_fault_for_a_pass_then_recovers(
    fault: str,
    store: Store,
    smtp_server: DevSmtpServer,
    smtp_connection: Callable[..., str],
    summary: Summary,
) -> None:
    conn_id = smtp_connection("mail_basic", server=smtp_server, auth_type="basic", timeout=CONN_TIMEOUT)
    register(store, conn_id)
    store.record_events(run_failures(MESSAGES))
    setattr(smtp_server, fault, True)
    broken, seconds = one_pass(store)
    assert broken.sent == 0 and broken.pending == MESSAGES  # type: ignore[attr-defined]
    assert seconds < CONN_TIMEOUT + 5
    assert not smtp_server.messages, "the server must not have kept a half-received message"
    rows = error_rows(store, "send")
    assert len(rows) == 1 and rows[0].server == conn_id
    expected_reason = "closed the connection" if fault == "drop_in_data" else "no answer from"
    assert expected_reason in rows[0].reason, rows[0].reason

    setattr(smtp_server, fault, False)
    fixed, _ = one_pass(store)
    counts = delivery(store, smtp_server)
    backend = "postgres" if store.is_postgres else "sqlite"
    what = "accepts then drops mid-DATA" if fault == "drop_in_data" else "never greets (timeout)"
    summary.record(
        f"SMTP {what} for a pass, then recovers [{backend}]",
        f"1 error row '{expected_reason}'; then {MESSAGES} delivered once",
        f"pass {seconds:.1f}s; {len(rows)} error row; {counts}",
        ok=counts.exactly_once,
    )
    assert fixed.sent == MESSAGES  # type: ignore[attr-defined]
    assert counts.exactly_once and counts.due == MESSAGES, counts


# ------------------------------------------------------------------------------------------------
# Store unavailable
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def basic_conn(smtp_server: DevSmtpServer, smtp_connection: Callable[..., str]) -> str:
    return smtp_connection("mail_basic", server=smtp_server, auth_type="basic")


def cli_env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN": url,
        "AIRFLOW__FAILNOTIFY__STORE_TIMEOUT": str(STORE_TIMEOUT),
    }


def assert_pass_fails_loudly(store: Store, url: str, expected: str) -> tuple[float, str]:
    """The pass raises StoreUnavailableError within the bound; `failnotify run` exits 2 with the reason."""
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as raised:
        run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    seconds = time.monotonic() - started
    assert seconds < STORE_TIMEOUT * 6 + 3, f"the pass took {seconds:.1f} s to give up"
    message = str(raised.value)
    assert "cannot reach the failnotify store" in message and expected in message, message
    cli = failnotify_cli("run", env=cli_env(url))
    assert cli.returncode == 2, (cli.returncode, cli.stdout, cli.stderr)
    assert "cannot reach the failnotify store" in cli.stderr and expected in cli.stderr, cli.stderr
    assert "Traceback" not in cli.stderr
    return seconds, message


def test_postgres_stopped_for_a_pass(
    postgres_server,  # type: ignore[no-untyped-def]
    postgres_url: str,
    smtp_server: DevSmtpServer,
    basic_conn: str,
    summary: Summary,
) -> None:
    store = Store(create_store_engine(postgres_url, timeout=STORE_TIMEOUT))
    store.migrate()
    register(store, basic_conn)
    store.record_events(run_failures(MESSAGES))
    with postgres_server.stopped():
        seconds, message = assert_pass_fails_loudly(store, postgres_url, "Connection refused")
        assert postgres_server.password not in message
    recovered = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    counts = delivery(store, smtp_server)
    summary.record(
        "store unavailable: PostgreSQL stopped for a pass",
        "StoreUnavailableError fast; `failnotify run` exit 2; next pass delivers once",
        f"raised after {seconds:.1f}s; exit 2; then {counts}",
        ok=counts.exactly_once,
    )
    assert recovered.sent == MESSAGES and counts.exactly_once, counts
    store.engine.dispose()


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """A TCP port that accepts connections (kernel backlog) and never says a word."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def test_postgres_host_not_answering_is_bounded_by_store_timeout(summary: Summary) -> None:
    with black_hole() as port:
        url = f"postgresql+psycopg2://failnotify:never-shown@127.0.0.1:{port}/failnotify"
        store = Store(create_store_engine(url, timeout=2))
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as raised:
            run_notification_pass(trigger="cli", store=store, dag_status=no_status)
        seconds = time.monotonic() - started
    summary.record(
        "store unavailable: PostgreSQL host accepts TCP, never answers",
        "StoreUnavailableError within store_timeout (2 s) + margin",
        f"raised after {seconds:.1f}s",
        ok=seconds < 5,
    )
    assert seconds < 5
    assert "never-shown" not in str(raised.value)


def test_postgres_table_locked_by_another_session_beyond_store_timeout(
    postgres_url: str, smtp_server: DevSmtpServer, basic_conn: str, summary: Summary
) -> None:
    store = Store(create_store_engine(postgres_url, timeout=STORE_TIMEOUT))
    store.migrate()
    register(store, basic_conn)
    store.record_events(run_failures(MESSAGES))
    blocker = Store(create_store_engine(postgres_url, timeout=30)).engine.raw_connection()
    try:
        cursor = blocker.cursor()
        cursor.execute("BEGIN")
        cursor.execute("LOCK TABLE failnotify_evaluation_lock, failnotify_outbox IN ACCESS EXCLUSIVE MODE")
        seconds, _ = assert_pass_fails_loudly(store, postgres_url, "lock timeout")
    finally:
        blocker.rollback()
        blocker.close()
    recovered = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    counts = delivery(store, smtp_server)
    summary.record(
        "store unavailable: PostgreSQL tables locked by another session > store_timeout",
        "StoreUnavailableError within the bound; exit 2; next pass delivers once",
        f"raised after {seconds:.1f}s; exit 2; then {counts}",
        ok=counts.exactly_once,
    )
    assert recovered.sent == MESSAGES and counts.exactly_once, counts
    store.engine.dispose()


def sqlite_lock(path: Path) -> sqlite3.Connection:
    """Another connection holding the SQLite file with BEGIN EXCLUSIVE until it rolls back."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


def test_sqlite_locked_longer_than_store_timeout(
    tmp_path: Path, smtp_server: DevSmtpServer, basic_conn: str, summary: Summary
) -> None:
    path = tmp_path / "failnotify.db"
    url = f"sqlite:///{path}"
    store = Store(create_store_engine(url, timeout=STORE_TIMEOUT))
    store.migrate()
    register(store, basic_conn)
    store.record_events(run_failures(MESSAGES))
    holder = sqlite_lock(path)
    try:
        seconds, _ = assert_pass_fails_loudly(store, url, "database is locked")
    finally:
        holder.rollback()
        holder.close()
    recovered = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    counts = delivery(store, smtp_server)
    summary.record(
        "store unavailable: SQLite held by BEGIN EXCLUSIVE > store_timeout",
        "StoreUnavailableError within the bound; exit 2; next pass delivers once",
        f"raised after {seconds:.1f}s; exit 2; then {counts}",
        ok=counts.exactly_once,
    )
    assert recovered.sent == MESSAGES and counts.exactly_once, counts
    store.engine.dispose()


PAGE = 30


def test_store_lost_mid_pass_after_the_server_accepted_a_message(
    tmp_path: Path, smtp_server: DevSmtpServer, basic_conn: str, summary: Summary
) -> None:
    """The worst moment: the server has the message, the "sent" mark cannot be written. The pass goes
    on (the fact waits in the sent journal) and sends the rest of the page; the next pass on this host
    tells the store before it claims anything. Every mail once, none twice, none waiting for a lease."""
    path = tmp_path / "failnotify.db"
    store = Store(create_store_engine(f"sqlite:///{path}", timeout=STORE_TIMEOUT))
    store.migrate()
    register(store, basic_conn)
    store.record_events(run_failures(PAGE))
    holders: list[sqlite3.Connection] = []
    released = threading.Event()

    def release() -> None:
        holders[0].rollback()
        released.set()

    def lock_the_store_once(_message: object) -> None:
        if not holders:
            holders.append(sqlite_lock(path))
            timer = threading.Timer(STORE_TIMEOUT * 3, release)
            timer.daemon = True
            timer.start()

    smtp_server.on_message = lock_the_store_once
    started = time.monotonic()
    first = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    elapsed = time.monotonic() - started
    smtp_server.on_message = None
    in_first_pass = len(smtp_server.messages)
    assert released.wait(STORE_TIMEOUT * 6)
    holders[0].close()
    run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    counts = delivery(store, smtp_server)
    summary.record(
        f"store locked mid-page of {PAGE}, after SMTP accepted a message [sqlite]",
        f"pass goes on: all {PAGE} sent in it; marks reach the store next pass; 0 dup, 0 lost",
        f"first pass {elapsed:.1f}s, {in_first_pass} received ({first.unconfirmed} journaled); then {counts}",
        ok=counts.exactly_once and in_first_pass == PAGE,
    )
    assert in_first_pass == PAGE and first.unconfirmed >= 1, (in_first_pass, first)
    assert counts.exactly_once and counts.sent == PAGE, counts
    store.engine.dispose()


def test_a_pass_that_failed_on_the_store_is_visible_in_the_error_log_after_recovery(
    tmp_path: Path, smtp_server: DevSmtpServer, basic_conn: str, summary: Summary
) -> None:
    path = tmp_path / "failnotify.db"
    store = Store(create_store_engine(f"sqlite:///{path}", timeout=STORE_TIMEOUT))
    store.migrate()
    register(store, basic_conn)
    store.record_events(run_failures(1))
    holder = sqlite_lock(path)
    try:
        with pytest.raises(StoreUnavailableError):
            run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    finally:
        holder.rollback()
        holder.close()
    run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    rows = error_rows(store, "store")
    summary.record(
        "a pass that failed on the store, seen in Error Management after recovery",
        ">= 1 error row (category store)",
        f"{len(rows)} error rows (category store)",
    )
    assert rows, "the failed pass should be visible in Error Management"


def test_postgres_lost_mid_pass_after_the_server_accepted_a_message(
    postgres_server,  # type: ignore[no-untyped-def]
    postgres_url: str,
    smtp_server: DevSmtpServer,
    basic_conn: str,
    summary: Summary,
) -> None:
    """The same on PostgreSQL: the server is stopped while the SMTP server is accepting the first message."""
    store = Store(create_store_engine(postgres_url, timeout=STORE_TIMEOUT))
    store.migrate()
    register(store, basic_conn)
    store.record_events(run_failures(PAGE))
    stopped: list[bool] = []

    def stop_the_store_once(_message: object) -> None:
        if not stopped:
            stopped.append(True)
            postgres_server.stop()

    smtp_server.on_message = stop_the_store_once
    try:
        first = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    finally:
        smtp_server.on_message = None
        if not postgres_server.is_running():
            postgres_server.start()
    in_first_pass = len(smtp_server.messages)
    run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    counts = delivery(store, smtp_server)
    summary.record(
        f"store stopped mid-page of {PAGE}, after SMTP accepted a message [postgres]",
        f"pass goes on: all {PAGE} sent in it; marks reach the store next pass; 0 dup, 0 lost",
        f"{in_first_pass} received in the first pass ({first.unconfirmed} marks journaled); then {counts}",
        ok=counts.exactly_once and in_first_pass == PAGE,
    )
    assert in_first_pass == PAGE and first.unconfirmed >= 1, (in_first_pass, first)
    assert counts.exactly_once and counts.sent == PAGE, counts
    store.engine.dispose()
