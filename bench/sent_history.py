"""Item 10: the reads the repeat interval and the storm cap make for every mail, over a long sent history.

    .venv/bin/python -m bench.sent_history [--quick]

A store on a throwaway PostgreSQL server (tests/fixtures/postgres.py) whose outbox holds ROWS sent rows
over INTEGRATIONS integrations (one an hour each, oldest first; about a year of mail at 1,000
integrations mailing a few times a day). Timed, median of REPEAT calls: ``sent_since`` (the repeat
interval: one integration-direction's rows sent in the last 2 hours) and ``mails_sent_since`` (the storm
cap: the mails three integration-directions sent in the last hour), with migration 0005's index and,
in the same run on the same data, after dropping it (the schema before 0005).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bench.common import NOW, migrated_store, run_alone

INTEGRATIONS = 1_000
ROWS = 1_000_000
REPEAT = 50
#: The sizes of ``--quick`` (and of ``make bench --quick``): a smoke test, not the figures.
QUICK: dict[str, Any] = {"rows": 100_000, "repeat": 5}
INDEX = "ix_failnotify_outbox_sent"


def _fill(store: Any, integrations: int, rows: int) -> None:
    """``rows`` sent rows, round the integrations, one an hour per integration, oldest first."""
    from sqlalchemy import text

    from airflow_failnotify.core.model import Direction, DirectionSettings, NotificationDraft
    from airflow_failnotify.core.model import NotificationKind as Kind
    from airflow_failnotify.store.codecs import draft_to_payload

    name = "bench_int_00000"
    draft = NotificationDraft(kind=Kind.GLOBAL_IMMEDIATE, integration=name, direction=Direction.FORWARD,
                              dedupe_key="global_immediate:0", created_at=NOW)
    payload = draft_to_payload(draft, DirectionSettings(smtp_conn_id="bench", recipients=("o@x.com",)), name)
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO failnotify_outbox (kind, integration, direction, dedupe_key, state, "
                "smtp_conn_id, immediate, payload, message_id, attempts, created_at, updated_at, sent_at) "
                "SELECT 'global_immediate', 'bench_int_' || lpad((n % :ints)::text, 5, '0'), 'forward', "
                "'global_immediate:' || n, 'sent', 'bench', true, :payload, '<' || n || '@bench>', 1, "
                "at, at, at "
                "FROM (SELECT n, :now - make_interval(hours => :per - n / :ints) AS at "
                "      FROM generate_series(0, :rows - 1) AS n) AS history"
            ),
            {"ints": integrations, "per": rows // integrations, "rows": rows, "now": NOW, "payload": payload},
        )
        conn.execute(text("ANALYZE failnotify_outbox"))


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 3)


def _reads(store: Any, repeat: int) -> dict[str, float]:
    """The two reads, timed: the repeat read's window holds 2 of the integration's rows (an hour apart,
    the newest an hour old), the storm read's 1 of each of the three senders."""
    from airflow_failnotify.core.model import Direction

    senders = [("bench_int_00007", "forward"), ("bench_int_00500", "forward"), ("bench_int_00999", "forward")]
    repeat_since, storm_since = NOW - timedelta(hours=2), NOW - timedelta(hours=1)
    return {
        "repeat_read_ms": _median_ms(
            lambda: store.sent_since("bench_int_00007", Direction.FORWARD, repeat_since), repeat
        ),
        "storm_read_ms": _median_ms(lambda: store.mails_sent_since(senders, storm_since), repeat),
    }


def run(*, integrations: int = INTEGRATIONS, rows: int = ROWS, repeat: int = REPEAT) -> dict[str, Any]:
    from sqlalchemy import text

    from tests.fixtures.postgres import start_postgres_server

    server = start_postgres_server()
    try:
        store = migrated_store(server.new_database("bench_sent_history"))
        started = time.perf_counter()
        _fill(store, integrations, rows)
        fill_seconds = round(time.perf_counter() - started, 1)
        with_index = _reads(store, repeat)
        with store.engine.begin() as conn:
            conn.execute(text(f"DROP INDEX {INDEX}"))
        without_index = _reads(store, repeat)
        store.engine.dispose()
    finally:
        server.remove()
    return {
        "status": "measured",
        "integrations": integrations,
        "sent_rows": rows,
        "repeat": repeat,
        "fill_seconds": fill_seconds,
        "with_index": with_index,
        "without_index": without_index,
        "speedup": {
            key: round(without_index[key] / with_index[key], 1) if with_index[key] else None
            for key in with_index
        },
    }


def main() -> None:
    run_alone(__doc__, "100,000 rows, 5 calls", run, QUICK)


if __name__ == "__main__":
    main()
