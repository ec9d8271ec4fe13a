"""Several processes recording into one SQLite store at once.

Nothing may be lost, and "database is locked" must not escape (nor push a write past the bound
into the spool).
"""

from __future__ import annotations

import multiprocessing
import time
from datetime import datetime, timezone
from functools import partial
from typing import Any

import pytest

from airflow_failnotify.core.model import EventKind
from tests.fixtures.airflow_env import AirflowEnv

pytestmark = [pytest.mark.slow]

DAG_ID = "failnotify_concurrency_demo"
PROCESSES = 4
EVENTS_EACH = 200


def _record(record: Any, sink: Any) -> int:
    return int(sink.record_events([record]))


def _worker(worker: int, count: int) -> tuple[int, int, float]:
    """Record ``count`` task failures through the listener's path; (written, spooled, seconds)."""
    from airflow_failnotify.core.capture import EventRecord
    from airflow_failnotify.listeners import writing

    written = spooled = 0
    started = time.monotonic()
    for index in range(count):
        record = EventRecord(
            kind=EventKind.TASK_FAILED, dag_id=DAG_ID, run_id=f"run_{worker}", task_id="load",
            map_index=index, entity=f"load[{index}]", occurred_at=datetime.now(timezone.utc),
            source="task", try_number=1, max_tries=0, error_message="ValueError: x", traceback="trace",
        )
        ok, _ = writing.write(partial(_record, record), partial(list, [record]))
        if ok:
            written += 1
        else:
            spooled += 1
        writing.record_activity(DAG_ID)
    return written, spooled, time.monotonic() - started


def test_parallel_writers_lose_nothing(airflow_env: AirflowEnv, monkeypatch: pytest.MonkeyPatch,
                                       caplog: pytest.LogCaptureFixture) -> None:
    airflow_env.register(DAG_ID)
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", airflow_env.store_url)
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SPOOL_DIR", str(airflow_env.spool_dir))
    context = multiprocessing.get_context("spawn")  # fresh interpreters, like task processes
    with context.Pool(PROCESSES) as pool:
        results = pool.starmap(_worker, [(worker, EVENTS_EACH) for worker in range(PROCESSES)])
    written = sum(r[0] for r in results)
    spooled = sum(r[1] for r in results)
    print(f"\n{PROCESSES} processes x {EVENTS_EACH} events (each with an activity write): "
          + ", ".join(f"{r[2]:.1f} s" for r in results) + f"; written {written}, spooled {spooled}")
    events = [e for e in airflow_env.events(DAG_ID) if e.kind is EventKind.TASK_FAILED]
    assert len(events) == PROCESSES * EVENTS_EACH
    assert len({(e.run_id, e.map_index) for e in events}) == PROCESSES * EVENTS_EACH
    assert spooled == 0, "a write waited past the bound: SQLite locking did not serialise the writers"
    assert not airflow_env.spool_dir.exists() or not any(airflow_env.spool_dir.iterdir())
