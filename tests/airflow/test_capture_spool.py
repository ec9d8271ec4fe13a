"""The listener's bound and spool: a locked, unreachable or unmigrated store never blocks nor loses events.

The hooks are called in this process with a task instance carrying the attributes Airflow's
``RuntimeTaskInstance`` has (the hooks read nothing else); the store (SQLite), the lock held by a
second connection, the spool files and their replay are all real.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_failnotify.core.model import EventKind
from airflow_failnotify.listeners import capture, spool, writing
from airflow_failnotify.listeners.records import MAX_MESSAGE_CHARS, MAX_TRACEBACK_CHARS
from airflow_failnotify.listeners.sink import LISTENER_TIMEOUT, reset_capture_sinks
from airflow_failnotify.store.store import EventRecord
from tests.fixtures.airflow_env import AirflowEnv

DAG_ID = "failnotify_spool_demo"
BOUND = LISTENER_TIMEOUT + 1.0  # the listener's bound plus slack for a loaded machine


@pytest.fixture
def store_env(airflow_env: AirflowEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[AirflowEnv]:
    """This process points at the test's store and spool; the listener's cached engines are dropped."""
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", airflow_env.store_url)
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SPOOL_DIR", str(airflow_env.spool_dir))
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__STORE_TIMEOUT", "5")
    reset_capture_sinks()
    airflow_env.register(DAG_ID)
    yield airflow_env
    reset_capture_sinks()


def task_instance(try_number: int = 1, *, map_index: int = -1, state: str = "failed") -> Any:
    return SimpleNamespace(
        dag_id=DAG_ID, run_id="manual__1", task_id="load", map_index=map_index, rendered_map_index=None,
        try_number=try_number, max_tries=0, state=state, end_date=datetime.now(timezone.utc),
    )


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as err:
        return err


def spooled_lines(directory: Path) -> list[str]:
    if not directory.exists():
        return []
    return [line for path in sorted(directory.iterdir()) if path.name.endswith((".jsonl", ".replaying"))
            for line in path.read_text().splitlines() if line.strip()]


def task_events(env: AirflowEnv) -> list[Any]:
    return [e for e in env.events(DAG_ID) if e.kind is EventKind.TASK_FAILED]


def test_locked_store_spools_within_the_bound_and_replays_once(store_env: AirflowEnv) -> None:
    writing.record_activity(DAG_ID)  # warm: the listener's engine exists and the schema was checked
    db_path = store_env.store_url.removeprefix("sqlite:///")
    holder = sqlite3.connect(db_path, isolation_level=None, timeout=1)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        capture.on_task_instance_failed(previous_state="running", task_instance=task_instance(),
                                        error=raised(PermissionError("locked out")))
        elapsed = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    print(f"\nlocked store: listener returned after {elapsed:.2f} s (bound {LISTENER_TIMEOUT} s)")
    assert elapsed < BOUND
    lines = spooled_lines(store_env.spool_dir)
    assert len(lines) == 1 and '"kind":"task_failed"' in lines[0]
    assert task_events(store_env) == []

    writing.record_activity(DAG_ID)  # the next successful write replays the spool
    events = task_events(store_env)
    assert len(events) == 1 and events[0].not_accessible and "locked out" in events[0].error_message
    assert spooled_lines(store_env.spool_dir) == []
    writing.record_activity(DAG_ID)
    assert len(task_events(store_env)) == 1


def test_unreachable_store_spools_and_replays(store_env: AirflowEnv, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", f"sqlite:///{blocker}/sub/failnotify.db")
    started = time.monotonic()
    capture.on_task_instance_failed(previous_state="running", task_instance=task_instance(2),
                                    error=raised(ValueError("store gone")))
    capture.on_dag_run_running(dag_run=SimpleNamespace(dag_id=DAG_ID, run_id="manual__1",
                                                       start_date=datetime.now(timezone.utc)), msg="started")
    assert time.monotonic() - started < BOUND
    assert len(spooled_lines(store_env.spool_dir)) == 2  # the failure and the activity

    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", store_env.store_url)
    writing.record_activity("some_unregistered_dag")  # any successful write on this machine replays
    events = task_events(store_env)
    assert [(e.try_number, e.error_message) for e in events] == [(2, "ValueError: store gone")]
    assert spooled_lines(store_env.spool_dir) == []


def test_not_migrated_store_warns_once_naming_the_command(
    store_env: AirflowEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    empty = tmp_path / "empty" / "failnotify.db"
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", f"sqlite:///{empty}")
    writing._warned.discard("not-ready")
    with caplog.at_level(logging.WARNING, logger="airflow_failnotify"):
        for try_number in (1, 2, 3):
            capture.on_task_instance_failed(previous_state="running", task_instance=task_instance(try_number),
                                            error=raised(ValueError("early")))
    warnings = [r for r in caplog.records
                if r.levelno >= logging.WARNING and "not migrated" in r.getMessage()]
    assert len(warnings) == 1
    assert "failnotify db migrate" in warnings[0].getMessage()
    assert all(r.exc_info is None for r in caplog.records)  # a message, not a traceback
    assert len(spooled_lines(store_env.spool_dir)) == 3

    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", store_env.store_url)
    writing.record_activity(DAG_ID)
    assert sorted(e.try_number for e in task_events(store_env)) == [1, 2, 3]


def test_replaying_twice_records_once(store_env: AirflowEnv) -> None:
    record = EventRecord(kind=EventKind.TASK_FAILED, dag_id=DAG_ID, run_id="r1", task_id="t",
                         occurred_at=datetime.now(timezone.utc), source="task", try_number=1, max_tries=0)
    spool.spool([record])
    spool._own_file_name(fresh=True)  # as if another process spooled the same event
    spool.spool([record, record])
    assert len(list(store_env.spool_dir.iterdir())) == 2
    store = store_env.store()
    assert spool.replay(store.record_events, store.record_activity) == 3
    assert len(task_events(store_env)) == 1
    assert list(store_env.spool_dir.iterdir()) == []


def test_torn_line_is_skipped_and_bad_file_set_aside(store_env: AirflowEnv) -> None:
    record = EventRecord(kind=EventKind.RUN_FAILED, dag_id=DAG_ID, run_id="r2",
                         occurred_at=datetime.now(timezone.utc), source="scheduler")
    path = spool.spool([record])
    with path.open("a") as handle:
        handle.write('{"event": {"kind": "run_fa')  # a crash mid-write
    store = store_env.store()
    assert spool.replay(store.record_events, store.record_activity) == 1
    assert [e.run_id for e in store_env.events(DAG_ID) if e.kind is EventKind.RUN_FAILED] == ["r2"]

    def broken(_records: list[EventRecord]) -> None:
        raise TypeError("a bug, not a store outage")

    spool._own_file_name(fresh=True)
    spool.spool([record])
    assert spool.replay(broken, store.record_activity, transient=writing.is_transient) == 0
    assert [p.suffix for p in store_env.spool_dir.iterdir()] == [".bad"]
    assert not spool.has_spooled(store_env.spool_dir)


def test_huge_traceback_is_capped_keeping_both_ends(store_env: AirflowEnv) -> None:
    message = "HEAD-MARK " + "x" * 3_000_000 + " TAIL-MARK"
    capture.on_task_instance_failed(previous_state="running", task_instance=task_instance(),
                                    error=raised(RuntimeError(message)))
    event = task_events(store_env)[0]
    assert len(event.traceback) <= MAX_TRACEBACK_CHARS + 500
    assert len(event.error_message) <= MAX_MESSAGE_CHARS + 500
    assert "Traceback" in event.traceback and "TAIL-MARK" in event.traceback
    assert "characters of this traceback omitted" in event.traceback


def test_listener_swallows_everything(store_env: AirflowEnv, caplog: pytest.LogCaptureFixture) -> None:
    class Exploding:
        @property
        def dag_id(self) -> str:
            raise RuntimeError("broken task instance")

    with caplog.at_level(logging.WARNING, logger="airflow_failnotify"):
        capture.on_task_instance_failed(previous_state="running", task_instance=Exploding(), error="x")
        capture.on_dag_run_failed(dag_run=Exploding(), msg="task_failure")
    assert sum("listener failed (ignored)" in r.getMessage() for r in caplog.records) == 2
