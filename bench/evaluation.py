"""Item 2: one evaluation (1,000 registered integrations, 1,000 new events) over a growing history.

The history (already-evaluated events) is bulk-inserted through SQLAlchemy Core, in chunks, into
failnotify_event; the 1,000 new events are recorded through ``Store.record_events`` (untimed). Only
``service.evaluation.evaluate(store, rules.evaluate, dag_status, now=...)`` is timed; each size is
measured ``repeat`` times (fresh new events each time) and the median kept.
PostgreSQL runs on a throwaway server
(tests/fixtures/postgres.py) and gets an ANALYZE after each bulk load, as autovacuum would do.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import NOW, migrated_store, no_status, register

INTEGRATIONS = 1000
NEW_EVENTS = 1000
CHUNK = 20_000
TRACE = 'Traceback (most recent call last):\n  File "sync.py", line 42, in load\nValueError: bad record\n'


def _history_rows(start: int, stop: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(start, stop):
        dag = f"bench_sync_{i % INTEGRATIONS:04d}"
        task = i % 2 == 0
        rows.append(
            {
                "kind": "task_failed" if task else "run_failed",
                "integration": dag,
                "direction": "forward",
                "dag_id": dag,
                "run_id": f"scheduled__h{i // INTEGRATIONS:07d}",
                "task_id": "load_records" if task else None,
                "map_index": -1,
                "entity": None,
                "try_number": 1 if task else None,
                "max_tries": 0 if task else None,
                "is_final": True,
                "not_accessible": False,
                "error_message": f"ValueError: bad record {i}",
                "traceback": TRACE if task else "",
                "occurred_at": NOW - timedelta(days=30, seconds=-i),
                "recorded_at": NOW - timedelta(days=30, seconds=-i),
                "source": "task" if task else "scheduler",
                "capture_key": f"history-{i:09d}",
                "evaluated": True,
            }
        )
    return rows


def _grow_history(store: Any, start: int, stop: int) -> float:
    from sqlalchemy import insert, text

    from airflow_failnotify.store import tables as t

    started = time.perf_counter()
    with store.engine.begin() as conn:
        for chunk in range(start, stop, CHUNK):
            conn.execute(insert(t.event), _history_rows(chunk, min(stop, chunk + CHUNK)))
    if store.is_postgres:
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    return time.perf_counter() - started


def _new_events(store: Any, tag: str) -> None:
    from airflow_failnotify.core.model import EventKind
    from airflow_failnotify.store import EventRecord

    records = []
    for i in range(NEW_EVENTS):
        dag = f"bench_sync_{i % INTEGRATIONS:04d}"
        task = i % 2 == 0
        records.append(
            EventRecord(
                kind=EventKind.TASK_FAILED if task else EventKind.RUN_FAILED,
                dag_id=dag,
                run_id=f"manual__{tag}_{i:05d}",
                occurred_at=NOW,
                source="task" if task else "scheduler",
                task_id="load_records" if task else None,
                try_number=1 if task else None,
                max_tries=0 if task else None,
                error_message=f"ValueError: bad record {i}",
                traceback=TRACE if task else "",
            )
        )
    store.record_events(records)


def measure_backend(url: str, sizes: Sequence[int], repeat: int) -> dict[str, Any]:
    from airflow_failnotify.core import rules
    from airflow_failnotify.service.evaluation import evaluate
    from airflow_failnotify.store import utcnow

    store = migrated_store(url)
    register(store, [f"bench_sync_{i:04d}" for i in range(INTEGRATIONS)], "bench_basic")
    out: dict[str, Any] = {"seconds": {}, "seconds_all": {}, "history_load_seconds": {}}
    have = 0
    for size in sizes:
        out["history_load_seconds"][str(size)] = round(_grow_history(store, have, size), 2)
        have = size
        times = []
        for rep in range(repeat + 1):  # the first one at the smallest size warms up, untimed
            _new_events(store, f"{size}_{rep}")
            started = time.perf_counter()
            outcome = evaluate(store, rules.evaluate, no_status, now=utcnow())
            elapsed = time.perf_counter() - started
            if outcome.evaluated_events != NEW_EVENTS:
                raise RuntimeError(f"evaluated {outcome.evaluated_events} events, expected {NEW_EVENTS}")
            if rep or size != sizes[0]:
                times.append(elapsed)
        times = times[-repeat:]
        out["seconds"][str(size)] = statistics.median(times)
        out["seconds_all"][str(size)] = times
    store.engine.dispose()
    first, last = str(sizes[0]), str(sizes[-1])
    out["ratio_largest_vs_smallest"] = out["seconds"][last] / out["seconds"][first]
    return out


def run(
    workdir: Path, *, sizes: Sequence[int] = (10_000, 100_000, 1_000_000), repeat: int = 3
) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"integrations": INTEGRATIONS, "new_events": NEW_EVENTS, "sizes": list(sizes)}
    result["sqlite"] = measure_backend(f"sqlite:///{workdir / 'evaluation.db'}", sizes, repeat)
    try:
        from tests.fixtures.postgres import start_postgres_server

        server = start_postgres_server()
    except Exception as err:  # PostgresUnavailable, or the server would not start here
        result["postgresql"] = {"skipped": f"{type(err).__name__}: {err}"}
        return result
    try:
        result["postgresql"] = measure_backend(server.new_database("bench_evaluation"), sizes, repeat)
    finally:
        server.remove()
    return result
