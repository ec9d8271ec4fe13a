"""Item 8 (issue 17): evaluation of 100,000 new events over 10,000 registered integrations, PostgreSQL.

    .venv/bin/python -m bench.scale_evaluation [--quick]

The store and Airflow's metadata database are databases of one throwaway PostgreSQL server
(tests/fixtures/postgres.py). The metadata database is migrated by ``airflow db migrate`` and holds
10,000 DAGs written through Airflow's own ORM models (``DagBundleModel``, ``DagModel``, ``DagRun``):
every 10th paused, every 50th with an import error, every 5th with a running run. The DAG-status
lookup is the real one, ``lookups.dags.dag_status_from_metadata_db``, through Airflow's own session.

Each size (1,000 and 10,000 registered integrations, the same 100,000 events) is a template database;
each measurement runs on a fresh copy of it (``CREATE DATABASE ... TEMPLATE``), in a child process of
its own (``python -m bench.scale_evaluation --child ...``: Airflow reads its database URL at import).
The events are the rows ``Store.record_events`` writes (same columns, capture keys, activity rows),
inserted in bulk through SQLAlchemy Core, untimed: the capture path is item 3's, not this one's.
The mix: 50 % task failures, 30 % run failures, 20 % entity reports, in groups of 10 events
per integration (three failed runs: two with 2 task failures and an entity report each, one with a task
failure, each run's own failure last); groups go round the integrations, oldest first.

Timed: ``service.evaluation.evaluate_backlog(store, rules.evaluate, dag_status, clock=...)``, what a
pass runs, called until every new event is evaluated: one pass, 20 batches of 5,000 (the default), the
first over every direction, the others over the integrations their events name. Reported: seconds,
ms per new event, the store's round trips per event (bench/scale.py), the share of the DAG-status
lookup and of the rules, and the cost per event at 1,000 vs 10,000 integrations. Targets: <= 0.2 ms
per new event at 100,000 events; 10k/1k <= 1.2x.

The same again with ``batch_size`` = every new event (one evaluation), on a fresh database: what the
batches cost beyond one evaluation shows as the difference; the targets are judged on the default batch.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import NOW, migrated_store
from bench.scale import (
    AIRFLOW_URL,
    count_round_trips,
    migrated_airflow_db,
    print_line,
    register_teams,
    run_child,
)

DAGS = 10_000
TARGET_MS_PER_EVENT = 0.2
TARGET_RATIO = 1.2
TRACE = 'Traceback (most recent call last):\n  File "sync.py", line 42, in load\nValueError: bad record\n'
BUNDLE = "dags-folder"
MODULE = "bench.scale_evaluation"


def dag_name(i: int) -> str:
    return f"bench_int_{i:05d}"


# ---------------------------------------------------------------------------------------------------
# In the child (Airflow configured for the metadata database)
# ---------------------------------------------------------------------------------------------------
def _seed_airflow(dags: int) -> dict[str, Any]:
    """``dags`` DAGs in Airflow's metadata database, through its ORM: what the DAG-status lookup reads."""
    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    started = time.perf_counter()
    with create_session() as session:
        session.add(DagBundleModel(name=BUNDLE))
        session.flush()
        for i in range(dags):
            session.add(
                DagModel(
                    dag_id=dag_name(i),
                    bundle_name=BUNDLE,
                    fileloc=f"/opt/airflow/dags/{dag_name(i)}.py",
                    relative_fileloc=f"{dag_name(i)}.py",
                    is_paused=i % 10 == 0,
                    is_stale=False,
                    has_import_errors=i % 50 == 1,
                    max_active_tasks=16,
                    max_active_runs=16,
                    max_consecutive_failed_dag_runs=0,
                    has_task_concurrency_limits=False,
                    timetable_summary="@hourly",
                )
            )
        session.flush()
        for i in range(2, dags, 5):
            session.add(
                DagRun(
                    dag_id=dag_name(i),
                    run_id=f"manual__bench_{i}",
                    run_type=DagRunType.MANUAL,
                    state=DagRunState.RUNNING,
                    run_after=NOW,
                    start_date=NOW,
                    triggered_by=DagRunTriggeredByType.TEST,
                )
            )
    return {"dags": dags, "seconds": round(time.perf_counter() - started, 2)}


def _records(integrations: int, events: int) -> list[Any]:
    """The event mix of the module docstring, oldest first."""
    from airflow_failnotify.core.model import EventKind
    from airflow_failnotify.store import EventRecord

    out = []
    for group in range(events // 10):
        dag = dag_name(group % integrations)
        base = NOW - timedelta(seconds=events - group * 10)
        for run, tasks, entity in ((0, 2, True), (1, 2, True), (2, 1, False)):
            run_id = f"scheduled__g{group:06d}_{run}"
            common: dict[str, Any] = {
                "dag_id": dag,
                "run_id": run_id,
                "occurred_at": base + timedelta(seconds=run * 3),
            }
            for task in range(tasks):
                out.append(
                    EventRecord(
                        kind=EventKind.TASK_FAILED,
                        source="task",
                        task_id=f"load_{task}",
                        try_number=1,
                        max_tries=0,
                        error_message=f"ValueError: bad record {group}",
                        traceback=TRACE,
                        **common,
                    )
                )
            if entity:
                out.append(
                    EventRecord(
                        kind=EventKind.ENTITY_FAILED,
                        source="task",
                        task_id="load_0",
                        entity=f"customer-{group}",
                        try_number=1,
                        max_tries=0,
                        error_message=f"customer-{group}: HTTP 503",
                        **common,
                    )
                )
            out.append(
                EventRecord(
                    kind=EventKind.RUN_FAILED,
                    source="scheduler",
                    error_message=f"task load_0 failed: ValueError: bad record {group}",
                    **common,
                )
            )
    return out


def insert_events(store: Any, records: Sequence[Any]) -> None:
    """The rows ``Store.record_events`` writes for ``records`` (forward DAGs, all registered), in bulk:
    the same events (capture keys digested alike) and each integration's last activity."""
    from sqlalchemy import insert

    from airflow_failnotify.store import tables as t

    rows: list[dict[str, Any]] = []
    activity: dict[str, datetime] = {}
    for record in records:
        rows.append(
            {
                "kind": record.kind.value,
                "integration": record.dag_id,
                "direction": "forward",
                "dag_id": record.dag_id,
                "run_id": record.run_id,
                "task_id": record.task_id,
                "map_index": record.map_index,
                "entity": record.entity,
                "try_number": record.try_number,
                "max_tries": record.max_tries,
                "is_final": record.is_final,
                "not_accessible": record.not_accessible,
                "error_message": record.error_message,
                "traceback": record.traceback,
                "occurred_at": record.occurred_at,
                "recorded_at": NOW,
                "source": record.source,
                "capture_key": hashlib.sha256(record.capture_key.encode()).hexdigest(),
                "evaluated": False,
            }
        )
        activity[record.dag_id] = max(record.occurred_at, activity.get(record.dag_id, record.occurred_at))
    with store.engine.begin() as conn:
        for start in range(0, len(rows), 10_000):
            conn.execute(insert(t.event), rows[start : start + 10_000])
        conn.execute(
            insert(t.activity),
            [
                {"integration": dag, "direction": "forward", "last_activity_at": at}
                for dag, at in activity.items()
            ],
        )


def _timed(fn: Callable[..., Any], spent: dict[str, float], name: str) -> Callable[..., Any]:
    """``fn``, adding the seconds each call takes to ``spent[name]``."""

    def wrapper(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - started

    return wrapper


def _airflow_statements() -> Any:
    from airflow import settings

    if settings.engine is None:
        raise RuntimeError("Airflow's ORM is not configured")
    return count_round_trips(settings.engine)


def _measure(store_url: str, integrations: int, events: int, batch_size: int | None) -> dict[str, Any]:
    from airflow_failnotify.core import rules
    from airflow_failnotify.lookups.dags import dag_status_from_metadata_db
    from airflow_failnotify.service.evaluation import DEFAULT_BATCH, evaluate_backlog
    from airflow_failnotify.store import utcnow

    store = migrated_store(store_url)
    status = dag_status_from_metadata_db([dag_name(i) for i in range(integrations)])
    paused = sum(1 for s in status.values() if s.is_paused)
    running = sum(1 for s in status.values() if s.has_running_run)
    spent: dict[str, float] = {}
    lookup: Callable[[Sequence[str]], Mapping[str, Any]]
    lookup = _timed(dag_status_from_metadata_db, spent, "lookup")
    rules_fn = _timed(rules.evaluate, spent, "rules")
    store_trips, airflow_trips = count_round_trips(store.engine), _airflow_statements()
    evaluated = due = passes = 0
    batch = batch_size or DEFAULT_BATCH
    started = time.perf_counter()
    while evaluated < events:
        outcome = evaluate_backlog(store, rules_fn, lookup, clock=utcnow, batch_size=batch)
        if not outcome.evaluated_events:
            raise RuntimeError(f"evaluated {evaluated} of {events} events, then nothing")
        evaluated += outcome.evaluated_events
        due += len(outcome.outbox_ids)
        passes += 1
    seconds = time.perf_counter() - started
    counts = store.outbox_counts()
    store.engine.dispose()
    return {
        "integrations": integrations,
        "batch_size": batch_size or "default",
        "events": evaluated,
        "passes": passes,
        "batches": -(-evaluated // batch),
        "seconds": round(seconds, 3),
        "ms_per_event": round(seconds * 1000 / evaluated, 4),
        "notifications_written": due,
        "outbox": {k: v for k, v in counts.items() if v},
        "store_round_trips": vars(store_trips),
        "store_round_trips_per_event": store_trips.per(evaluated),
        "airflow_db_statements": airflow_trips.statements,
        "seconds_in": {
            "dag_status_lookup": round(spent.get("lookup", 0.0), 3),
            "rules": round(spent.get("rules", 0.0), 3),
            "store_and_service": round(seconds - spent.get("lookup", 0.0) - spent.get("rules", 0.0), 3),
        },
        "dag_status": {"registered": len(status), "paused": paused, "running": running},
    }


def _prepare(store_url: str, integrations: int, events: int) -> float:
    """A store with ``integrations`` registered and ``events`` new events (the template of a size)."""
    started = time.perf_counter()
    store = migrated_store(store_url)
    register_teams(store, [dag_name(i) for i in range(integrations)], "bench_basic")
    insert_events(store, _records(integrations, events))
    store.engine.dispose()  # a template database must have no connection when it is copied
    return round(time.perf_counter() - started, 1)


def _child(args: dict[str, Any]) -> None:
    if args["step"] == "seed":
        print_line(_seed_airflow(args["dags"]))
    else:
        print_line(_measure(args["store_url"], args["integrations"], args["events"], args.get("batch_size")))


# ---------------------------------------------------------------------------------------------------
# In the parent
# ---------------------------------------------------------------------------------------------------
def run(
    workdir: Path,
    *,
    sizes: Sequence[int] = (1_000, 10_000),
    events: int = 100_000,
    one_evaluation: bool = True,
) -> dict[str, Any]:
    """Both sizes with the default batch, then (``one_evaluation``) with every event in one batch."""
    from tests.fixtures.postgres import start_postgres_server

    workdir.mkdir(parents=True, exist_ok=True)
    server = start_postgres_server()
    try:
        airflow_url, migrate_seconds = migrated_airflow_db(server, "bench_airflow")
        env = {AIRFLOW_URL: airflow_url}
        dags = max(DAGS, *sizes)
        seeded = run_child(MODULE, {"step": "seed", "dags": dags}, env)
        out: dict[str, Any] = {
            "events": events,
            "sizes": list(sizes),
            "airflow_db": {"migrate_seconds": round(migrate_seconds, 1), "seeded": seeded},
            "by_size": {},
            "one_evaluation": {},
            "setup_seconds": {},
        }
        variants = [("by_size", None), ("one_evaluation", events)][: 2 if one_evaluation else 1]
        for size in sizes:
            template = f"bench_scale_eval_template_{size}"
            out["setup_seconds"][str(size)] = _prepare(server.new_database(template), size, events)
            for variant, batch_size in variants:
                copy = f"bench_scale_eval_{size}_{variant}"
                measure = {"step": "measure", "integrations": size, "events": events}
                measure.update(batch_size=batch_size, store_url=server.new_database(copy, template=template))
                out[variant][str(size)] = run_child(MODULE, measure, env)
                server.drop_database(copy)
    finally:
        server.remove()
    if one_evaluation:
        one_first, one_last = (out["one_evaluation"][str(s)] for s in (sizes[0], sizes[-1]))
        out["one_evaluation_ratio"] = round(one_last["ms_per_event"] / one_first["ms_per_event"], 3)
    first, last = (out["by_size"][str(s)] for s in (sizes[0], sizes[-1]))
    out["ratio_largest_vs_smallest"] = round(last["ms_per_event"] / first["ms_per_event"], 3)
    out["ms_per_event_largest"] = last["ms_per_event"]
    out["met"] = {
        "ms_per_event": last["ms_per_event"] <= TARGET_MS_PER_EVENT,
        "ratio": out["ratio_largest_vs_smallest"] <= TARGET_RATIO,
    }
    out["status"] = "measured"
    return out


def describe(result: dict[str, Any]) -> list[str]:
    lines = []
    for size, r in [*result["by_size"].items(), *result["one_evaluation"].items()]:
        trips = r["store_round_trips_per_event"]
        spent = r["seconds_in"]
        lines.append(
            f"{int(size):,} integrations, {r['events']:,} events in {r['passes']} pass(es), "
            f"{r['batches']} batch(es) of {r['batch_size']}: "
            f"{r['seconds']:.2f} s = {r['ms_per_event']:.3f} ms/event; store per event: "
            f"{trips['statements']} statements, {trips['commits']} commits, {trips['checkouts']} checkouts; "
            f"lookup {spent['dag_status_lookup']:.2f} s ({r['airflow_db_statements']} statements), "
            f"rules {spent['rules']:.2f} s, store+service {spent['store_and_service']:.2f} s; "
            f"{r['notifications_written']:,} notifications written"
        )
    return lines


def main() -> None:
    from bench.common import isolate_environment, remove_home

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 integrations, 10,000 events")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(json.loads(args.child))
        return
    home = isolate_environment()
    try:
        result = (
            run(home / "scale_evaluation", sizes=(100, 1_000), events=10_000)
            if args.quick
            else run(home / "scale_evaluation")
        )
    finally:
        remove_home(home)
    for line in describe(result):
        print(line)
    print(
        f"largest: {result['ms_per_event_largest']:.3f} ms/event (target <= {TARGET_MS_PER_EVENT}); "
        f"per event largest/smallest {result['ratio_largest_vs_smallest']:.2f}x (target <= {TARGET_RATIO}x)"
    )
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
