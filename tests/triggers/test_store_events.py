"""The immediate trigger on a real store: it backs off while no pass evaluates, and fires at once again after.

The trigger's own loop (``StoreEventTrigger.run``) polls a migrated SQLite store; failures are recorded
through the store's capture API while it runs; "a pass that works" is the real notification pass
(``run_notification_pass``: it evaluates the events). Short poll/settle/cap values keep it a few seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from itertools import pairwise
from pathlib import Path

import pytest

from airflow_failnotify.core.capture import EventRecord
from airflow_failnotify.core.model import EventKind
from airflow_failnotify.service.passes import run_notification_pass
from airflow_failnotify.store import Store, get_store, reset_stores
from airflow_failnotify.triggers.store_events import StoreEventTrigger
from tests.reliability.helpers import register

pytestmark = [pytest.mark.slow]

POLL, SETTLE, CAP = 0.05, 0.5, 1.0  # back-off base: 2.5 polls = 0.125 s


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'fn.db'}")
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SPOOL_DIR", str(tmp_path / "spool"))
    reset_stores()
    store = get_store()
    store.migrate()
    # Registered (events of other DAGs are not recorded); no mail due, so a pass only evaluates.
    register(store, "failnotify_no_mail", **{"global": {"notify_immediately": False,
                                                          "failure_count_threshold": 20}})
    yield store
    reset_stores()


def run_failed(store: Store, number: int) -> None:
    store.record_events([EventRecord(kind=EventKind.RUN_FAILED, dag_id="sync_jira", run_id=f"r{number:05d}",
                                     occurred_at=datetime.now(timezone.utc), source="scheduler",
                                     error_message="task failed")])


def evaluate_all(store: Store) -> None:
    run_notification_pass(trigger="cli", store=store, dag_status=lambda dag_ids: {})


async def fires_while(store: Store, seconds: float, *, new_every: float | None,
                      before: int = 0) -> tuple[list[float], int]:
    """Fire times (s from start) of a fresh trigger over ``seconds``; a new failure every ``new_every``."""
    trigger = StoreEventTrigger(poll_seconds=POLL, settle_seconds=SETTLE, max_backoff_seconds=CAP)
    started = time.monotonic()
    fired: list[float] = []
    added = 0

    async def consume() -> None:
        async for _event in trigger.run():
            fired.append(time.monotonic() - started)

    async def produce() -> None:
        nonlocal added
        while new_every is not None:
            await asyncio.to_thread(run_failed, store, before + added)
            added += 1
            await asyncio.sleep(new_every)

    consumer, producer = asyncio.create_task(consume()), asyncio.create_task(produce())
    await asyncio.sleep(seconds)
    for job in (consumer, producer):
        job.cancel()
    await asyncio.gather(consumer, producer, return_exceptions=True)
    return fired, added


def test_the_trigger_backs_off_while_no_pass_evaluates_its_failures(store: Store) -> None:
    fired, added = asyncio.run(fires_while(store, 6.0, new_every=0.1))
    late = [t for t in fired if t > SETTLE]
    gaps = [b - a for a, b in pairwise(late)]
    print(f"\n{added} failures in 6 s; {len(fired)} fires at " + ", ".join(f"{t:.2f}" for t in fired))
    assert added >= 30
    # Bounds with room for a loaded 2-core machine (a poll and a store round trip may take 0.3 s):
    # what is checked is the shape, at once then growing gaps to a cap, not the milliseconds.
    assert fired and fired[0] < SETTLE + CAP  # the first failure fires before any back-off could
    assert len(fired) <= 15, fired  # without the back-off: one fire per new failure
    assert len(late) >= 3, fired  # and it keeps retrying
    assert all(b >= a - 0.3 for a, b in pairwise(gaps)), gaps  # growing ...
    assert max(gaps) >= SETTLE + CAP - 0.3, gaps  # ... to the settle window plus the cap
    assert max(gaps) <= SETTLE + CAP + 1.0, gaps  # and no further


def test_after_a_pass_evaluates_them_a_new_failure_fires_at_once_again(store: Store) -> None:
    for number in range(3):
        run_failed(store, number)

    async def scenario() -> tuple[list[float], float]:
        trigger = StoreEventTrigger(poll_seconds=POLL, settle_seconds=SETTLE, max_backoff_seconds=CAP)
        started = time.monotonic()
        fired: list[float] = []

        async def consume() -> None:
            async for _event in trigger.run():
                fired.append(time.monotonic() - started)

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(3.0)  # backing off: fires at ~0, ~0.6, ~1.4, ~2.4 (judged failed each time)
        await asyncio.to_thread(evaluate_all, store)  # a pass runs
        await asyncio.sleep(0.3)
        await asyncio.to_thread(run_failed, store, 99)
        new_at = time.monotonic() - started
        await asyncio.sleep(0.6)
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        return fired, new_at

    fired, new_at = asyncio.run(scenario())
    print("\nfires at " + ", ".join(f"{t:.2f}" for t in fired) + f"; new failure at {new_at:.2f}")
    assert len([t for t in fired if t < 3.0]) >= 3  # it was backing off (and retrying)
    after = [t for t in fired if t >= new_at]
    assert after and after[0] - new_at < 0.3, (after, new_at)  # within a few polls, not the back-off
    assert store.max_pending_immediate_event_id() > 0  # the new failure itself is still pending
