"""Soak case (marker ``soak``: ``make soak``, not in ``make test``): load on a RUNNING Airflow.

Unlike ``test_soak.py`` (events written through the store API, no scheduler), this case drives the
whole product: a real Airflow 3 (api-server, dag-processor, scheduler with LocalExecutor, triggerer) on
SQLite runs FAILNOTIFY_SOAK_INTEGRATIONS (default 20) DAGs ``soak_int_NN`` scheduled every minute, each
with one task that raises ValueError, for FAILNOTIFY_SOAK_MINUTES (default 15) minutes. The listener
captures the failures, the notification DAG (schedule set to every minute through the store setting, plus
the immediate trigger in the triggerer) evaluates and sends to a DevSmtpServer in the test process.

Half the integrations notify immediately, half at 3 consecutive failures; processing notification is on
for all. After the window the soak DAGs are paused, in-flight work drains, Airflow is stopped and one
final pass runs in-process. Reported: runs that actually finished failed (a 2-core machine may not keep
up with every tick: measured, not assumed), events recorded, notifications due, sent, received,
duplicates (0) and lost (0), and the rule invariants for whatever happened.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from airflow_failnotify.core.config import parse_registration
from airflow_failnotify.core.model import EventKind, NotificationKind, OutboxState
from airflow_failnotify.service.passes import run_notification_pass
from airflow_failnotify.store import tables as t
from devtools.smtp_server import DevSmtpServer
from tests.fixtures.airflow_env import AirflowEnv, free_port, wait_for
from tests.fixtures.mail import SMTP_PASSWORD, SMTP_USER
from tests.fixtures.soak import Summary
from tests.reliability.helpers import all_outbox, delivery, no_status

pytestmark = [pytest.mark.soak, pytest.mark.airflow, pytest.mark.timeout(40 * 60)]

DAGS = Path(__file__).resolve().parent / "airflow_dags"
MINUTES = max(1, int(float(os.environ.get("FAILNOTIFY_SOAK_MINUTES", "15"))))
INTEGRATIONS = int(os.environ.get("FAILNOTIFY_SOAK_INTEGRATIONS", "20"))
# "defaults": noise control as a new registration gets it; "off": one mail per notification (the figures
# before noise control, for comparison).
NOISE = os.environ.get("FAILNOTIFY_SOAK_NOISE", "defaults")
NOISE_OFF = {"coalesce": False, "group_wait_seconds": 0, "repeat_interval_minutes": 0}
# "N/M": the storm cap on, N mails per recipient set per M-minute window (empty: off, the default).
STORM = os.environ.get("FAILNOTIFY_SOAK_STORM", "")
PARALLELISM = 4  # LocalExecutor slots: what a 2-core machine can carry next to the four components
THRESHOLD = 3
PREFIX = "[Soak]"
CONN_ID = "mail_soak_airflow"
NOTIFICATION_DAG = "failnotify_post_failure_notification"
UNFINISHED_TI = (
    "scheduled",
    "queued",
    "running",
    "restarting",
    "up_for_retry",
    "up_for_reschedule",
    "deferred",
)


def names() -> list[str]:
    return [f"soak_int_{i:02d}" for i in range(INTEGRATIONS)]


def is_threshold(name: str) -> bool:
    return int(name.rsplit("_", 1)[1]) >= INTEGRATIONS // 2


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def metadata(env: AirflowEnv, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows from Airflow's metadata DB (read-only); [] while it is locked."""
    try:
        with sqlite3.connect(f"file:{env.home / 'airflow.db'}?mode=ro", uri=True, timeout=10) as conn:
            return conn.execute(sql, params).fetchall()
    except sqlite3.Error:
        return []


def parsed(env: AirflowEnv) -> bool:
    rows = metadata(
        env, "SELECT dag_id FROM dag WHERE dag_id LIKE 'soak_int_%' OR dag_id = ?", (NOTIFICATION_DAG,)
    )
    return len(rows) == INTEGRATIONS + 1


def run_states(env: AirflowEnv, dag_like: str = "soak_int_%") -> Counter[str]:
    rows = metadata(
        env, "SELECT state, count(*) FROM dag_run WHERE dag_id LIKE ? GROUP BY state", (dag_like,)
    )
    return Counter({state: n for state, n in rows})


def unfinished_tasks(env: AirflowEnv) -> int:
    marks = ",".join("?" * len(UNFINISHED_TI))
    rows = metadata(
        env,
        f"SELECT count(*) FROM task_instance WHERE dag_id LIKE 'soak_int_%' AND state IN ({marks})",
        UNFINISHED_TI,
    )
    return int(rows[0][0]) if rows else -1


def progress(env: AirflowEnv, smtp: DevSmtpServer, started: float) -> str:
    runs = run_states(env)
    passes = run_states(env, NOTIFICATION_DAG)
    outbox = env.store().outbox_counts()
    return (
        f"[{time.monotonic() - started:6.0f}s] soak runs {dict(runs)}; notification runs {dict(passes)}; "
        f"outbox {{{', '.join(f'{k}: {v}' for k, v in outbox.items() if v)}}}; received {len(smtp.messages)}"
    )


def storm_options() -> dict[str, str]:
    if not STORM:
        return {}
    mails, window = STORM.split("/")
    return {
        "AIRFLOW__FAILNOTIFY__STORM_CAP_MAILS": mails,
        "AIRFLOW__FAILNOTIFY__STORM_CAP_WINDOW_MINUTES": window,
    }


def register_all(env: AirflowEnv) -> None:
    store = env.store()
    for name in names():
        data: dict[str, Any] = {
            "integration": name,
            "smtp_conn_id": CONN_ID,
            "recipients": "ops@example.com",
            "subject_prefix": PREFIX,
            "processing": {"enabled": True},
        }
        if NOISE == "off":
            data["noise"] = NOISE_OFF
        if is_threshold(name):
            data["global"] = {"notify_immediately": False, "failure_count_threshold": THRESHOLD}
        else:
            data["global"] = {"notify_immediately": True}
        store.save_registration(parse_registration(data))
    store.set_setting("notification_schedule", "* * * * *")  # before the dag-processor parses the DAG


def notification_busy(env: AirflowEnv) -> int:
    states = run_states(env, NOTIFICATION_DAG)
    return states["queued"] + states["running"]


def wait_quiet(env: AirflowEnv, *, timeout: float) -> bool:
    """Until no soak task is unfinished and no notification run is queued or running."""
    try:
        wait_for(
            lambda: unfinished_tasks(env) == 0 and notification_busy(env) == 0,
            timeout=timeout,
            interval=3,
            what="drain",
        )
    except TimeoutError:
        return False
    return True


def wait_evaluated(env: AirflowEnv, *, timeout: float) -> bool:
    """Until no event that may need an immediate notification is left unevaluated (False on timeout)."""
    try:
        wait_for(
            lambda: env.store().max_pending_immediate_event_id() == 0,
            timeout=timeout,
            interval=2,
            what="immediate events evaluated",
        )
    except TimeoutError:
        return False
    return True


def _utc(value: str) -> datetime:
    parsed_value = datetime.fromisoformat(value)
    return parsed_value if parsed_value.tzinfo else parsed_value.replace(tzinfo=timezone.utc)


def check(env: AirflowEnv, smtp: DevSmtpServer, summary: Summary, facts: dict[str, Any]) -> list[str]:
    store = env.store()
    soak = set(names())
    events = [e for e in env.events() if e.dag_id in soak]
    run_failed = [e for e in events if e.kind is EventKind.RUN_FAILED]
    final_failures = [
        e for e in events if e.kind in (EventKind.TASK_FAILED, EventKind.ENTITY_FAILED) and e.is_final
    ]
    airflow_failed = {
        (dag_id, run_id)
        for dag_id, run_id in metadata(
            env, "SELECT dag_id, run_id FROM dag_run WHERE dag_id LIKE 'soak_int_%' AND state = 'failed'"
        )
    }
    airflow_failed_tis = metadata(
        env, "SELECT count(*) FROM task_instance WHERE dag_id LIKE 'soak_int_%' AND state = 'failed'"
    )[0][0]
    captured_runs = Counter((e.dag_id, e.run_id) for e in run_failed)
    counts = delivery(store, smtp)
    items = [i for i in all_outbox(store) if i.state is not OutboxState.CLOSED]
    kinds = Counter(i.kind for i in items)
    subjects = Counter(m.subject for m in smtp.messages)
    problems: list[str] = []

    # Capture: every run Airflow finished failed is one RUN_FAILED event, and nothing else is.
    if set(captured_runs) != airflow_failed or any(n != 1 for n in captured_runs.values()):
        problems.append(
            f"RUN_FAILED events {len(run_failed)} ({len(captured_runs)} runs) != Airflow failed runs "
            f"{len(airflow_failed)}"
        )
    if len(final_failures) != airflow_failed_tis:
        problems.append(
            f"final task failures {len(final_failures)} != Airflow failed TIs {airflow_failed_tis}"
        )
    if not run_failed:
        problems.append("no run finished failed: the load never happened")

    # Immediate integrations: one "Job failed" notification per failed run, exactly; threshold ones one
    # per THRESHOLD failures. Counted per outbox row (each in exactly one mail, see `counts`); with noise
    # control off each is its own mail, so the subjects are checked too.
    job_mails = 0
    threshold_expected = threshold_seen = 0
    for name in names():
        runs = {e.run_id for e in run_failed if e.dag_id == name}
        rows = Counter(i.kind for i in items if i.integration == name)
        if is_threshold(name):
            wanted = len(runs) // THRESHOLD
            got = rows[NotificationKind.GLOBAL_THRESHOLD]
            threshold_expected += wanted
            threshold_seen += got
            mails = subjects[f"{PREFIX} {THRESHOLD} consecutive job failures: {name} (forward)"]
            if got != wanted or (NOISE == "off" and mails != wanted):
                problems.append(f"{name}: {got} threshold notifications, {len(runs)} failures, not {wanted}")
            if rows[NotificationKind.GLOBAL_IMMEDIATE]:
                problems.append(f"{name}: a Job failed notification for a threshold integration")
        else:
            got = rows[NotificationKind.GLOBAL_IMMEDIATE]
            job_mails += got
            outbox_runs = Counter(
                i.draft.run_id
                for i in items
                if i.kind is NotificationKind.GLOBAL_IMMEDIATE and i.integration == name
            )
            mails = subjects[f"{PREFIX} Job failed: {name} (forward)"]
            if set(outbox_runs) != runs or any(n != 1 for n in outbox_runs.values()) or (
                NOISE == "off" and mails != len(runs)
            ):
                problems.append(f"{name}: {got} Job failed notifications, {mails} mails, {len(runs)} runs")

    # Processing: every final task failure in exactly one processing mail (coverage table and payloads).
    with store.engine.connect() as conn:
        coverage = {
            row.event_id: row.outbox_id
            for row in conn.execute(
                select(t.outbox_event.c.event_id, t.outbox_event.c.outbox_id).where(
                    t.outbox_event.c.kind == NotificationKind.PROCESSING.value
                )
            )
        }
    in_payloads = Counter(
        e.id
        for i in items
        if i.kind is NotificationKind.PROCESSING and i.dag_id in soak
        for e in i.draft.events
    )
    final_ids = {e.id for e in final_failures}
    if set(in_payloads) != final_ids or any(n != 1 for n in in_payloads.values()):
        problems.append(
            f"processing mails list {sum(in_payloads.values())} failures ({len(in_payloads)} distinct), "
            f"{len(final_ids)} final failures recorded"
        )
    if not final_ids <= set(coverage):
        problems.append(f"{len(final_ids - set(coverage))} final failures missing from outbox_event")
    if not counts.exactly_once:
        problems.append(f"not exactly once: {counts}")
    if facts["left_unfinished"]:
        problems.append("in-flight work did not drain before stop")

    # Throughput: cron ticks while the DAGs were live, runs per tick, lag of each tick's slowest run.
    ticks = INTEGRATIONS * (int(facts["paused_at"] // 60) - int(facts["parsed_at"] // 60) + 1)
    per_tick = metadata(
        env,
        "SELECT run_after, count(*), max(end_date) FROM dag_run "
        "WHERE dag_id LIKE 'soak_int_%' AND state = 'failed' GROUP BY run_after",
    )
    lag = max(((_utc(end) - _utc(tick)).total_seconds() for tick, _n, end in per_tick if end), default=0.0)
    immediate_runs = sum(1 for e in run_failed if not is_threshold(e.dag_id))
    label = f"Airflow load [sqlite] {INTEGRATIONS} integ./min x {MINUTES} min, noise {NOISE}"
    if STORM:
        label += f", storm cap {STORM}"
    per_integration = Counter(
        name for m in smtp.messages for name in soak if f": {name} (forward)" in m.subject
    )
    per_recipient = sum(1 for m in smtp.messages if "ops@example.com" in m.rcpt_tos)
    covered = sum(1 for e in final_ids if e in in_payloads)
    digests = sum(1 for m in smtp.messages if "Storm digest:" in m.subject)
    rows = [
        (
            f"{label}: runs + capture (LocalExecutor, {PARALLELISM} slots)",
            f"{ticks // INTEGRATIONS} cron ticks x {INTEGRATIONS} = {ticks} runs; "
            "each failed run captured once",
            f"{len(airflow_failed)} failed runs / {len(per_tick)} ticks, slowest {lag:.0f}s after tick; "
            f"{len(run_failed)} RUN_FAILED, {len(final_failures)} task failures",
        ),
        (
            f"{label}: delivery (pass every min + immediate trigger)",
            "due = sent = received; dup 0; lost 0",
            f"due {counts.due} sent {counts.sent} received {counts.received} dup {counts.duplicates} "
            f"lost {counts.lost}; {facts['notification_runs']} DAG passes, final pass sent "
            f"{facts['final_pass_sent']}",
        ),
        (
            f"{label}: rules ({INTEGRATIONS // 2} immediate, "
            f"{INTEGRATIONS - INTEGRATIONS // 2} threshold {THRESHOLD})",
            "1 job mail/immediate run; floor(f/3) threshold mails; each failure in 1 processing mail",
            f"job {job_mails} for {immediate_runs} runs; threshold {threshold_seen} of "
            f"{threshold_expected}; {kinds[NotificationKind.PROCESSING]} processing mails list "
            f"{sum(in_payloads.values())}/{len(final_ids)}",
        ),
    ]
    rows.append(
        (
            f"{label}: mails per recipient",
            "every failure in exactly one mail; fewer mails with noise control",
            f"{per_recipient} mails to ops@example.com ({per_recipient / max(MINUTES, 1):.1f}/min), at most "
            f"{max(per_integration.values(), default=0)} per integration, {digests} storm digests; "
            f"{counts.due} notifications; "
            f"final failures covered {covered}/{len(final_ids)}; runs failed {len(run_failed)}",
        )
    )
    if problems:
        rows.append((f"{label}: problems", "none", "; ".join(problems)))
    for case, expected, observed in rows:
        print(f"{case}\n  expected: {expected}\n  observed: {observed}")
        summary.record(case, expected, observed, ok=not problems)
    print(
        f"runs left running at pause (their DAGs paused before the scheduler finished them): "
        f"{facts['left_running']}"
    )
    if len(airflow_failed) < ticks:
        print(f"note: {ticks - len(airflow_failed)} ticks without a finished failed run (machine behind)")
    return problems


def test_load_on_a_running_airflow_sqlite(
    airflow_env: AirflowEnv, summary: Summary, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = airflow_env
    env.dags_folder = DAGS
    port = free_port()
    # The in-process SMTP server logs every command at INFO; the counts below say what matters.
    mail_log = logging.getLogger("mail.log")
    monkeypatch.setattr(mail_log, "level", mail_log.level)  # restored afterwards
    mail_log.setLevel(logging.WARNING)
    with DevSmtpServer(users={SMTP_USER: SMTP_PASSWORD}) as smtp:
        conn = json.dumps(
            {
                "conn_type": "failnotify_smtp",
                "host": smtp.host,
                "port": smtp.port,
                "login": SMTP_USER,
                "password": SMTP_PASSWORD,
                "extra": {"auth_type": "basic", "from_email": SMTP_USER, "security": "none"},
            }
        )
        env.extra_env.update(
            {
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
                "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
                "AIRFLOW_CONN_" + CONN_ID.upper(): conn,
                "FAILNOTIFY_SOAK_INTEGRATIONS": str(INTEGRATIONS),
                **storm_options(),
                # One key for every process (see tests/e2e/test_immediate_path.py).
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            }
        )
        monkeypatch.setenv("AIRFLOW_CONN_" + CONN_ID.upper(), conn)  # for the final in-process pass
        monkeypatch.setenv("AIRFLOW__API__BASE_URL", f"http://127.0.0.1:{port}")
        for option, value in storm_options().items():
            monkeypatch.setenv(option, value)
        register_all(env)
        facts: dict[str, Any] = {}
        started = time.monotonic()
        try:
            env.start(
                "api-server", "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"
            )
            env.start("dag-processor", "dag-processor")
            env.start("scheduler", "scheduler", "--skip-serve-logs")
            env.start("triggerer", "triggerer", "--skip-serve-logs")
            wait_for(lambda: healthy(port), timeout=180, what="api-server health")
            wait_for(lambda: parsed(env), timeout=180, interval=2, what="all DAGs parsed")
            description = metadata(env, "SELECT description FROM dag WHERE dag_id = ?", (NOTIFICATION_DAG,))
            facts["parsed_at"] = time.time()
            print(f"\nparsed after {time.monotonic() - started:.0f}s; notification DAG: {description}")
            window_end = time.monotonic() + MINUTES * 60
            while time.monotonic() < window_end:
                # The load window itself: Airflow runs the soak for MINUTES; a progress line every 30 s.
                time.sleep(min(30.0, max(0.0, window_end - time.monotonic())))
                print(progress(env, smtp, started))
            facts["paused_at"] = time.time()
            env.airflow("dags", "pause", "^soak_int_", "--treat-dag-id-as-regex", "--yes")
            print(f"paused; {progress(env, smtp, started)}")
            # In-flight tasks finish (runs of paused DAGs stay 'running': the scheduler skips them).
            # Then the notification runs the last failures triggered finish too.
            quiet = wait_quiet(env, timeout=240)
            # The trigger polls every 2 s: wait until it (or the schedule) started a pass that evaluated
            # the last events that may need an immediate mail, then for that pass to finish.
            if not wait_evaluated(env, timeout=120):
                print("note: immediate events still unevaluated after 120 s; the final pass takes them")
            quiet = wait_quiet(env, timeout=240) and quiet
            facts["left_unfinished"] = not quiet
            facts["left_running"] = run_states(env)["running"]
            facts["notification_runs"] = sum(run_states(env, NOTIFICATION_DAG).values())
            print(f"drained: {quiet}; {progress(env, smtp, started)}")
        except Exception:
            print(
                "--- scheduler\n"
                + env.log_tail("scheduler")
                + "\n--- triggerer\n"
                + env.log_tail("triggerer")
            )
            raise
        finally:
            env.stop_all()
        # Past every repeat-interval hold and storm-cap window: what noise control still held goes out
        # (each failure once). A pass past a window may hold the next window's share: pass again.
        later, final_sent = datetime.now(timezone.utc), 0
        for _ in range(10):
            later += timedelta(minutes=61)
            final = run_notification_pass(
                trigger="cli", store=env.store(), dag_status=no_status, clock=lambda at=later: at
            )
            final_sent += final.sent
            if not (final.outbox.get("pending") or final.outbox.get("storm_held")):
                break
        facts["final_pass_sent"] = final_sent
        print(f"final pass: {final}; wall {time.monotonic() - started:.0f}s")
        problems = check(env, smtp, summary, facts)
    assert not problems, problems
