"""The watchdog and the health on a real running Airflow (api-server, dag-processor, scheduler,
triggerer) with the dev SMTP server, in one stack start:

1. a registered DAG whose file gets a syntax error yields one "Broken DAG" mail and no inactivity mail;
2. a deleted DAG and a missing connection are flagged in `failnotify health --json`, `failnotify config
   list` and the Integrations view; the unauthenticated health JSON names nothing;
3. pausing the notification DAG past its (test-sized) bound mails the admin once, unpausing once more;
4. the store unreachable past its bound mails the admin directly, once, and once when it is back.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from devtools.smtp_server import DevSmtpServer
from tests.fixtures.airflow_env import VENV_BIN, AirflowEnv, free_port, wait_for

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

E2E_DAGS = Path(__file__).resolve().parent / "dags"
NOTIFICATION_DAG = "failnotify_post_failure_notification"
PASS_LATE_SECONDS = 75  # the default is 2 x the schedule (120 s for * * * * *); configurable down
STORE_DOWN_SECONDS = 10
ADMIN_PASSWORD = "watchdog-admin-pw-4f9Qz"

QUIET_DAG = """from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("{dag_id}", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
    EmptyOperator(task_id="noop")
"""


def http(url: str, *, token: str | None = None, cookie: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if cookie:
        request.add_header("Cookie", f"_token={cookie}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except (urllib.error.URLError, OSError):
        return 0, ""


def parsed(env: AirflowEnv, *dag_ids: str) -> bool:
    try:
        with sqlite3.connect(f"file:{env.home / 'airflow.db'}?mode=ro", uri=True, timeout=5) as conn:
            found = {row[0] for row in conn.execute("SELECT dag_id FROM dag WHERE is_stale = 0")}
    except sqlite3.Error:
        return False
    return set(dag_ids) <= found


def failnotify(env: AirflowEnv, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "python"), "-m", "airflow_failnotify", *args],
        env=env.env(), cwd=env.home, capture_output=True, text=True, timeout=120, check=False,
    )


def subjects(smtp: DevSmtpServer) -> list[str]:
    return [m.subject for m in smtp.messages]


def admin_mails(smtp: DevSmtpServer) -> list[str]:
    return [m.subject for m in smtp.messages if m.rcpt_tos == ["admin@example.com"]]


def token(port: int) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/auth/token", method="POST",
        data=json.dumps({"username": "admin", "password": ADMIN_PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.loads(response.read())["access_token"])


def flags_of(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["integration"], f["problem"]) for f in report["flags"]}


@pytest.mark.timeout(900)
def test_watchdog_health_and_broken_dags_on_a_running_airflow(
    airflow_env: AirflowEnv, smtp_server: DevSmtpServer, tmp_path: Path
) -> None:
    from airflow_failnotify.core.config import parse_registration

    env = airflow_env
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(E2E_DAGS / "failure_notification.py", dags / "failure_notification.py")
    for dag_id in ("wd_broken", "wd_deleted", "wd_conn"):
        (dags / f"{dag_id}.py").write_text(QUIET_DAG.format(dag_id=dag_id), encoding="utf-8")
    env.dags_folder = dags
    port = free_port()
    conn = {
        "conn_type": "failnotify_smtp", "host": smtp_server.host, "port": smtp_server.port,
        "login": "robot@failnotify.test", "password": "smtp-password-Xb7mQ2pL9",
        "extra": {"auth_type": "basic", "from_email": "robot@failnotify.test", "security": "none"},
    }
    (env.home / "passwords.json").write_text(json.dumps({"admin": ADMIN_PASSWORD}), encoding="utf-8")
    env.extra_env.update({
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(env.home / "passwords.json"),
        "AIRFLOW_CONN_MAIL_E2E": json.dumps(conn),
        "AIRFLOW__FAILNOTIFY__NOTIFICATION_SCHEDULE": "* * * * *",
        "AIRFLOW__FAILNOTIFY__ADMIN_EMAILS": "admin@example.com",
        "AIRFLOW__FAILNOTIFY__ADMIN_SMTP_CONN_ID": "mail_e2e",
        "AIRFLOW__FAILNOTIFY__WATCHDOG_INTERVAL": "2",
        "AIRFLOW__FAILNOTIFY__WATCHDOG_PASS_LATE_AFTER": str(PASS_LATE_SECONDS),
        "AIRFLOW__FAILNOTIFY__WATCHDOG_STORE_DOWN_AFTER": str(STORE_DOWN_SECONDS),
    })

    def register(dag_id: str, smtp_conn_id: str = "mail_e2e", **global_: Any) -> None:
        env.store().save_registration(parse_registration({
            "integration": dag_id, "smtp_conn_id": smtp_conn_id, "recipients": "ops@example.com",
            "subject_prefix": "[WD]", "global": {"enabled": True, **global_},
        }))

    try:
        env.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
        env.start("dag-processor", "dag-processor")
        env.start("scheduler", "scheduler", "--skip-serve-logs")
        env.start("triggerer", "triggerer", "--skip-serve-logs")
        wait_for(lambda: parsed(env, NOTIFICATION_DAG, "wd_broken", "wd_deleted", "wd_conn"),
                 timeout=180, interval=1, what="DAGs parsed")
        wait_for(lambda: env.store().last_pass() is not None, timeout=150, interval=1, what="a first pass")

        # 1 + 2: break one DAG, delete one, point one at a connection that does not exist.
        register("wd_broken", inactivity_minutes=1)
        register("wd_deleted")
        register("wd_conn", smtp_conn_id="no_such_smtp")
        # Keep "airflow" and "DAG" in the file: Airflow's safe mode skips a file without them.
        broken = 'from airflow.sdk import DAG\n\nwith DAG("wd_broken" schedule=None):\n    pass\n'
        (dags / "wd_broken.py").write_text(broken, encoding="utf-8")
        (dags / "wd_deleted.py").unlink()
        wait_for(lambda: "[WD] Broken DAG: wd_broken (forward)" in subjects(smtp_server),
                 timeout=180, interval=1, what="the Broken DAG mail")
        broken_mail = next(m for m in smtp_server.messages if "Broken DAG" in m.subject)
        assert "SyntaxError" in broken_mail.message.get_body(("plain",)).get_content()

        def health() -> dict[str, Any]:
            result = failnotify(env, "health", "--json")
            return dict(json.loads(result.stdout), exit_code=result.returncode)

        expected = {
            ("wd_broken", "dag_broken"), ("wd_deleted", "dag_missing"), ("wd_conn", "connection_missing")
        }

        last: list[set[tuple[str, str]]] = [set()]

        def flagged_health() -> dict[str, Any] | None:
            report = health()
            last[0] = flags_of(report)
            return report if expected <= last[0] else None

        try:
            report = wait_for(flagged_health, timeout=90, interval=2, what="flags in health --json")
        except TimeoutError as err:
            raise TimeoutError(f"{err}; flags seen last: {sorted(last[0])}") from err
        assert report["exit_code"] == {"ok": 0, "warn": 1, "bad": 2}[report["status"]]
        listing = failnotify(env, "config", "list").stdout
        assert "wd_deleted" in listing and "FLAGGED(forward): DAG wd_deleted not found in Airflow" in listing
        assert "FLAGGED(forward): connection no_such_smtp not found" in listing
        status, body = http(f"http://127.0.0.1:{port}/failnotify/health/")
        minimal = json.loads(body)
        assert set(minimal) == {"status", "last_pass_age_seconds", "checked_at"} and "wd_" not in body
        assert status in (200, 503)
        jwt = token(port)
        assert http(f"http://127.0.0.1:{port}/failnotify/health/details")[0] in (401, 403)
        status, body = http(f"http://127.0.0.1:{port}/failnotify/health/details", token=jwt)
        assert expected <= flags_of(json.loads(body))
        status, page = http(f"http://127.0.0.1:{port}/pluginsv2/failnotify/", cookie=jwt)
        assert status == 200, page[-2000:]
        for integration, problem in expected:
            assert f'data-flag="{problem}" data-integration="{integration}"' in page
        assert 'id="failnotify-health"' in page

        # 3: the notification DAG paused past its bound: one admin mail; unpaused: one more.
        assert admin_mails(smtp_server) == []
        env.airflow("dags", "pause", NOTIFICATION_DAG)
        wait_for(lambda: admin_mails(smtp_server), timeout=PASS_LATE_SECONDS + 90, interval=1,
                 what="the admin mail about the paused DAG")
        (first,) = admin_mails(smtp_server)
        assert first.startswith("[failnotify] Failure notification is not working") and "last_pass" in first
        time.sleep(6)  # more watchdog ticks: still one mail
        assert len(admin_mails(smtp_server)) == 1
        env.airflow("dags", "unpause", NOTIFICATION_DAG)
        wait_for(lambda: len(admin_mails(smtp_server)) >= 2, timeout=150, interval=1,
                 what="the recovery mail")
        assert admin_mails(smtp_server)[1].startswith("[failnotify] Failure notification recovered")

        # 4: the store unreachable: a direct mail within the bound, once; then the recovery mail.
        store_file = Path(env.store_url.removeprefix("sqlite:///"))
        env.store().engine.dispose()
        away = store_file.with_name("failnotify-away.db")
        started = time.monotonic()
        store_file.rename(away)
        try:
            wait_for(lambda: len(admin_mails(smtp_server)) >= 3, timeout=STORE_DOWN_SECONDS + 30,
                     interval=0.5, what="the store-down admin mail")
            took = time.monotonic() - started
            assert "store" in admin_mails(smtp_server)[2]
        finally:
            away.rename(store_file)
        wait_for(lambda: len(admin_mails(smtp_server)) >= 4, timeout=60, interval=1,
                 what="the store recovery mail")
        assert admin_mails(smtp_server)[3].startswith("[failnotify] Failure notification recovered")
        assert len(admin_mails(smtp_server)) == 4
        print(f"\nstore-down admin mail after {took:.1f} s (bound {STORE_DOWN_SECONDS} s + one tick)")
    except TimeoutError as err:
        pytest.fail(f"{err}\n--- scheduler\n{env.log_tail('scheduler', 6000)}\n--- dag-processor\n"
                    f"{env.log_tail('dag-processor')}\nmails: {subjects(smtp_server)}")
    finally:
        env.stop_all()
    # No inactivity mail for the broken DAG, and exactly one Broken DAG mail.
    assert not [s for s in subjects(smtp_server) if "No activity" in s and "wd_broken" in s]
    assert subjects(smtp_server).count("[WD] Broken DAG: wd_broken (forward)") == 1
