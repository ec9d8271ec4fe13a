"""Soak cases (marker ``soak``: ``make soak``, not in ``make test``).

Load: 20 integrations failing every minute for FAILNOTIFY_SOAK_MINUTES minutes (default 14: with the
15-minute case on a running Airflow in test_soak_airflow.py, `make soak` then fits in 30 minutes; at 15
it measured 30m45s), on SQLite (2 concurrent passers) and on PostgreSQL (3 concurrent passers), both at
once. Honest scope: this is driven WITHOUT Airflow's scheduler - writer processes record the
events through the store API (the listener's own entry point) at that rate, while passer processes run
real notification passes against a real SMTP server. Reported: events recorded, notifications due, sent,
duplicates (0) and lost (0), plus rule invariants (one job mail per failed run for immediate integrations,
one per 3 failures for threshold ones, every final entity failure in exactly one processing mail).

SMTP down for N passes (FAILNOTIFY_SOAK_DOWN_PASSES, default 30): the server cycles through being
stopped, never greeting, dropping mid-DATA, 454 on AUTH and 451 on DATA while failures keep arriving;
then it recovers and everything is delivered exactly once, oldest first, nothing marked failed.

FAILNOTIFY_SOAK_MINUTE_SECONDS (default 60) shortens a "minute" for a quick check of the harness.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_failnotify.core.model import NotificationKind, OutboxState
from airflow_failnotify.service.passes import run_notification_pass
from airflow_failnotify.store import Store
from airflow_failnotify.store.engine import create_store_engine
from devtools.smtp_server import DevSmtpServer
from tests.fixtures.mail import SMTP_PASSWORD, SMTP_USER
from tests.fixtures.soak import Summary
from tests.reliability.helpers import NOW, all_outbox, delivery, error_rows, no_status, register, run_failed

pytestmark = [pytest.mark.soak, pytest.mark.timeout(40 * 60)]

REPO = Path(__file__).resolve().parents[2]
MINUTES = max(1, int(float(os.environ.get("FAILNOTIFY_SOAK_MINUTES", "14"))))
MINUTE_SECONDS = float(os.environ.get("FAILNOTIFY_SOAK_MINUTE_SECONDS", "60"))
DOWN_PASSES = int(os.environ.get("FAILNOTIFY_SOAK_DOWN_PASSES", "30"))
INTEGRATIONS = 20
WRITERS = 4
PASS_INTERVAL = 5.0
THRESHOLD = 3


def integration_names() -> list[str]:
    return [f"load_{i:02d}" for i in range(INTEGRATIONS)]


def is_threshold(name: str) -> bool:
    return int(name.rsplit("_", 1)[1]) % 2 == 1


@dataclass
class LoadRun:
    """One backend's load: its store, SMTP server, writer and passer processes."""

    backend: str
    url: str
    passers: int
    workdir: Path
    smtp: DevSmtpServer
    conn_id: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def setup(self) -> Store:
        store = Store(create_store_engine(self.url, timeout=5))
        store.migrate()
        for name in integration_names():
            overrides: dict[str, Any] = {}
            if is_threshold(name):
                overrides["global"] = {"notify_immediately": False, "failure_count_threshold": THRESHOLD}
            register(store, self.conn_id, integration=name, **overrides)
        return store

    def start(self, env: dict[str, str], start_at: float) -> None:
        names = integration_names()
        for w in range(WRITERS):
            group = names[w::WRITERS]
            self._spawn(
                env,
                "writer",
                self.url,
                ",".join(group),
                str(MINUTES),
                str(MINUTE_SECONDS),
                str(start_at),
                str(self.workdir / f"writer{w}.json"),
            )
        for p in range(self.passers):
            self._spawn(
                env,
                "passer",
                self.url,
                str(self.workdir / "stop"),
                str(PASS_INTERVAL),
                str(self.workdir / f"passer{p}.json"),
            )

    def _spawn(self, env: dict[str, str], *args: str) -> None:
        log = (self.workdir / f"{args[0]}{len(self.processes)}.log").open("wb")
        self.processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.soak_workers", *args],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )

    def wait_writers(self, timeout: float) -> None:
        for proc in self.processes[:WRITERS]:
            proc.wait(timeout=timeout)

    def stop_passers(self) -> None:
        (self.workdir / "stop").touch()
        for proc in self.processes[WRITERS:]:
            proc.wait(timeout=120)

    def kill_all(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def stats(self, role: str) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.workdir.glob(f"{role}*.json"))]


def check_load(run: LoadRun, store: Store, summary: Summary) -> list[str]:
    """Drain, then count; returns the problems found (empty: all promises kept)."""
    for _ in range(3):
        run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    writers, passers = run.stats("writer"), run.stats("passer")
    counts = delivery(store, run.smtp)
    items = [i for i in all_outbox(store) if i.state is not OutboxState.CLOSED]
    kinds = Counter(i.kind for i in items)
    _, total_events = store.list_events(failures_only=False, limit=1)
    expected_events = MINUTES * INTEGRATIONS * 5
    n_threshold = sum(is_threshold(n) for n in integration_names())
    n_immediate = INTEGRATIONS - n_threshold
    problems = []
    if total_events != expected_events:
        problems.append(f"events {total_events} != {expected_events}")
    if kinds[NotificationKind.GLOBAL_IMMEDIATE] != MINUTES * n_immediate:
        problems.append(f"job mails {kinds[NotificationKind.GLOBAL_IMMEDIATE]} != {MINUTES * n_immediate}")
    if kinds[NotificationKind.GLOBAL_THRESHOLD] != (MINUTES // THRESHOLD) * n_threshold:
        problems.append(f"threshold mails {kinds[NotificationKind.GLOBAL_THRESHOLD]}")
    # Every final task/entity failure in exactly one processing mail; never a not-final one.
    in_mails = Counter(
        (e.dag_id, e.run_id, e.task_id, e.map_index, e.entity)
        for i in items
        if i.kind is NotificationKind.PROCESSING
        for e in i.draft.events
    )
    expected_final = MINUTES * INTEGRATIONS * 3
    if sum(in_mails.values()) != expected_final or len(in_mails) != expected_final:
        problems.append(f"processing mails list {sum(in_mails.values())} failures, {expected_final} expected")
    if any(key[4] and key[4].endswith("-retry") for key in in_mails):
        problems.append("a not-final entity failure was notified")
    if not counts.exactly_once:
        problems.append(f"not exactly once: {counts}")
    record_errors = sum(w["errors"] for w in writers)
    pass_failures = sum(p["failures"] for p in passers)
    if record_errors:
        problems.append(f"{record_errors} record errors: {writers[0]['samples'] or writers}")
    if pass_failures:
        problems.append(f"{pass_failures} passes raised: {[p['samples'] for p in passers if p['samples']]}")
    if len(writers) != WRITERS or len(passers) != run.passers:
        problems.append("a worker did not report")
    summary.record(
        f"load [{run.backend}]: {INTEGRATIONS} integ. x {MINUTES} min, {WRITERS} writer procs "
        f"(store API, no scheduler), {run.passers} passers",
        f"events {expected_events}; due = sent = received; dup 0; lost 0; 0 pass errors",
        f"events {total_events}; due {counts.due} sent {counts.sent} received {counts.received} "
        f"dup {counts.duplicates} lost {counts.lost}; {sum(p['passes'] for p in passers)} passes, "
        f"{pass_failures} raised, {record_errors} record errors",
        ok=not problems,
    )
    summary.record(
        f"load [{run.backend}]: rule invariants",
        f"job {MINUTES * n_immediate}, threshold {(MINUTES // THRESHOLD) * n_threshold}, "
        f"entity failures {expected_final} once each",
        f"job {kinds[NotificationKind.GLOBAL_IMMEDIATE]}, "
        f"threshold {kinds[NotificationKind.GLOBAL_THRESHOLD]}, "
        f"processing mails {kinds[NotificationKind.PROCESSING]} listing {sum(in_mails.values())}"
        + (f"; {'; '.join(problems)}" if problems else ""),
        ok=not problems,
    )
    return problems


@pytest.fixture
def load_env(smtp_connection: Callable[..., str]) -> Iterator[Callable[[DevSmtpServer, str], str]]:
    def make(server: DevSmtpServer, conn_id: str) -> str:
        return smtp_connection(conn_id, server=server, auth_type="basic")

    yield make


def test_load_sqlite_and_postgres_at_once(
    tmp_path: Path, postgres_url: str, load_env: Callable[[DevSmtpServer, str], str], summary: Summary
) -> None:
    with ExitStack() as stack:
        runs = []
        for backend, url, passers in (
            ("sqlite", f"sqlite:///{tmp_path / 'soak.db'}", 2),
            ("postgres", postgres_url, 3),
        ):
            smtp = stack.enter_context(DevSmtpServer(users={SMTP_USER: SMTP_PASSWORD}))
            workdir = tmp_path / backend
            workdir.mkdir()
            conn_id = load_env(smtp, f"mail_soak_{backend}")
            runs.append(LoadRun(backend, url, passers, workdir, smtp, conn_id))
        stores = [run.setup() for run in runs]
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "AIRFLOW__FAILNOTIFY__BASE_URL": "https://airflow.example.com",
        }
        start_at = time.time() + 3
        try:
            for run in runs:
                stack.callback(run.kill_all)
                run.start(env, start_at)
            for run in runs:
                run.wait_writers(timeout=MINUTES * MINUTE_SECONDS + 300)
            for run in runs:
                run.stop_passers()
        finally:
            for run in runs:
                run.kill_all()
        problems = {run.backend: check_load(run, store, summary) for run, store in zip(runs, stores)}
        for store in stores:
            store.engine.dispose()
    assert not any(problems.values()), problems


FAULTS: list[tuple[str, Callable[[DevSmtpServer], None], Callable[[DevSmtpServer], None]]] = [
    ("stopped", lambda s: s.stop(), lambda s: s.start()),
    ("never greets", lambda s: setattr(s, "never_greet", True), lambda s: setattr(s, "never_greet", False)),
    (
        "drops mid-DATA",
        lambda s: setattr(s, "drop_in_data", True),
        lambda s: setattr(s, "drop_in_data", False),
    ),
    (
        "454 on AUTH",
        lambda s: setattr(s, "auth_error", "454 4.7.0 Temporary authentication failure"),
        lambda s: setattr(s, "auth_error", None),
    ),
    (
        "451 on DATA",
        lambda s: setattr(s, "data_error", "451 4.3.0 Try again later"),
        lambda s: setattr(s, "data_error", None),
    ),
]


def test_smtp_down_for_many_passes_then_back(
    sqlite_store: Store,
    smtp_server: DevSmtpServer,
    smtp_connection: Callable[..., str],
    summary: Summary,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__MAX_ATTEMPTS", "5")
    conn_id = smtp_connection("mail_down", server=smtp_server, auth_type="basic", timeout=1)
    names = [f"down_{i}" for i in range(5)]
    for name in names:
        register(sqlite_store, conn_id, integration=name)
    seen_faults: Counter[str] = Counter()
    started = time.monotonic()
    for n in range(DOWN_PASSES):
        sqlite_store.record_events(
            [run_failed(f"r{n:04d}", NOW + timedelta(seconds=n), dag_id=name) for name in names]
        )
        label, breaker, fixer = FAULTS[n % len(FAULTS)]
        breaker(smtp_server)
        try:
            result = run_notification_pass(trigger="schedule", store=sqlite_store, dag_status=no_status)
        finally:
            fixer(smtp_server)
        seen_faults[label] += 1
        assert result.sent == 0, (label, result)
    down_seconds = time.monotonic() - started
    pending_before = sqlite_store.outbox_counts()
    errors = error_rows(sqlite_store, "send")
    assert not smtp_server.messages
    recovered = run_notification_pass(trigger="schedule", store=sqlite_store, dag_status=no_status)
    counts = delivery(sqlite_store, smtp_server)
    by_id = {i.message_id: i.id for i in all_outbox(sqlite_store)}
    order = [by_id[str(m.message["Message-ID"])] for m in smtp_server.messages]
    expected = DOWN_PASSES * len(names)
    ok = (
        counts.exactly_once
        and counts.due == expected
        and counts.failed == 0
        and order == sorted(order)
        and pending_before["failed"] == 0
    )
    summary.record(
        f"SMTP down {DOWN_PASSES} passes (stopped/silent/drop/454/451), failures arriving",
        f"{expected} pending, 0 failed; error rows every pass; then all sent once, oldest first",
        f"{pending_before['pending']} pending, {pending_before['failed']} failed, {len(errors)} error rows "
        f"in {down_seconds:.0f}s; then {counts}; oldest first: {order == sorted(order)}",
        ok=ok,
    )
    assert recovered.sent == expected
    assert counts.exactly_once and counts.due == expected and counts.failed == 0, counts
    assert pending_before["failed"] == 0 and pending_before["pending"] == expected
    assert len(errors) >= DOWN_PASSES, "every down pass left at least one error row"
    assert order == sorted(order), "oldest first"
