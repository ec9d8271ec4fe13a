"""The immediate path: a trigger in Airflow's triggerer that watches the store for new failures.

It backs an AssetWatcher of the notification DAG, so a failure that must be notified at
once (a failed run, a not-accessible failure) starts a pass within seconds instead of
waiting for the schedule. The state that matters (whether an event has been evaluated)
lives in the store, so a triggerer restart loses nothing: it fires once more and the
pass finds nothing or everything still to do. Database work runs in a worker thread,
never on the triggerer's event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

log = logging.getLogger(__name__)


def _max_pending_immediate_event_id() -> int:
    from airflow_failnotify.store import get_store

    return get_store().max_pending_immediate_event_id()


class StoreEventTrigger(BaseEventTrigger):
    """Fires when an unevaluated failure that may need an immediate notification appears."""

    def __init__(self, poll_seconds: float = 2.0) -> None:
        # No side effects here: the DAG processor builds this at every parse.
        super().__init__()
        self.poll_seconds = float(poll_seconds)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_failnotify.triggers.store_events.StoreEventTrigger",
            {"poll_seconds": self.poll_seconds},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        seen = 0
        failures = 0
        while True:
            try:
                newest = await asyncio.to_thread(_max_pending_immediate_event_id)
                failures = 0
            except Exception as err:
                failures += 1
                if failures == 1 or failures % 30 == 0:
                    log.warning("failnotify: cannot poll the store for immediate notifications: %s", err)
                await asyncio.sleep(min(60.0, self.poll_seconds * (1 + failures)))
                continue
            if newest > seen:
                seen = newest
                yield TriggerEvent({"max_event_id": newest})
            await asyncio.sleep(self.poll_seconds)
