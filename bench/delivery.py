"""Item 1: delivery throughput of 500 due notifications to a local SMTP server (store on SQLite).

Variants, each measured ``repeat`` times in turn (after one untimed warm-up round), medians reported:

- ours, Basic Auth: ``run_notification_pass(evaluate=False)`` over an outbox already holding the
  notifications (made by record_events + evaluate): claim in pages, render, send on one connection per
  server and page, durable per-message "sent" mark.
- ours, XOAUTH2: the same with an OAuth 2.0 connection (client-credentials token endpoint).
- native: apache-airflow-providers-smtp's ``SmtpNotifier`` called once per failure, as
  ``on_failure_callback`` calls it (``notifier(context)``, which renders then ``notify``), Basic Auth,
  plaintext: one connection + login per message, like a callback in each failing task.
- raw: a bare smtplib loop, one connection, one login, ``send_message`` of the same rendered messages.
"""

from __future__ import annotations

import json
import os
import shutil
import smtplib
import statistics
from collections.abc import Callable
from email.message import Message
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.common import CC, RECIPIENTS, fill_outbox, no_status, timed
from bench.servers import SMTP_PASSWORD, SMTP_USER, MailServers

BASIC = "bench_basic"
OAUTH = "bench_oauth"
NATIVE = "smtp_default"


def _set_conn(conn_id: str, conn: dict[str, Any]) -> None:
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)


def _template(workdir: Path, name: str, *, pending: int, integrations: int, conn_id: str) -> Path:
    from bench.common import migrated_store

    path = workdir / f"{name}.db"
    store = migrated_store(f"sqlite:///{path}")
    made = fill_outbox(store, pending=pending, integrations=integrations, conn_id=conn_id)
    store.engine.dispose()  # last connection closed: the WAL is checkpointed into the file
    if made != pending:
        raise RuntimeError(f"{made} pending notifications made, {pending} expected")
    return path


def _store_copy(template: Path, target: Path) -> Any:
    from airflow_failnotify.store.engine import create_store_engine
    from airflow_failnotify.store.store import Store

    shutil.copyfile(template, target)
    return Store(create_store_engine(f"sqlite:///{target}", timeout=30))


def _rendered_messages(template: Path, workdir: Path) -> list[Message]:
    from airflow_failnotify.hooks.smtp import FailnotifySmtpHook
    from airflow_failnotify.service.passes import render_message

    store = _store_copy(template, workdir / "render.db")
    items = store.claim("bench-render", limit=1_000_000, lease_seconds=600)
    senders = {
        conn_id: FailnotifySmtpHook(conn_id).settings.from_email
        for conn_id in {i.smtp_conn_id for i in items}
    }
    base_url = "https://airflow.example.com"
    messages = [render_message(i, sender=senders[i.smtp_conn_id], base_url=base_url) for i in items]
    store.engine.dispose()
    return messages


def _native_contexts(count: int) -> list[dict[str, Any]]:
    contexts = []
    for i in range(count):
        ti = SimpleNamespace(
            dag_id=f"bench_sync_{i % 50:04d}",
            task_id="load_records",
            run_id=f"scheduled__r{i:06d}",
            try_number=1,
            max_tries=0,
            state="failed",
            hostname="worker-1",
            log_url=f"https://airflow.example.com/dags/bench_sync_{i % 50:04d}/runs/scheduled__r{i:06d}",
        )
        contexts.append({"ti": ti, "task_instance": ti, "run_id": ti.run_id})
    return contexts


def run(workdir: Path, *, pending: int = 500, integrations: int = 50, repeat: int = 3) -> dict[str, Any]:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    from airflow_failnotify.hooks.oauth2 import clear_token_cache
    from airflow_failnotify.service.passes import run_notification_pass

    workdir.mkdir(parents=True, exist_ok=True)
    with MailServers() as servers:
        _set_conn(BASIC, servers.failnotify_conn(auth_type="basic"))
        _set_conn(OAUTH, servers.failnotify_conn(auth_type="oauth2"))
        _set_conn(NATIVE, servers.airflow_smtp_conn())
        basic_db = _template(workdir, "basic", pending=pending, integrations=integrations, conn_id=BASIC)
        oauth_db = _template(workdir, "oauth", pending=pending, integrations=integrations, conn_id=OAUTH)
        messages = _rendered_messages(basic_db, workdir)
        contexts = _native_contexts(pending)
        run_no = iter(range(1_000_000))

        def ours(template: Path, *, oauth: bool) -> Callable[[], Any]:
            store = _store_copy(template, workdir / f"run{next(run_no)}.db")
            if oauth:
                clear_token_cache()  # the batch starts with no token: it must fetch exactly one

            def go() -> Any:
                summary = run_notification_pass(
                    trigger="bench", store=store, dag_status=no_status, evaluate=False
                )
                if summary.sent != pending:
                    raise RuntimeError(f"ours sent {summary.sent} of {pending}: {summary.errors[:3]}")
                return summary

            return go

        def native() -> None:
            for context in contexts:
                notifier = SmtpNotifier(to=list(RECIPIENTS), cc=list(CC), smtp_conn_id=NATIVE)
                notifier(context)

        def raw() -> None:
            with smtplib.SMTP(servers.smtp_host, servers.smtp_port, timeout=30) as smtp:
                smtp.login(SMTP_USER, SMTP_PASSWORD)
                for message in messages:
                    smtp.send_message(message)

        times: dict[str, list[float]] = {
            "ours_basic": [],
            "ours_xoauth2": [],
            "native": [],
            "raw": [],
        }
        stats: dict[str, dict[str, Any]] = {}
        for round_no in range(repeat + 1):  # round 0 warms up (imports, templates, connections) untimed
            for name in times:
                if name == "ours_basic":
                    fn: Callable[[], Any] = ours(basic_db, oauth=False)
                elif name == "ours_xoauth2":
                    fn = ours(oauth_db, oauth=True)
                else:
                    fn = native if name == "native" else raw
                servers.clear()
                elapsed, _ = timed(fn)
                got = servers.stats()
                if got["messages"] != pending:
                    raise RuntimeError(f"{name}: {got['messages']} of {pending} messages arrived: {got}")
                if round_no:
                    times[name].append(elapsed)
                    stats[name] = got

    median = {name: statistics.median(values) for name, values in times.items()}
    rate = {name: pending / seconds for name, seconds in median.items()}
    native_stats = stats["native"]
    return {
        "notifications": pending,
        "integrations": integrations,
        "repeat": repeat,
        "seconds_median": median,
        "seconds_all": times,
        "msgs_per_s": rate,
        "ours_vs_native": median["native"] / median["ours_basic"],
        "raw_vs_ours": median["ours_basic"] / median["raw"],
        "xoauth2_vs_basic": median["ours_xoauth2"] / median["ours_basic"],
        "token_requests_per_batch": stats["ours_xoauth2"]["token_requests"],
        "smtp_connections": {name: s["connections"] for name, s in stats.items()},
        "authenticated_messages": {name: s["authenticated"] for name, s in stats.items()},
        "auth_mechanisms": {name: s["mechanisms"] for name, s in stats.items()},
        "native_auth_silently_failed": native_stats["authenticated"] < pending,
        "mean_message_bytes": {name: round(s["bytes"] / max(1, s["messages"])) for name, s in stats.items()},
    }
