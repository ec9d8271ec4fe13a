"""The immediate path: a trigger in Airflow's triggerer that watches the store for new failures.

It backs an AssetWatcher of the notification DAG, so a failure that must be notified at
once (a failed run, a not-accessible failure) starts a pass within seconds instead of
waiting for the schedule. The state that matters (whether an event has been evaluated)
lives in the store, so a triggerer restart loses nothing: it fires once more and the
pass finds nothing or everything still to do. Database work runs in a worker thread,
never on the triggerer's event loop.

While passes keep failing (a fire that no pass answers: its failures stay unevaluated) the
trigger backs off, exponentially up to ``max_backoff_seconds``, and retries; the rule is
core/backoff.py. A store it cannot poll backs off the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_failnotify.core.backoff import (
    DEFAULT_CAP_SECONDS,
    DEFAULT_SETTLE_SECONDS,
    Backoff,
    FiringState,
    ImmediateFiring,
    Pending,
)

log = logging.getLogger(__name__)

POLL_ERROR_CAP_SECONDS = 60.0
BASE_POLLS = 2.5  # the first back-off, in polls


def _pending_immediate_events() -> Pending:
    from airflow_failnotify.store import get_store

    oldest, newest = get_store().pending_immediate_event_range()
    return Pending(oldest=oldest, newest=newest)


class StoreEventTrigger(BaseEventTrigger):
    """Fires when an unevaluated failure that may need an immediate notification appears."""

    def __init__(
        self,
        poll_seconds: float = 2.0,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        max_backoff_seconds: float = DEFAULT_CAP_SECONDS,
    ) -> None:
        # No side effects here: the DAG processor builds this at every parse.
        super().__init__()
        self.poll_seconds = float(poll_seconds)
        self.settle_seconds = float(settle_seconds)
        self.max_backoff_seconds = float(max_backoff_seconds)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_failnotify.triggers.store_events.StoreEventTrigger",
            {
                "poll_seconds": self.poll_seconds,
                "settle_seconds": self.settle_seconds,
                "max_backoff_seconds": self.max_backoff_seconds,
            },
        )

    def firing(self) -> ImmediateFiring:
        """The back-off starts at 2.5 polls (5 s by default) and doubles up to ``max_backoff_seconds``."""
        base = min(self.max_backoff_seconds, BASE_POLLS * self.poll_seconds)
        return ImmediateFiring(Backoff(base_seconds=base, cap_seconds=max(base, self.max_backoff_seconds)),
                               settle_seconds=self.settle_seconds)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        rule = self.firing()
        poll_errors = Backoff(base_seconds=self.poll_seconds,
                              cap_seconds=max(self.poll_seconds, POLL_ERROR_CAP_SECONDS))
        state = FiringState()
        errors = 0
        while True:
            try:
                pending = await asyncio.to_thread(_pending_immediate_events)
                errors = 0
            except Exception as err:
                errors += 1
                if errors == 1 or errors % 30 == 0:
                    log.warning("failnotify: cannot poll the store for immediate notifications: %s", err)
                await asyncio.sleep(poll_errors.delay(errors))
                continue
            decision = rule.step(state, pending, time.monotonic())
            state = decision.state
            if decision.failed_fire:
                log.warning(
                    "failnotify: %s immediate notification pass(es) in a row left failure %s unevaluated "
                    "(the pass did not run or failed: see the notification DAG's task log); next try in "
                    "%.0f s",
                    state.failures, state.stuck_at, rule.backoff.delay(state.failures),
                )
            if decision.fire:
                yield TriggerEvent({"max_event_id": pending.newest, "failed_before": state.failures})
            await asyncio.sleep(self.poll_seconds)
