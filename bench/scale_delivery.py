"""Item 9 (issue 17): delivery of 5,000 due notifications, one pass vs two concurrent passes, PostgreSQL.

    .venv/bin/python -m bench.scale_delivery [--quick]

The store is a database of a throwaway PostgreSQL server (tests/fixtures/postgres.py) holding 10,000
registered integrations; 5,000 of them have one failed run, recorded through ``Store.record_events``
and evaluated (``service.evaluation.evaluate``): 5,000 due "Job failed" notifications, one per mail.
That database is the template: every measured pass set starts on a fresh copy of it
(``CREATE DATABASE ... TEMPLATE``).

A pass is ``service.passes.run_notification_pass(evaluate=False)``, the real pass's delivery path
(claim pages under a lease, configuration as it is now, noise control's repeat check, render, send,
the durable per-message "sent" mark), in a child process of its own with its own store engine
(``python -m bench.scale_delivery --child ...``). The children start their imports and engines, then
all get "go" at once. The mail server is the dev SMTP server (devtools/smtp_server.py, real AUTH, no
artificial delay) in its own process (bench/servers.py).

Reported per variant (one pass; two concurrent passes), median of ``repeat`` rounds taken in turn:
seconds from the first pass's start to the last one's end, mails/s, duplicates and lost mails (the
Message-IDs the server received against those of the outbox), the store's round trips per mail
(bench/scale.py). Target: two concurrent passes >= 1.5x the rate of one.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import NOW, migrated_store, no_status
from bench.delivery import BASIC, _set_conn
from bench.scale import (
    count_round_trips,
    machine_cpu,
    print_line,
    read_line,
    register_teams,
    send_line,
    start_child,
)
from bench.servers import MailServers

MODULE = "bench.scale_delivery"
TEMPLATE = "bench_scale_delivery_template"
TARGET_SPEEDUP = 1.5


def _name(i: int) -> str:
    return f"bench_int_{i:05d}"


# ---------------------------------------------------------------------------------------------------
# In the child: one pass
# ---------------------------------------------------------------------------------------------------
def _child(args: dict[str, Any]) -> None:
    from airflow_failnotify.service.passes import run_notification_pass
    from airflow_failnotify.store.engine import create_store_engine
    from airflow_failnotify.store.store import Store

    logging.disable(logging.WARNING)  # the pass logs one line; keep the bench's output to its table
    store = Store(create_store_engine(args["store_url"], timeout=30))
    store.check_ready()
    trips = count_round_trips(store.engine)
    print_line({"ready": True})
    input()  # "go"
    started, cpu = time.time(), _cpu_seconds()
    summary = run_notification_pass(trigger="bench", store=store, dag_status=no_status, evaluate=False)
    finished, cpu = time.time(), _cpu_seconds() - cpu
    store.engine.dispose()
    print_line(
        {
            "started": started,
            "finished": finished,
            "sent": summary.sent,
            "pending": summary.pending,
            "failed": summary.failed,
            "held": summary.held,
            "errors": summary.errors[:3],
            "round_trips": vars(trips),
            "cpu_seconds": round(cpu, 3),
        }
    )


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------------------------------
# In the parent
# ---------------------------------------------------------------------------------------------------
def _fill_template(url: str, *, pending: int, integrations: int) -> dict[str, Any]:
    from airflow_failnotify.core import rules
    from airflow_failnotify.core.model import EventKind
    from airflow_failnotify.service.evaluation import evaluate
    from airflow_failnotify.store import EventRecord, utcnow

    started = time.perf_counter()
    store = migrated_store(url)
    register_teams(store, [_name(i) for i in range(integrations)], BASIC)
    store.record_events(
        EventRecord(
            kind=EventKind.RUN_FAILED,
            dag_id=_name(i % integrations),
            run_id=f"scheduled__r{i:06d}",
            occurred_at=NOW,
            source="scheduler",
            error_message=f"task load_records failed: ValueError: bad record {i}",
        )
        for i in range(pending)
    )
    while evaluate(store, rules.evaluate, no_status, now=utcnow()).evaluated_events:
        pass
    made = int(store.outbox_counts().get("pending", 0))
    store.engine.dispose()
    if made != pending:
        raise RuntimeError(f"{made} pending notifications made, {pending} expected")
    return {"seconds": round(time.perf_counter() - started, 1)}


def _outbox(url: str) -> tuple[Counter[str], set[str]]:
    """The outbox's rows per state, and the Message-IDs its sent rows record."""
    from sqlalchemy import create_engine, func, select

    from airflow_failnotify.store import tables as t

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            states = Counter({row[0]: int(row[1]) for row in conn.execute(
                select(t.outbox.c.state, func.count()).group_by(t.outbox.c.state)
            )})
            carrier = func.coalesce(t.outbox.c.sent_message_id, t.outbox.c.message_id)
            sent = {str(m) for m in conn.execute(select(carrier).where(t.outbox.c.state == "sent")).scalars()}
    finally:
        engine.dispose()
    return states, sent


def _passes(server: Any, servers: MailServers, url: str, passes: int) -> dict[str, Any]:
    """``passes`` concurrent passes over a fresh copy of the template."""
    servers.clear()
    children = [start_child(MODULE, {"store_url": url}) for _ in range(passes)]
    try:
        for child in children:
            read_line(child)  # ready
        smtp_cpu, (busy, total) = servers.cpu_seconds(), machine_cpu()
        for child in children:
            send_line(child, {"go": True})
        reports = [read_line(child) for child in children]
        smtp_cpu, busy_after, total_after = servers.cpu_seconds() - smtp_cpu, *machine_cpu()
    finally:
        for child in children:
            child.wait(timeout=60)
    seconds = max(r["finished"] for r in reports) - min(r["started"] for r in reports)
    received = servers.message_ids()
    states, expected = _outbox(url)
    counts = Counter(received)
    sent = sum(r["sent"] for r in reports)
    statements = sum(r["round_trips"]["statements"] for r in reports)
    commits = sum(r["round_trips"]["commits"] for r in reports)
    checkouts = sum(r["round_trips"]["checkouts"] for r in reports)
    return {
        "passes": passes,
        "seconds": round(seconds, 3),
        "mails_per_s": round(len(received) / seconds, 1),
        "sent_by_pass": [r["sent"] for r in reports],
        "received": len(received),
        "duplicates": sum(n - 1 for n in counts.values() if n > 1),
        "lost": len(expected - set(counts)),
        "not_sent": {k: v for k, v in states.items() if k != "sent" and v},
        "errors": [e for r in reports for e in r["errors"]],
        "round_trips_per_mail": {
            "statements": round(statements / max(1, sent), 3),
            "commits": round(commits / max(1, sent), 3),
            "checkouts": round(checkouts / max(1, sent), 3),
        },
        # Where the CPU went: the passes' own processes, the mail server's, and the machine as a whole
        # (busy share of every core, PostgreSQL and anything else running included).
        "cpu_ms_per_mail": {
            "passes": round(sum(r["cpu_seconds"] for r in reports) * 1000 / max(1, sent), 3),
            "smtp_server": round(smtp_cpu * 1000 / max(1, sent), 3),
        },
        "machine_busy": round((busy_after - busy) / max(1e-9, total_after - total), 3),
    }


def run(
    workdir: Path, *, pending: int = 5_000, integrations: int = 10_000, repeat: int = 3
) -> dict[str, Any]:
    from tests.fixtures.postgres import start_postgres_server

    workdir.mkdir(parents=True, exist_ok=True)
    server = start_postgres_server()
    out: dict[str, Any] = {"notifications": pending, "integrations": integrations, "repeat": repeat}
    rounds: dict[str, list[dict[str, Any]]] = {"1": [], "2": []}
    try:
        with MailServers() as servers:
            _set_conn(BASIC, servers.failnotify_conn(auth_type="basic"))
            out["template"] = _fill_template(
                server.new_database(TEMPLATE), pending=pending, integrations=integrations
            )
            for round_no in range(repeat):
                for passes in (1, 2):
                    url = server.new_database(f"bench_scale_delivery_{round_no}_{passes}", template=TEMPLATE)
                    rounds[str(passes)].append(_passes(server, servers, url, passes))
                    server.drop_database(f"bench_scale_delivery_{round_no}_{passes}")
    finally:
        server.remove()
    for variant, results in rounds.items():
        for r in results:
            if r["duplicates"] or r["lost"] or r["received"] != pending:
                raise RuntimeError(f"{variant} pass(es): {json.dumps(r)[:2000]}")
    out["rounds"] = rounds
    out["median_seconds"] = {k: statistics.median(r["seconds"] for r in v) for k, v in rounds.items()}
    out["mails_per_s"] = {k: round(pending / s, 1) for k, s in out["median_seconds"].items()}
    out["speedup_two_vs_one"] = round(out["median_seconds"]["1"] / out["median_seconds"]["2"], 3)
    out["duplicates"] = sum(r["duplicates"] for v in rounds.values() for r in v)
    out["lost"] = sum(r["lost"] for v in rounds.values() for r in v)
    out["round_trips_per_mail"] = {k: v[-1]["round_trips_per_mail"] for k, v in rounds.items()}
    out["met"] = out["speedup_two_vs_one"] >= TARGET_SPEEDUP
    out["status"] = "measured"
    return out


def describe(result: dict[str, Any]) -> list[str]:
    lines = []
    for passes in ("1", "2"):
        trips = result["round_trips_per_mail"][passes]
        last = result["rounds"][passes][-1]
        cpu, busy = last["cpu_ms_per_mail"], last["machine_busy"]
        samples = ", ".join(f"{r['seconds']:.2f}" for r in result["rounds"][passes])
        lines.append(
            f"{passes} pass(es): {result['notifications']:,} mails in "
            f"{result['median_seconds'][passes]:.2f} s "
            f"(median of {samples}) = {result['mails_per_s'][passes]:.0f} mails/s; per mail "
            f"{trips['statements']} statements, {trips['commits']} commits, {trips['checkouts']} checkouts; "
            f"CPU per mail {cpu['passes']:.2f} ms in the pass(es), {cpu['smtp_server']:.2f} ms in the "
            f"mail server; machine busy {busy:.0%}"
        )
    lines.append(
        f"two vs one: {result['speedup_two_vs_one']:.2f}x (target >= {TARGET_SPEEDUP}x); "
        f"{result['duplicates']} duplicates, {result['lost']} lost over every round"
    )
    return lines


def main() -> None:
    from bench.common import isolate_environment, remove_home

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="500 notifications, 1,000 integrations, 1 round")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(json.loads(args.child))
        return
    home = isolate_environment()
    try:
        result = (
            run(home / "scale_delivery", pending=500, integrations=1_000, repeat=1)
            if args.quick
            else run(home / "scale_delivery")
        )
    finally:
        remove_home(home)
    for line in describe(result):
        print(line)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
