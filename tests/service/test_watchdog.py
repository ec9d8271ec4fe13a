"""The watchdog against a real store and the dev SMTP server: one admin mail per episode, also with
two watchdogs; the store-down mail goes out directly; Broken DAG events once per episode."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from airflow_failnotify.lookups.airflow_health import ImportErrorRecord
from airflow_failnotify.service.broken_dags import known_broken, sync_import_errors
from airflow_failnotify.service.watchdog import Watchdog
from airflow_failnotify.store import Store
from airflow_failnotify.store.engine import create_store_engine
from devtools.smtp_server import DevSmtpServer

T0 = datetime(2025, 5, 1, 12, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def admin(
    smtp_server: DevSmtpServer,
    smtp_connection: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> DevSmtpServer:
    conn_id = smtp_connection("failnotify_admin", server=smtp_server)
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__ADMIN_EMAILS", "admin@example.com")
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__ADMIN_SMTP_CONN_ID", conn_id)
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SPOOL_DIR", str(tmp_path / "spool"))
    return smtp_server


def finish_pass(store: Store, at: datetime) -> None:
    store.finish_pass(store.start_pass("schedule", now=at), {}, now=at)


def subjects(server: DevSmtpServer) -> list[str]:
    return [m.subject for m in server.messages]


def test_late_pass_mails_the_admins_once_even_with_two_watchdogs_and_once_on_recovery(
    admin: DevSmtpServer, sqlite_store: Store
) -> None:
    clock = Clock()
    finish_pass(sqlite_store, T0)
    first = Watchdog(store=sqlite_store, clock=clock, worker="scheduler-a", read_airflow=False)
    second = Watchdog(store=sqlite_store, clock=clock, worker="scheduler-b", read_airflow=False)
    assert first.tick().status.value == "warn"  # Airflow not read: unknown, never ok
    clock.now = T0 + timedelta(minutes=61)  # the default schedule: late after 2 x 30 min
    for _ in range(2):
        assert first.tick().status.value == "bad"
        second.tick()
    assert len(admin.messages) == 1
    assert subjects(admin)[0].startswith("[failnotify] Failure notification is not working")
    assert "last_pass" in subjects(admin)[0]
    assert admin.messages[0].rcpt_tos == ["admin@example.com"]
    finish_pass(sqlite_store, clock.now)
    second.tick()
    first.tick()
    assert len(admin.messages) == 2
    assert subjects(admin)[1].startswith("[failnotify] Failure notification recovered")


def test_store_down_past_its_bound_mails_directly_once_then_recovery(
    admin: DevSmtpServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'down.db'}"
    store = Store(create_store_engine(url, timeout=1))
    store.migrate()
    clock = Clock()
    finish_pass(store, T0)
    watchdog = Watchdog(store=store, clock=clock, read_airflow=False)
    watchdog.tick()
    moved = tmp_path / "away.db"
    (tmp_path / "down.db").rename(moved)
    clock.now = T0 + timedelta(minutes=1)
    assert watchdog.tick().status.value == "warn"  # unreachable, not yet for 5 minutes
    clock.now = T0 + timedelta(minutes=6)
    report = watchdog.tick()
    assert report.status.value == "bad"
    watchdog.tick()
    assert len(admin.messages) == 1 and "store" in subjects(admin)[0]
    moved.rename(tmp_path / "down.db")
    clock.now = T0 + timedelta(minutes=7)
    finish_pass(store, clock.now)
    watchdog.tick()
    assert len(admin.messages) == 2 and "recovered" in subjects(admin)[1]
    store.engine.dispose()


def test_without_admin_options_nothing_is_mailed(
    smtp_server: DevSmtpServer, sqlite_store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SPOOL_DIR", str(tmp_path / "spool"))
    clock = Clock()
    finish_pass(sqlite_store, T0)
    clock.now = T0 + timedelta(hours=2)
    assert Watchdog(store=sqlite_store, clock=clock, read_airflow=False).tick().status.value == "bad"
    assert smtp_server.messages == []


def _error(error_id: int) -> dict[str, ImportErrorRecord]:
    record = ImportErrorRecord(error_id, "sync_a", "sync_a.py", "dags-folder", T0, "SyntaxError: bad")
    return {"sync_a": record}


def test_an_import_error_is_one_event_per_broken_episode(sqlite_store: Store) -> None:
    from airflow_failnotify.core.model import DirectionSettings, EventKind, Registration

    settings = DirectionSettings(smtp_conn_id="smtp", recipients=("ops@example.com",))
    sqlite_store.save_registration(Registration("sync_a", settings))
    assert sync_import_errors(sqlite_store, _error(1), now=T0) == 1
    assert sync_import_errors(sqlite_store, _error(1), now=T0 + timedelta(minutes=1)) == 0
    assert set(known_broken(sqlite_store)) == {"sync_a"}
    sync_import_errors(sqlite_store, {}, now=T0 + timedelta(minutes=2))  # fixed
    assert known_broken(sqlite_store) == {}
    # broken again; SQLite may hand out the same import_error id: still a new episode
    assert sync_import_errors(sqlite_store, _error(1), now=T0 + timedelta(minutes=3)) == 1
    events, _ = sqlite_store.list_events(failures_only=False)
    assert [e.kind for e in events] == [EventKind.DAG_IMPORT_ERROR] * 2
