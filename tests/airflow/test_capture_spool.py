"""The listener's bound and spool: a locked, unreachable or unmigrated store never blocks nor loses events.

The hooks get the task instances Airflow really hands them:

* in the task process, a Task SDK ``RuntimeTaskInstance``, built here the way the task runner builds
  it (``task_runner.parse``: ``model_construct`` around the DAG's real operator), in the state the
  runner sets before it calls the hook (``failed``, an end date);
* in the scheduler and the api-server, an ORM ``TaskInstance`` of the serialized DAG.

The last cases run the DAG for real with ``airflow dags test`` while the store is unreachable: the
task process itself spools its failure. The store (SQLite), the lock held by a second connection, the
spool files and their replay are all real.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG
from airflow.sdk.bases.operator import BaseOperator

from airflow_failnotify.core.capture import EventRecord
from airflow_failnotify.core.model import EventKind
from airflow_failnotify.listeners import capture, spool, writing
from airflow_failnotify.listeners.records import MAX_MESSAGE_CHARS, MAX_TRACEBACK_CHARS
from airflow_failnotify.listeners.sink import LISTENER_TIMEOUT, reset_capture_sinks
from tests.fixtures.airflow_env import TEST_DAGS, AirflowEnv

DAG_ID = "failnotify_capture_spool"  # also in tests/airflow/dags, for the `airflow dags test` cases
RUN_ID = "manual__1"
BOUND = LISTENER_TIMEOUT + 1.0  # the listener's bound plus slack for a loaded machine

with DAG(DAG_ID, schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as _DAG:
    _LOAD = BaseOperator(task_id="load")


@pytest.fixture
def store_env(airflow_env: AirflowEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[AirflowEnv]:
    """This process points at the test's store and spool; the listener's cached sinks are dropped."""
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", airflow_env.store_url)
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SPOOL_DIR", str(airflow_env.spool_dir))
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__STORE_TIMEOUT", "5")
    reset_capture_sinks()
    airflow_env.register(DAG_ID)
    yield airflow_env
    reset_capture_sinks()


def runtime_task_instance(try_number: int = 1) -> Any:
    """What the task process hands ``on_task_instance_failed``: a real ``RuntimeTaskInstance``."""
    from airflow.dag_processing.bundles.local import LocalDagBundle
    from airflow.sdk.api.datamodels._generated import TaskInstanceState
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    now = datetime.now(timezone.utc)
    return RuntimeTaskInstance.model_construct(
        id=uuid.uuid4(), task_id="load", dag_id=DAG_ID, run_id=RUN_ID, try_number=try_number,
        dag_version_id=uuid.uuid4(), map_index=-1, task=_LOAD,
        bundle_instance=LocalDagBundle(name="dags-folder", path=str(TEST_DAGS)),
        max_tries=0, start_date=now, end_date=now, state=TaskInstanceState.FAILED,
    )


def orm_task_instance(try_number: int = 1) -> Any:
    """What the scheduler or the api-server hands the hook: an ORM ``TaskInstance`` (serialized DAG)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.serialization.serialized_objects import DagSerialization

    serialized = DagSerialization.from_dict(DagSerialization.to_dict(_DAG))
    ti = TaskInstance(task=serialized.get_task("load"), run_id=RUN_ID, dag_version_id=uuid.uuid4(),
                      state="failed")
    ti.try_number = try_number
    ti.end_date = datetime.now(timezone.utc)
    return ti


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


def sources(env: AirflowEnv) -> list[str]:
    by_id = env.event_sources()
    return [by_id[e.id] for e in task_events(env)]


def task_failed(error: BaseException | str, try_number: int = 1) -> None:
    """The task-side hook, as the task runner calls it after the task raised."""
    capture.on_task_instance_failed(previous_state="running", task_instance=runtime_task_instance(try_number),
                                    error=error)


# --- where the report comes from: the source of the event ------------------------------------------


def test_task_process_failure_is_recorded_with_source_task(store_env: AirflowEnv) -> None:
    task_failed(raised(ValueError("in the task")))
    assert sources(store_env) == ["task"]


def test_scheduler_detected_failure_is_recorded_with_source_scheduler(store_env: AirflowEnv) -> None:
    capture.on_task_instance_failed(previous_state="running", task_instance=orm_task_instance(),
                                    error="Executor reported the task failed")
    assert sources(store_env) == ["scheduler"]


def test_failure_set_through_the_api_is_recorded_with_source_api(store_env: AirflowEnv) -> None:
    capture.on_task_instance_failed(previous_state=None, task_instance=orm_task_instance(), error=None)
    assert sources(store_env) == ["api"]


# --- a locked store ---------------------------------------------------------------------------------


@pytest.fixture
def locked_failure(store_env: AirflowEnv) -> float:
    """A task failure reported while another connection holds SQLite's exclusive lock; seconds taken."""
    writing.record_activity(DAG_ID)  # warm: the listener's engine exists and the schema was checked
    holder = sqlite3.connect(store_env.store_url.removeprefix("sqlite:///"), isolation_level=None, timeout=1)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        task_failed(raised(PermissionError("locked out")))
        return time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_locked_store_listener_returns_within_the_bound(locked_failure: float) -> None:
    print(f"\nlocked store: listener returned after {locked_failure:.2f} s (bound {LISTENER_TIMEOUT} s)")
    assert locked_failure < BOUND


def test_locked_store_spools_the_failure_instead_of_recording_it(
    locked_failure: float, store_env: AirflowEnv
) -> None:
    lines = spooled_lines(store_env.spool_dir)
    assert len(lines) == 1 and '"kind":"task_failed"' in lines[0]
    assert task_events(store_env) == []


def test_next_successful_write_replays_the_spooled_failure(
    locked_failure: float, store_env: AirflowEnv
) -> None:
    writing.record_activity(DAG_ID)
    events = task_events(store_env)
    assert len(events) == 1 and events[0].not_accessible and "locked out" in events[0].error_message
    assert sources(store_env) == ["task"]
    assert spooled_lines(store_env.spool_dir) == []


def test_spooled_failure_is_replayed_only_once(locked_failure: float, store_env: AirflowEnv) -> None:
    writing.record_activity(DAG_ID)
    writing.record_activity(DAG_ID)
    assert len(task_events(store_env)) == 1


# --- an unreachable store ---------------------------------------------------------------------------


@pytest.fixture
def unreachable(store_env: AirflowEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """The store URL names a file below a plain file: every connection attempt fails at once."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", f"sqlite:///{blocker}/sub/failnotify.db")
    yield
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", store_env.store_url)


def _failure_and_activity() -> float:
    started = time.monotonic()
    task_failed(raised(ValueError("store gone")), try_number=2)
    capture.on_dag_run_running(dag_run=_dag_run(), msg="started")
    return time.monotonic() - started


def _dag_run() -> Any:
    @dataclass
    class DagRunView:  # the attributes the DAG run hooks read
        dag_id: str
        run_id: str
        start_date: datetime

    return DagRunView(DAG_ID, RUN_ID, datetime.now(timezone.utc))


def test_unreachable_store_listeners_return_within_the_bound(unreachable: None) -> None:
    assert _failure_and_activity() < BOUND


def test_unreachable_store_spools_the_failure_and_the_activity(
    unreachable: None, store_env: AirflowEnv
) -> None:
    _failure_and_activity()
    assert len(spooled_lines(store_env.spool_dir)) == 2


def test_any_successful_write_on_the_machine_replays_the_spool(
    unreachable: None, store_env: AirflowEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    _failure_and_activity()
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", store_env.store_url)
    writing.record_activity("some_unregistered_dag")
    replayed = [(e.try_number, e.error_message) for e in task_events(store_env)]
    assert replayed == [(2, "ValueError: store gone")]
    assert spooled_lines(store_env.spool_dir) == []


def test_spooled_scheduler_side_failure_keeps_its_source(
    unreachable: None, store_env: AirflowEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture.on_task_instance_failed(previous_state="running", task_instance=orm_task_instance(),
                                    error="Executor reported the task failed")
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", store_env.store_url)
    writing.record_activity(DAG_ID)
    assert sources(store_env) == ["scheduler"]


# --- a store not migrated yet -------------------------------------------------------------------


@pytest.fixture
def not_migrated(
    store_env: AirflowEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> list[logging.LogRecord]:
    """Three task failures reported to an empty database; the log records they produced."""
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'empty' / 'fn.db'}")
    writing._warned.discard("not-ready")
    with caplog.at_level(logging.WARNING, logger="airflow_failnotify"):
        for try_number in (1, 2, 3):
            task_failed(raised(ValueError("early")), try_number=try_number)
    return list(caplog.records)


def test_not_migrated_store_warns_once_naming_the_command(not_migrated: list[logging.LogRecord]) -> None:
    warnings = [r for r in not_migrated if r.levelno >= logging.WARNING and "not migrated" in r.getMessage()]
    assert len(warnings) == 1
    assert "failnotify db migrate" in warnings[0].getMessage()


def test_not_migrated_store_logs_a_message_not_a_traceback(not_migrated: list[logging.LogRecord]) -> None:
    assert all(r.exc_info is None for r in not_migrated)


def test_not_migrated_store_spools_every_failure(not_migrated: list[logging.LogRecord],
                                                 store_env: AirflowEnv) -> None:
    assert len(spooled_lines(store_env.spool_dir)) == 3


def test_migrated_store_replays_what_waited(not_migrated: list[logging.LogRecord], store_env: AirflowEnv,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", store_env.store_url)
    writing.record_activity(DAG_ID)
    assert sorted(e.try_number for e in task_events(store_env)) == [1, 2, 3]


# --- the spool files themselves ---------------------------------------------------------------------


def _record(kind: EventKind = EventKind.TASK_FAILED, run_id: str = "r1") -> EventRecord:
    if kind is EventKind.TASK_FAILED:
        return EventRecord(kind=kind, dag_id=DAG_ID, run_id=run_id, task_id="t",
                           occurred_at=datetime.now(timezone.utc), source="task", try_number=1, max_tries=0)
    return EventRecord(kind=kind, dag_id=DAG_ID, run_id=run_id, occurred_at=datetime.now(timezone.utc),
                       source="scheduler")


def test_replaying_twice_records_once(store_env: AirflowEnv) -> None:
    record = _record()
    spool.spool([record])
    spool._own_file_name(fresh=True)  # as if another process spooled the same event
    spool.spool([record, record])
    assert len(list(store_env.spool_dir.iterdir())) == 2
    store = store_env.store()
    assert spool.replay(store.record_events, store.record_activity) == 3
    assert len(task_events(store_env)) == 1
    assert list(store_env.spool_dir.iterdir()) == []


def test_torn_line_is_skipped(store_env: AirflowEnv) -> None:
    path = spool.spool([_record(EventKind.RUN_FAILED, "r2")])
    with path.open("a") as handle:
        handle.write('{"event": {"kind": "run_fa')  # a crash mid-write
    store = store_env.store()
    assert spool.replay(store.record_events, store.record_activity) == 1
    assert [e.run_id for e in store_env.events(DAG_ID) if e.kind is EventKind.RUN_FAILED] == ["r2"]


def test_file_that_cannot_be_recorded_is_set_aside(store_env: AirflowEnv) -> None:
    def broken(_records: list[EventRecord]) -> None:
        raise TypeError("a bug, not a store outage")

    spool.spool([_record(EventKind.RUN_FAILED, "r2")])
    assert spool.replay(broken, store_env.store().record_activity, transient=writing.is_transient) == 0
    assert [p.suffix for p in store_env.spool_dir.iterdir()] == [".bad"]
    assert not spool.has_spooled(store_env.spool_dir)


# --- what the hooks do with what they are given -----------------------------------------------------


def test_huge_traceback_is_capped_keeping_both_ends(store_env: AirflowEnv) -> None:
    task_failed(raised(RuntimeError("HEAD-MARK " + "x" * 3_000_000 + " TAIL-MARK")))
    event = task_events(store_env)[0]
    assert len(event.traceback) <= MAX_TRACEBACK_CHARS + 500
    assert len(event.error_message) <= MAX_MESSAGE_CHARS + 500
    assert "Traceback" in event.traceback and "TAIL-MARK" in event.traceback
    assert "characters of this traceback omitted" in event.traceback


class _Exploding:
    @property
    def dag_id(self) -> str:
        raise RuntimeError("broken object")


def test_task_hook_swallows_a_broken_task_instance(
    store_env: AirflowEnv, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="airflow_failnotify"):
        capture.on_task_instance_failed(previous_state="running", task_instance=_Exploding(), error="x")
    assert sum("listener failed (ignored)" in r.getMessage() for r in caplog.records) == 1


def test_run_hook_swallows_a_broken_dag_run(store_env: AirflowEnv, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="airflow_failnotify"):
        capture.on_dag_run_failed(dag_run=_Exploding(), msg="task_failure")
    assert sum("listener failed (ignored)" in r.getMessage() for r in caplog.records) == 1


# --- the real task process: `airflow dags test` with the store unreachable --------------------------


@dataclass
class SpooledRun:
    env: AirflowEnv
    spooled: list[EventRecord]  # what the run left in the spool, before any replay
    output: str


@pytest.fixture(scope="module")
def spooled_run(tmp_path_factory: pytest.TempPathFactory, airflow_db_template: Path) -> Iterator[SpooledRun]:
    """``airflow dags test failnotify_capture_spool`` (its task raises) while the store is unreachable,
    then one replay of the spool into the real store."""
    home = tmp_path_factory.mktemp("capture-spool-dags-test")
    shutil.copyfile(airflow_db_template, home / "airflow.db")
    env = AirflowEnv(home=home)
    env.migrate_store()  # also opens the test's own handle on the real store
    env.register(DAG_ID)
    blocker = home / "a-file"
    blocker.write_text("not a directory")
    env.extra_env["AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN"] = f"sqlite:///{blocker}/sub/failnotify.db"
    spool_dir = env.spool_dir
    try:
        result = env.airflow("dags", "test", DAG_ID, check=False)
        assert result.returncode != 0, "the run should fail"
        spooled = [EventRecord.from_json(json.loads(line)["event"])
                   for line in spooled_lines(spool_dir) if line.startswith('{"event"')]
        store = env.store()
        spool.replay(store.record_events, store.record_activity, directory=spool_dir)
        del env.extra_env["AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN"]
        yield SpooledRun(env=env, spooled=spooled, output=result.stdout + result.stderr)
    finally:
        env.close()


@pytest.mark.airflow
@pytest.mark.slow
def test_task_process_spools_its_own_failure(spooled_run: SpooledRun) -> None:
    task = [r for r in spooled_run.spooled if r.kind is EventKind.TASK_FAILED and r.source == "task"]
    assert [(r.task_id, r.error_message) for r in task] == [
        ("load", "PermissionError: locked out of the warehouse")
    ], spooled_run.output[-3000:]


@pytest.mark.airflow
@pytest.mark.slow
def test_task_process_failure_replayed_keeps_source_task(spooled_run: SpooledRun) -> None:
    env = spooled_run.env
    assert sources(env) == ["task"]
    event = task_events(env)[0]
    assert event.not_accessible and 'raise PermissionError("locked out of the warehouse")' in event.traceback


@pytest.mark.airflow
@pytest.mark.slow
def test_reconciled_copy_of_a_spooled_task_failure_is_not_recorded_twice(spooled_run: SpooledRun) -> None:
    spooled = sorted(r.source for r in spooled_run.spooled if r.kind is EventKind.TASK_FAILED)
    assert spooled == ["reconcile", "task"]
    assert len(task_events(spooled_run.env)) == 1


@pytest.mark.airflow
@pytest.mark.slow
def test_run_failure_spooled_by_the_run_is_replayed(spooled_run: SpooledRun) -> None:
    runs = [e for e in spooled_run.env.events(DAG_ID) if e.kind is EventKind.RUN_FAILED]
    assert len(runs) == 1
    assert spooled_lines(spooled_run.env.spool_dir) == []
