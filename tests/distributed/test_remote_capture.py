"""Capture on workers WITHOUT store settings, through the api-server's ingest API (real Airflow).

Started once for the module: ``airflow api-server`` (Execution API + the plugin's ingest API),
``airflow dag-processor`` and ``airflow scheduler`` with :class:`~tests.fixtures.isolated_executor.
IsolatedWorkerExecutor`: its worker processes (which fork every task supervisor and task) run without
``AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN``, with ``capture_path = api``, their own spool directory (another
host's disk) and an ingest URL through a TCP proxy the test can close. The scheduler and the
api-server keep the store URL (their direct path). The store is not at the SQLite default path, so
the worker cannot find it by accident.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_failnotify.core.model import EventKind
from tests.fixtures.airflow_env import REPO_ROOT, AirflowEnv, free_port, wait_for
from tests.fixtures.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.distributed]

DAGS = Path(__file__).parent / "dags"
CAPTURE, ATTACKER = "failnotify_remote_capture", "failnotify_remote_attacker"
SPOOL, OK = "failnotify_remote_spool", "failnotify_remote_ok"


class Stack:
    def __init__(self, env: AirflowEnv, port: int, proxy: TcpProxy, worker_spool: Path) -> None:
        self.env, self.port, self.proxy, self.worker_spool = env, port, proxy, worker_spool

    def metadata(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        try:
            with sqlite3.connect(f"file:{self.env.home / 'airflow.db'}?mode=ro", uri=True, timeout=5) as conn:
                return list(conn.execute(sql, args).fetchall())
        except sqlite3.Error:
            return []

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        rows = self.metadata("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", dag_id, run_id)
        return rows[0][0] if rows else None

    def trigger(self, dag_id: str, run_id: str) -> None:
        self.env.airflow("dags", "unpause", dag_id)
        self.env.airflow("dags", "trigger", dag_id, "--run-id", run_id)

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 150) -> str:
        try:
            wait_for(lambda: self.run_state(dag_id, run_id) in ("success", "failed"), timeout=timeout,
                     interval=1, what=f"{dag_id} {run_id} finished")
        except TimeoutError:
            pytest.fail(f"{dag_id} {run_id} did not finish\n--- scheduler\n{self.env.log_tail('scheduler')}"
                        f"\n--- api-server\n{self.env.log_tail('api-server')}")
        return str(self.run_state(dag_id, run_id))

    def task_log(self, dag_id: str, run_id: str) -> str:
        texts = []
        for path in sorted((self.env.home / "logs").glob(f"dag_id={dag_id}/run_id={run_id}/**/*.log")):
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
        return "\n".join(texts)

    def capture_errors(self) -> list[Any]:
        rows, _total = self.env.store().list_errors(category="capture", limit=500)
        return rows


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, airflow_db_template: Path) -> Iterator[Stack]:
    import shutil

    home = tmp_path_factory.mktemp("remote-capture") / "airflow-home"
    home.mkdir()
    shutil.copyfile(airflow_db_template, home / "airflow.db")
    port, proxy_port = free_port(), free_port()
    worker_spool = home / "worker-spool"
    worker_env = {
        "unset": ["AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN"],
        "set": {
            "AIRFLOW__FAILNOTIFY__CAPTURE_PATH": "api",
            "AIRFLOW__FAILNOTIFY__INGEST_URL": f"http://127.0.0.1:{proxy_port}/failnotify/ingest",
            "AIRFLOW__FAILNOTIFY__SPOOL_DIR": str(worker_spool),
        },
    }
    env = AirflowEnv(home=home, dags_folder=DAGS, extra_env={
        "AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'store' / 'failnotify-store.db'}",
        "AIRFLOW__CORE__EXECUTOR": "tests.fixtures.isolated_executor.IsolatedWorkerExecutor",
        "FAILNOTIFY_TEST_WORKER_ENV": json.dumps(worker_env),
        "PYTHONPATH": str(REPO_ROOT),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
    })
    env.store().migrate()
    for dag_id in (CAPTURE, SPOOL, OK):
        env.register(dag_id)
    proxy = TcpProxy(port, proxy_port).open()
    try:
        env.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
        env.start("dag-processor", "dag-processor")
        env.start("scheduler", "scheduler", "--skip-serve-logs")
        wait_for(lambda: _healthy(port), timeout=120, what="api-server health")
        stack = Stack(env, port, proxy, worker_spool)
        wait_for(lambda: len(stack.metadata("SELECT dag_id FROM dag WHERE dag_id LIKE 'failnotify_remote_%'"))
                 == 4, timeout=120, interval=1, what="remote dags parsed")
        yield stack
    finally:
        proxy.close()
        env.close()


def test_failures_and_entity_reports_are_captured_with_no_store_url_on_the_worker(stack: Stack) -> None:
    started = time.monotonic()
    stack.trigger(CAPTURE, "remote_1")
    assert stack.wait_run(CAPTURE, "remote_1") == "failed"
    wait_for(lambda: len([e for e in stack.env.events(CAPTURE) if e.kind is not EventKind.RUN_FAILED]) >= 4,
             timeout=30, what="task-side events recorded")
    events = stack.env.events(CAPTURE)
    sources = stack.env.event_sources()
    print(f"\nremote capture: {time.monotonic() - started:.1f} s; "
          + ", ".join(f"{e.kind.value}/{e.task_id}/{e.try_number}/{sources[e.id]}" for e in events))
    failed = [e for e in events if e.kind is EventKind.TASK_FAILED]
    tasks = sorted((e.try_number, e.is_final, sources[e.id]) for e in failed)
    assert tasks == [(1, False, "task"), (2, True, "task")]
    assert {e.error_message for e in events if e.kind is EventKind.TASK_FAILED} == {
        "ValueError: failed on a worker without store settings, try 1",
        "ValueError: failed on a worker without store settings, try 2",
    }
    assert sorted(e.entity for e in events if e.kind is EventKind.ENTITY_FAILED) == ["row-1", "row-2"]
    assert [sources[e.id] for e in events if e.kind is EventKind.RUN_FAILED] == ["scheduler"]
    assert "store settings reached the worker" not in stack.task_log(CAPTURE, "remote_1")


def test_a_task_cannot_post_another_dags_event_nor_read_or_change_configuration(stack: Stack) -> None:
    stack.trigger(ATTACKER, "attack_1")
    state = stack.wait_run(ATTACKER, "attack_1")
    log = stack.task_log(ATTACKER, "attack_1")
    line = next((x for x in log.splitlines() if "FAILNOTIFY_ATTACK_RESULTS " in x), "")
    print(f"\nattack results: {line.split('FAILNOTIFY_ATTACK_RESULTS ', 1)[-1][:600]}")
    assert state == "success", log[-3000:]
    for attempt in ("foreign event", "forged identity", "dag status", "GET /v1/registrations",
                    "POST /v1/registrations", "PUT /v1/config", "views", "store"):
        assert f"{attempt}=refused" in line, (attempt, line)
    assert "ACCEPTED" not in line
    assert not [e for e in stack.env.events(CAPTURE) if e.run_id == "forged_run"]
    reasons = " | ".join(row.reason for row in stack.capture_errors())
    assert "sent an event of failnotify_remote_capture.twice (forged_run" in reasons
    assert "unknown task instance" in reasons
    assert "failnotify_remote_attacker.attack asked for DAG status; only the notification DAG may" in reasons
    assert "GET /v1/registrations: no such ingest route" in reasons


def test_unreachable_ingest_spools_loudly_and_nothing_is_lost_once_it_is_back(stack: Stack) -> None:
    stack.proxy.close()
    try:
        stack.trigger(SPOOL, "unreachable_1")
        assert stack.wait_run(SPOOL, "unreachable_1") == "failed"
        wait_for(lambda: any(e.kind is EventKind.RUN_FAILED for e in stack.env.events(SPOOL)), timeout=30,
                 what="run failure recorded by the scheduler")
        during = stack.env.events(SPOOL)
        log = stack.task_log(SPOOL, "unreachable_1")
    finally:
        stack.proxy.open()
    spooled = list((stack.worker_spool / "ingest").glob("*.jsonl"))
    assert spooled, "nothing spooled on the worker"
    assert "failnotify: capture unavailable on" in log and "ERROR" in log.upper()
    reconciled = [e for e in during if e.kind is EventKind.TASK_FAILED]
    assert [e.try_number for e in reconciled] == [2], during  # the final try, by reconciliation
    assert reconciled[0].error_message.startswith("capture unavailable on ")
    rows = stack.capture_errors()
    assert any("capture unavailable on" in row.reason and SPOOL in row.reason for row in rows)

    stack.trigger(OK, "back_1")  # the next task on that worker replays the spool through the API
    assert stack.wait_run(OK, "back_1") == "success"
    wait_for(lambda: len(stack.env.events(SPOOL)) >= 5, timeout=60, what="spool replayed through the API")
    after = stack.env.events(SPOOL)
    print("\nafter replay: " + ", ".join(f"{e.kind.value}/{e.try_number}/{e.entity}" for e in after))
    assert sorted(e.try_number for e in after if e.kind is EventKind.TASK_FAILED) == [1, 2]
    assert sorted(e.entity for e in after if e.kind is EventKind.ENTITY_FAILED) == ["row-1", "row-2"]
    assert not list((stack.worker_spool / "ingest").glob("*.jsonl*"))
