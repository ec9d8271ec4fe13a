"""Faults injected into a running Airflow (api-server, dag-processor, scheduler, triggerer; LocalExecutor,
SQLite store): a notification pass killed with SIGKILL in the middle of its page, and the store file
moved away under the scheduler and task processes, then back. Counted: due, sent, received, duplicates,
lost."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from airflow_failnotify.core.model import EventKind, OutboxState
from airflow_failnotify.store import tables as t
from devtools.smtp_server import DevSmtpServer
from tests.fixtures.airflow_env import AirflowEnv, free_port, wait_for
from tests.fixtures.mail import SMTP_PASSWORD, SMTP_USER
from tests.fixtures.soak import Summary
from tests.reliability.helpers import register, run_failures

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAGS = Path(__file__).resolve().parent / "fault_dags"
NOTIFICATION_DAG = "failnotify_post_failure_notification"
LEASE_SECONDS = 20
SCHEDULE_SECONDS = 60  # "* * * * *"
PAGE = 40
RUNS = 3


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def airflow_rows(env: AirflowEnv, query: str, *args: Any) -> list[Any]:
    try:
        with sqlite3.connect(f"file:{env.home / 'airflow.db'}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(query, args).fetchall()
    except sqlite3.Error:
        return []


def outbox_rows(env: AirflowEnv) -> list[Any]:
    with env.store().engine.connect() as conn:
        return list(conn.execute(select(t.outbox.c.id, t.outbox.c.state, t.outbox.c.claimed_by)))


def pid_of_the_sending_pass(env: AirflowEnv) -> int | None:
    for row in outbox_rows(env):
        if row.state == OutboxState.SENDING.value and row.claimed_by:
            return int(row.claimed_by.split("#")[0].split(":")[1])  # host:pid:thread#token
    return None


@pytest.mark.timeout(900)
def test_faults_injected_into_a_running_airflow(
    airflow_env: AirflowEnv, tmp_path: Path, summary: Summary
) -> None:
    env = airflow_env
    env.dags_folder = DAGS
    port = free_port()
    slow_down = [0.3]

    def slow(_message: object) -> None:
        time.sleep(slow_down[0])  # a slow server, so the pass is still mid-page when it is killed

    with DevSmtpServer(users={SMTP_USER: SMTP_PASSWORD}, on_message=slow) as smtp:
        conn = {
            "conn_type": "failnotify_smtp",
            "host": smtp.host,
            "port": smtp.port,
            "login": SMTP_USER,
            "password": SMTP_PASSWORD,
            "extra": {"auth_type": "basic", "from_email": "robot@failnotify.test", "security": "none"},
        }
        env.extra_env.update(
            {
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__FAILNOTIFY__IMMEDIATE_POLL_SECONDS": "1",
                "AIRFLOW__FAILNOTIFY__LEASE_SECONDS": str(LEASE_SECONDS),
                "AIRFLOW__FAILNOTIFY__NOTIFICATION_SCHEDULE": "* * * * *",
                "AIRFLOW_CONN_MAIL_FAULTS": json.dumps(conn),
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            }
        )
        store = env.store()
        register(store, "mail_faults", integration="fault_page")
        immediate: dict[str, Any] = {"global": {"notify_immediately": True}}
        register(store, "mail_faults", integration="fault_failing", **immediate)
        try:
            env.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port))
            env.start("dag-processor", "dag-processor")
            env.start("scheduler", "scheduler", "--skip-serve-logs")
            env.start("triggerer", "triggerer", "--skip-serve-logs")
            wait_for(lambda: healthy(port), timeout=120, what="api-server health")
            wait_for(
                lambda: airflow_rows(env, "SELECT 1 FROM dag WHERE dag_id = ?", NOTIFICATION_DAG)
                and airflow_rows(env, "SELECT 1 FROM dag WHERE dag_id = 'fault_failing'"),
                timeout=120,
                interval=1,
                what="DAGs parsed",
            )
            _kill_a_pass_mid_page(env, smtp, summary)
            slow_down[0] = 0.0
            _move_the_store_file_away_and_back(env, summary)
        except TimeoutError as err:
            logs = f"--- scheduler\n{env.log_tail('scheduler')}\n--- triggerer\n{env.log_tail('triggerer')}"
            pytest.fail(f"{err}\n{logs}")
        finally:
            env.stop_all()


def _kill_a_pass_mid_page(env: AirflowEnv, smtp: DevSmtpServer, summary: Summary) -> None:
    """40 immediate notifications: the trigger starts a pass; it is killed (SIGKILL) after a few mails.
    Airflow itself (the every-minute schedule) must start the pass that sends the rest."""
    store = env.store()
    store.record_events(run_failures(PAGE, dag_id="fault_page"))
    wait_for(lambda: len(smtp.messages) >= 5 and pid_of_the_sending_pass(env), timeout=180, interval=0.2,
             what="a pass sending its page")
    pid = pid_of_the_sending_pass(env)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    received_at_kill = len(smtp.messages)
    # The bound is the lease plus one schedule interval; the slack covers the task's start-up and
    # a scheduler that creates the minute's run late on a loaded 2-core machine (seen: up to a minute).
    bound = LEASE_SECONDS + SCHEDULE_SECONDS + 60
    wait_for(
        lambda: sum(r.state == OutboxState.SENT.value for r in outbox_rows(env)) == PAGE,
        timeout=bound + 60,
        interval=1,
        what="every notification of the killed page sent",
    )
    seconds = time.monotonic() - killed_at
    ids = Counter(m.message["Message-ID"] for m in smtp.messages)
    with store.engine.connect() as conn:
        due = {row.message_id for row in conn.execute(select(t.outbox.c.message_id))}
        triggers = [row.trigger for row in conn.execute(select(t.notification_pass.c.trigger))]
    duplicates = sum(ids.values()) - len(ids)
    lost = len(due - set(ids))
    summary.record(
        f"kill -9 of a pass mid-page of {PAGE}, running Airflow (lease {LEASE_SECONDS} s, 1 min schedule)",
        f"an Airflow-started pass sends the rest within lease + 1 interval "
        f"({LEASE_SECONDS + SCHEDULE_SECONDS} s, {bound} s allowed); <= 1 dup, 0 lost",
        f"due {len(due)} received {sum(ids.values())} dup {duplicates} lost {lost}; killed after "
        f"{received_at_kill}; rest sent {seconds:.0f} s later by {'/'.join(sorted(set(triggers)))} passes",
        ok=duplicates <= 1 and lost == 0 and seconds <= bound,
    )
    assert lost == 0 and duplicates <= 1, (duplicates, lost)
    assert seconds <= bound, seconds
    assert "cli" not in triggers  # every pass was started by Airflow, none by the test


def _move_the_store_file_away_and_back(env: AirflowEnv, summary: Summary) -> None:
    """The store file disappears under the running scheduler and task processes while integrations
    fail: their events wait in the spool (never written to the vanished file, never recreated), and
    reach the store once the file is back."""
    store_file = Path(env.store_url.removeprefix("sqlite:///"))
    aside = store_file.with_name("failnotify.db.aside")
    before = {e.run_id for e in env.events("fault_failing")}
    store_file.rename(aside)
    try:
        for n in range(RUNS):
            env.airflow("dags", "trigger", "fault_failing", "--run-id", f"away_{n}")
        wait_for(
            lambda: len(airflow_rows(env, "SELECT 1 FROM dag_run WHERE dag_id = 'fault_failing' "
                                          "AND run_id LIKE 'away_%' AND state = 'failed'")) == RUNS,
            timeout=240,
            interval=1,
            what="the runs failed while the store was away",
        )
        recreated = store_file.exists()
        spooled = sum(1 for p in env.spool_dir.glob("*.jsonl*") for _ in p.open())
    finally:
        if not store_file.exists():
            aside.rename(store_file)
    # Any later successful write replays the spool; a new run of the DAG is one.
    env.airflow("dags", "trigger", "fault_failing", "--run-id", "back_0")

    def recorded() -> dict[str, set[str]]:
        kinds: dict[str, set[str]] = {}
        for event in env.events("fault_failing"):
            if event.run_id.startswith("away_"):
                kinds.setdefault(event.kind.value, set()).add(event.run_id)
        return kinds

    want = {f"away_{n}" for n in range(RUNS)}
    with contextlib.suppress(TimeoutError):  # counted below
        wait_for(
            lambda: recorded().get(EventKind.RUN_FAILED.value) == want
            and recorded().get(EventKind.TASK_FAILED.value) == want,
            timeout=240,
            interval=1,
            what="the spooled events in the store",
        )
    got = recorded()
    kinds = (EventKind.RUN_FAILED, EventKind.TASK_FAILED)
    lost = sum(len(want - got.get(kind.value, set())) for kind in kinds)
    logs = env.log_tail("scheduler", 200_000)
    told = "was deleted while this process used it" in logs or "does not exist" in logs
    summary.record(
        f"SQLite store file moved away under a running Airflow for {RUNS} failing runs, then back",
        "events spooled, none written to the vanished file, file not recreated; all recorded after; "
        "a clear message in the scheduler log",
        f"{spooled} spooled lines; recreated {recreated}; run+task failures lost {lost}; in log {told}",
        ok=lost == 0 and not recreated and told,
    )
    assert not before & want
    assert not recreated, "the store file was recreated while it was away"
    assert lost == 0, got
    assert told, logs[-3000:]
