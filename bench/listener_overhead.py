"""What the capture listener costs Airflow: warm (median/p99 per hook call) and cold (first event in a fresh
process). SQLite store in a temp dir; the hooks get a task instance with RuntimeTaskInstance's attributes.

    .venv/bin/python bench/listener_overhead.py [--events 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAG_ID = "bench_listener_dag"

COLD_SCRIPT = r"""
import time
t0 = time.perf_counter()
import airflow.sdk  # a task process has imported Airflow and the Task SDK before any hook runs
t1 = time.perf_counter()
from types import SimpleNamespace
from datetime import datetime, timezone
from airflow_failnotify.listeners import capture
t2 = time.perf_counter()
ti = SimpleNamespace(dag_id=%(dag)r, run_id="cold", task_id="t", map_index=-1, rendered_map_index=None,
                     try_number=1, max_tries=0, state="failed", end_date=datetime.now(timezone.utc))
try:
    raise ValueError("cold")
except ValueError as err:
    capture.on_task_instance_failed(previous_state="running", task_instance=ti, error=err)
t3 = time.perf_counter()
capture.on_task_instance_success(previous_state="running", task_instance=ti)
t4 = time.perf_counter()
import json
print(json.dumps({"import_airflow": t1 - t0, "import_capture": t2 - t1, "first_event": t3 - t2,
                  "second_call": t4 - t3}))
"""


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--cold-runs", type=int, default=3)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="failnotify-bench-listener-"))
    os.environ["AIRFLOW_HOME"] = str(workdir)
    os.environ["AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN"] = f"sqlite:///{workdir / 'failnotify.db'}"
    os.environ["AIRFLOW__FAILNOTIFY__SPOOL_DIR"] = str(workdir / "spool")
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

    from datetime import datetime, timezone
    from types import SimpleNamespace

    from airflow_failnotify.core.model import DirectionSettings, Registration
    from airflow_failnotify.listeners import capture
    from airflow_failnotify.store.engine import create_store_engine
    from airflow_failnotify.store.store import Store

    store = Store(create_store_engine(os.environ["AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN"]))
    store.migrate()
    store.save_registration(
        Registration(
            integration=DAG_ID,
            forward=DirectionSettings(smtp_conn_id="smtp", recipients=("ops@example.com",)),
        )
    )

    def ti(index: int, dag_id: str = DAG_ID) -> SimpleNamespace:
        return SimpleNamespace(
            dag_id=dag_id,
            run_id="warm",
            task_id="t",
            map_index=index,
            rendered_map_index=None,
            try_number=1,
            max_tries=0,
            state="failed",
            start_date=datetime.now(timezone.utc),
            end_date=datetime.now(timezone.utc),
        )

    def error() -> BaseException:
        try:
            raise ValueError("warm failure")
        except ValueError as err:
            return err

    capture.on_task_instance_running(previous_state=None, task_instance=ti(-1))  # warm up: engine, schema

    results: dict[str, list[float]] = {
        "on_task_instance_failed (registered)": [],
        "on_task_instance_running (activity)": [],
        "on_task_instance_failed (unregistered DAG)": [],
    }
    for index in range(args.events):
        err = error()
        started = time.perf_counter()
        capture.on_task_instance_failed(previous_state="running", task_instance=ti(index), error=err)
        results["on_task_instance_failed (registered)"].append(time.perf_counter() - started)
        started = time.perf_counter()
        capture.on_task_instance_running(previous_state=None, task_instance=ti(index))
        results["on_task_instance_running (activity)"].append(time.perf_counter() - started)
        started = time.perf_counter()
        capture.on_task_instance_failed(previous_state="running", task_instance=ti(index, "other"), error=err)
        results["on_task_instance_failed (unregistered DAG)"].append(time.perf_counter() - started)
    recorded = len([e for e in store.list_events(failures_only=False, limit=10_000)[0] if e.run_id == "warm"])
    assert recorded == args.events, f"{recorded} events recorded, expected {args.events}"

    print(f"warm, {args.events} calls each, SQLite store ({workdir}):")
    for name, values in results.items():
        print(
            f"  {name:45s} median {statistics.median(values) * 1000:6.2f} ms   "
            f"p99 {percentile(values, 99) * 1000:6.2f} ms   max {max(values) * 1000:6.2f} ms"
        )

    print(f"cold (fresh interpreter per run, {args.cold_runs} runs):")
    env = dict(os.environ)
    for run in range(args.cold_runs):
        output = (
            subprocess.run(
                [sys.executable, "-c", COLD_SCRIPT % {"dag": DAG_ID}],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        cold = json.loads(output)
        print(
            f"  run {run + 1}: import airflow.sdk {cold['import_airflow'] * 1000:7.1f} ms, "
            f"import capture {cold['import_capture'] * 1000:6.1f} ms, "
            f"first event {cold['first_event'] * 1000:6.1f} ms, "
            f"next call {cold['second_call'] * 1000:5.1f} ms"
        )


if __name__ == "__main__":
    main()
