"""The floor under item 8: what the evaluation's reads and writes cost on PostgreSQL with no Python work.

    .venv/bin/python -m bench.evaluation_floor [--quick]

Item 8's store (1,000 integrations, 100,000 new events of its mix) is evaluated once by the real pass
(``evaluate_backlog``), untimed; that gives the outbox rows and event links an evaluation writes, with
their real payloads. Then, timed, the same database work again through the bare driver (psycopg2), in
batches of 5,000 events as a pass makes them, each batch in a transaction that is rolled back:

- read the batch's events (``SELECT * ... ORDER BY id LIMIT``, rows as tuples, nothing decoded);
- insert its outbox rows (``execute_values``, 1,000 a statement) and their event links;
- mark its events evaluated (``UPDATE ... WHERE id = ANY(...)``).

What is left out makes this a floor: the reads of rule state, coverage and the runs' task failures, the
rules, building payloads, SQLAlchemy. The figure says how much of item 8's 0.2 ms per event the storage
alone takes on this machine.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import migrated_store, no_status, run_alone

BATCH = 5_000
PAGE = 1_000
#: The sizes of ``--quick`` (and of ``make bench --quick``): a smoke test, not the figures.
QUICK: dict[str, Any] = {"integrations": 100, "events": 10_000}


def _columns_but_id(cursor: Any, table: str) -> list[str]:
    cursor.execute(f"SELECT * FROM {table} LIMIT 0")
    return [d[0] for d in cursor.description if d[0] != "id"]


def run(*, integrations: int = 1_000, events: int = 100_000) -> dict[str, Any]:
    import psycopg2.extras

    from airflow_failnotify.core import rules
    from airflow_failnotify.service.evaluation import evaluate_backlog
    from airflow_failnotify.store import utcnow
    from bench import scale_evaluation as item8
    from bench.scale import register_teams
    from tests.fixtures.postgres import start_postgres_server

    server = start_postgres_server()
    try:
        store = migrated_store(server.new_database("bench_evaluation_floor"))
        register_teams(store, [item8.dag_name(i) for i in range(integrations)], "bench_basic")
        item8.insert_events(store, item8._records(integrations, events))
        while evaluate_backlog(store, rules.evaluate, no_status, clock=utcnow).evaluated_events:
            pass
        raw = store.engine.raw_connection()
        try:
            cursor = raw.cursor()
            outbox_columns = _columns_but_id(cursor, "failnotify_outbox")
            cursor.execute(f"SELECT id, {', '.join(outbox_columns)} FROM failnotify_outbox ORDER BY id")
            outbox = cursor.fetchall()
            cursor.execute("SELECT kind, event_id, outbox_id FROM failnotify_outbox_event")
            links = cursor.fetchall()
            raw.rollback()
            # The rows again under other keys: the ones written are there already.
            outbox_rows = [(*row[1:4], f"floor:{row[4]}", *row[5:]) for row in outbox]
            link_rows = [(f"floor:{kind}", event_id, outbox_id) for kind, event_id, outbox_id in links]
            spent = {"read_events": 0.0, "insert_outbox": 0.0, "insert_links": 0.0, "mark_evaluated": 0.0}
            per_batch_outbox = -(-len(outbox_rows) // (events // BATCH))
            per_batch_links = -(-len(link_rows) // (events // BATCH))
            insert_outbox = f"INSERT INTO failnotify_outbox ({', '.join(outbox_columns)}) VALUES %s"
            insert_links = "INSERT INTO failnotify_outbox_event (kind, event_id, outbox_id) VALUES %s"
            for batch in range(events // BATCH):
                started = time.perf_counter()
                cursor.execute("SELECT * FROM failnotify_event WHERE id > %s ORDER BY id LIMIT %s",
                               (batch * BATCH, BATCH))
                ids = [row[0] for row in cursor.fetchall()]
                spent["read_events"] += time.perf_counter() - started
                started = time.perf_counter()
                chunk = outbox_rows[batch * per_batch_outbox:(batch + 1) * per_batch_outbox]
                psycopg2.extras.execute_values(cursor, insert_outbox, chunk, page_size=PAGE)
                spent["insert_outbox"] += time.perf_counter() - started
                started = time.perf_counter()
                chunk = link_rows[batch * per_batch_links:(batch + 1) * per_batch_links]
                psycopg2.extras.execute_values(cursor, insert_links, chunk, page_size=PAGE)
                spent["insert_links"] += time.perf_counter() - started
                started = time.perf_counter()
                cursor.execute("UPDATE failnotify_event SET evaluated = true WHERE id = ANY(%s)", (ids,))
                spent["mark_evaluated"] += time.perf_counter() - started
                raw.rollback()
        finally:
            raw.close()
            store.engine.dispose()
    finally:
        server.remove()
    total = sum(spent.values())
    return {
        "status": "measured",
        "integrations": integrations,
        "events": events,
        "notifications": len(outbox_rows),
        "links": len(link_rows),
        "seconds": {k: round(v, 3) for k, v in spent.items()},
        "ms_per_event": {k: round(v * 1000 / events, 4) for k, v in spent.items()},
        "floor_ms_per_event": round(total * 1000 / events, 4),
    }


def main() -> None:
    run_alone(__doc__, "100 integrations, 10,000 events", run, QUICK)


if __name__ == "__main__":
    main()
