"""Failure capture under a REAL scheduler (LocalExecutor), where a task cannot use Airflow's metadata DB.

Started: ``airflow api-server`` (the execution API the LocalExecutor's task supervisors talk to, on
127.0.0.1 and a free port, with ``[core] execution_api_server_url`` pointing at it), ``airflow
dag-processor`` and ``airflow scheduler --skip-serve-logs``. The DAG is unpaused and triggered with the
CLI. One task raises (recorded by the task-side hook), one kills itself with SIGKILL (never reaches the
task-side hook: recorded by the scheduler's reconciliation when the run fails).
"""

from __future__ import annotations

import sqlite3
import time
import urllib.error
import urllib.request

import pytest

from airflow_failnotify.core.model import EventKind
from tests.fixtures.airflow_env import AirflowEnv, free_port, wait_for

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAG_ID = "failnotify_capture_scheduler"


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _parsed(env: AirflowEnv) -> bool:
    """The dag-processor has stored the DAG (read-only look at the test's own metadata DB file)."""
    try:
        with sqlite3.connect(f"file:{env.home / 'airflow.db'}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute("SELECT 1 FROM dag WHERE dag_id = ?", (DAG_ID,)).fetchone()
    except sqlite3.Error:
        return False
    return row is not None


def _recorded(env: AirflowEnv) -> bool:
    """The run's failure is recorded, and so is the killed task (by the scheduler or reconciliation)."""
    events = env.events(DAG_ID)
    return any(e.kind is EventKind.RUN_FAILED for e in events) and any(
        e.kind is EventKind.TASK_FAILED and e.task_id == "killed" for e in events
    )


@pytest.mark.timeout(300)
def test_real_scheduler_records_task_failure_run_failure_and_killed_task(airflow_env: AirflowEnv) -> None:
    env = airflow_env
    port = free_port()
    env.extra_env.update({
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
    })
    env.register(DAG_ID)
    started = time.monotonic()
    try:
        env.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
        env.start("dag-processor", "dag-processor")
        env.start("scheduler", "scheduler", "--skip-serve-logs")
        wait_for(lambda: _healthy(port), timeout=90, what="api-server health")
        wait_for(lambda: _parsed(env), timeout=90, interval=1, what=f"{DAG_ID} parsed")
        env.airflow("dags", "unpause", DAG_ID)
        env.airflow("dags", "trigger", DAG_ID, "--run-id", "manual_capture_1")
        try:
            # The run failure and the reconciled (killed) task are one write (listeners/reconcile.py).
            wait_for(lambda: _recorded(env), timeout=150, interval=1, what="RUN_FAILED and killed recorded")
        except TimeoutError:
            pytest.fail("run or killed task not recorded failed in time\n--- scheduler\n"
                        + env.log_tail("scheduler") + "\n--- api-server\n" + env.log_tail("api-server"))
        events = env.events(DAG_ID)
        sources = env.event_sources()
    finally:
        env.stop_all()
    print(f"\nreal scheduler test: {time.monotonic() - started:.1f} s; events: "
          + ", ".join(f"{e.kind.value}/{e.task_id}/{sources[e.id]}" for e in events))

    by_task = {e.task_id: e for e in events if e.kind is EventKind.TASK_FAILED}
    assert set(by_task) == {"boom", "killed"}, events
    boom, killed = by_task["boom"], by_task["killed"]
    assert sources[boom.id] == "task"
    assert boom.error_message == "ValueError: boom under the real scheduler"
    assert 'raise ValueError("boom under the real scheduler")' in boom.traceback
    assert (boom.try_number, boom.is_final, boom.not_accessible) == (1, True, False)

    assert sources[killed.id] in ("reconcile", "scheduler")
    assert killed.is_final and not killed.not_accessible and killed.error_message

    runs = [e for e in events if e.kind is EventKind.RUN_FAILED]
    assert len(runs) == 1 and sources[runs[0].id] == "scheduler" and runs[0].run_id == "manual_capture_1"
    assert env.activity().get((DAG_ID, "forward")) is not None
    # Nothing waits in the spool (the folder also keeps the schedule cache and, when needed, the outage
    # and sent-journal folders: those are not spooled events).
    assert not env.spool_dir.exists() or not list(env.spool_dir.glob("spool-*"))
