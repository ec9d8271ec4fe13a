"""Worker processes of the load soak (``python -m tests.reliability.soak_workers writer|passer ...``).

- writer: records, through the store API (what the listener calls), one failing run per integration per
  "minute" (a run failure, two failed mapped task instances, one final and one not-final entity report),
  each at a random moment of the minute; writes its counts as JSON when done.
- passer: runs notification passes (evaluate + deliver) in a loop, every ``interval`` seconds with jitter,
  until the stop file appears; writes its counts (passes, sent, exceptions) as JSON.
"""

from __future__ import annotations

import json
import random
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from airflow_failnotify.core.model import EventKind
from airflow_failnotify.store import EventRecord, Store
from airflow_failnotify.store.engine import create_store_engine


def minute_events(dag_id: str, minute: int, at: datetime) -> list[EventRecord]:
    run_id = f"scheduled__soak_m{minute:04d}"
    error = f"ValueError: record {minute} of {dag_id} rejected"
    trace = f'Traceback (most recent call last):\n  File "sync.py", line {minute}, in push\n{error}\n'
    events = [
        EventRecord(
            kind=EventKind.TASK_FAILED,
            dag_id=dag_id,
            run_id=run_id,
            occurred_at=at,
            source="task",
            task_id="push",
            map_index=index,
            try_number=1,
            max_tries=1,
            is_final=True,
            error_message=error,
            traceback=trace,
        )
        for index in (0, 1)
    ]
    for entity, final in ((f"ISSUE-{minute}-final", True), (f"ISSUE-{minute}-retry", False)):
        events.append(
            EventRecord(
                kind=EventKind.ENTITY_FAILED,
                dag_id=dag_id,
                run_id=run_id,
                occurred_at=at,
                source="task",
                task_id="sync_batch",
                entity=entity,
                try_number=3 if final else 0,
                max_tries=3,
                is_final=final,
                error_message=error,
                traceback=trace,
            )
        )
    events.append(
        EventRecord(
            kind=EventKind.RUN_FAILED,
            dag_id=dag_id,
            run_id=run_id,
            occurred_at=at,
            source="scheduler",
            error_message="task push failed",
        )
    )
    return events


def writer(
    url: str, dag_ids: list[str], minutes: int, minute_seconds: float, start: float, out: Path
) -> None:
    store = Store(create_store_engine(url, timeout=5))
    rng = random.Random()
    recorded = attempts = errors = 0
    error_samples: list[str] = []
    for minute in range(minutes):
        plan = sorted((rng.uniform(0, minute_seconds * 0.9), dag_id) for dag_id in dag_ids)
        for offset, dag_id in plan:
            delay = start + minute * minute_seconds + offset - time.time()
            if delay > 0:
                time.sleep(delay)  # pacing the load: this event's planned moment of the minute
            events = minute_events(dag_id, minute, datetime.now(timezone.utc))
            attempts += 1
            for _try in range(3):  # the listener would spool and replay; here: retry, and count it
                try:
                    recorded += store.record_events(events)
                    break
                except Exception as err:
                    errors += 1
                    error_samples.append(f"{type(err).__name__}: {str(err)[:200]}")
                    time.sleep(1)  # back-off before the retry; the retry itself is the wait for the store
    out.write_text(
        json.dumps(
            {"recorded": recorded, "batches": attempts, "errors": errors, "samples": error_samples[:5]}
        )
    )


def passer(url: str, stop_file: Path, interval: float, out: Path) -> None:
    from airflow_failnotify.service.passes import run_notification_pass

    store = Store(create_store_engine(url, timeout=5))
    rng = random.Random()
    passes = sent = failures = 0
    samples: list[str] = []
    while not stop_file.exists():
        try:
            summary = run_notification_pass(trigger="schedule", store=store, dag_status=lambda ids: {})
            passes += 1
            sent += summary.sent
        except Exception as err:
            failures += 1
            samples.append(f"{type(err).__name__}: {str(err)[:200]}")
            if len(samples) <= 2:
                traceback.print_exc()
        time.sleep(interval * rng.uniform(0.5, 1.5))  # pacing: one pass per interval, with jitter
    out.write_text(json.dumps({"passes": passes, "sent": sent, "failures": failures, "samples": samples[:5]}))


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "writer":
        writer(
            sys.argv[2],
            sys.argv[3].split(","),
            int(sys.argv[4]),
            float(sys.argv[5]),
            float(sys.argv[6]),
            Path(sys.argv[7]),
        )
    elif role == "passer":
        passer(sys.argv[2], Path(sys.argv[3]), float(sys.argv[4]), Path(sys.argv[5]))
    else:
        raise SystemExit(f"unknown role {role!r}")
