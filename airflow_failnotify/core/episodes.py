"""Failure episodes of an integration-direction: the notion behind mail threads.

Pure: imports nothing from Airflow, SQLAlchemy or Flask. An episode runs from the first notified
failure of an integration-direction to its next successful run with no final task or entity
failure. It lives in :class:`~airflow_failnotify.core.model.DirectionState` (``episode_key``,
``failing_runs``); the rules call :func:`assign_episode` for every direction they evaluate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from airflow_failnotify.core.model import (
    DirectionState,
    EventKind,
    FailureEvent,
    NotificationDraft,
    NotificationKind,
)

__all__ = ["MAX_FAILING_RUNS", "assign_episode"]

MAX_FAILING_RUNS = 200
_FAILURE_KINDS = (EventKind.TASK_FAILED, EventKind.ENTITY_FAILED)
_KIND_ORDER = {kind: index for index, kind in enumerate(NotificationKind)}


def assign_episode(
    state: DirectionState, drafts: Sequence[NotificationDraft], events: Sequence[FailureEvent], now: datetime
) -> tuple[list[NotificationDraft], str | None, tuple[str, ...]]:
    """The drafts with their episode key, the episode open afterwards, the runs with final failures."""
    failing = list(state.failing_runs)
    for event in events:
        if event.kind in _FAILURE_KINDS and event.is_final and event.run_id not in failing:
            failing.append(event.run_id)
    failing = failing[-MAX_FAILING_RUNS:]
    failing_set = set(failing)
    clean_successes = sorted(
        e.occurred_at for e in events if e.kind is EventKind.RUN_SUCCEEDED and e.run_id not in failing_set
    )

    def anchor(draft: NotificationDraft) -> datetime:
        return max((e.occurred_at for e in draft.events), default=now)

    episode = state.episode_key
    closed = 0
    assigned: list[NotificationDraft] = []
    for draft in sorted(drafts, key=lambda d: (anchor(d), _KIND_ORDER[d.kind], d.dedupe_key)):
        moment = anchor(draft)
        while closed < len(clean_successes) and clean_successes[closed] < moment:
            episode = None
            closed += 1
        if episode is None:
            episode = draft.dedupe_key
        assigned.append(replace(draft, episode_key=episode))
    if closed < len(clean_successes):
        episode = None
    return assigned, episode, tuple(failing)
