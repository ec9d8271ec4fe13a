"""Failure episodes of an integration-direction: the notion behind mail threads and the recovery mail.

Pure: imports nothing from Airflow, SQLAlchemy or Flask. An episode runs from the first notified
failure of an integration-direction to its next successful run with no final task or entity
failure. It lives in :class:`~airflow_failnotify.core.model.DirectionState` (``episode_key``,
``failing_runs``, and what its recovery mail tells: ``episode_started_at``, ``episode_failed_runs``,
``episode_failures``); the rules call :func:`assign_episode` for every direction they evaluate.

Counting (issue 18): an episode counts the failed runs and the final task or entity failures (or
not-accessible ones) that happen while it is open, from the batch that opens it (its opening draft's
failures, and the batch's failures before the success that ends it) on. Failures seen while no
episode is open, and not in the opening draft, belong to none. Its first failure is the earliest
failure of its opening draft (for an inactivity draft, the start of the quiet spell).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from airflow_failnotify.core.model import (
    DirectionState,
    EpisodeSummary,
    EventKind,
    FailureEvent,
    NotificationDraft,
    NotificationKind,
)

__all__ = ["MAX_FAILING_RUNS", "EndedEpisode", "EpisodeUpdate", "assign_episode"]

MAX_FAILING_RUNS = 200
_FAILURE_KINDS = (EventKind.TASK_FAILED, EventKind.ENTITY_FAILED)
_KIND_ORDER = {kind: index for index, kind in enumerate(NotificationKind)}


@dataclass(frozen=True)
class EndedEpisode:
    """An episode a clean successful run ended: its key (the thread's root) and what it amounted to."""

    key: str
    summary: EpisodeSummary


@dataclass(frozen=True)
class EpisodeUpdate:
    """What :func:`assign_episode` decided: the drafts with their episode, the state's episode fields, and
    the episodes that ended in this batch (oldest first)."""

    drafts: list[NotificationDraft]
    episode_key: str | None
    failing_runs: tuple[str, ...]
    started_at: datetime | None
    failed_runs: int
    failures: int
    ended: tuple[EndedEpisode, ...] = ()


def _counts(event: FailureEvent) -> bool:
    if event.kind is EventKind.RUN_FAILED:
        return True
    return event.kind in _FAILURE_KINDS and (event.is_final or event.not_accessible)


@dataclass
class _Episode:
    """The open episode while a batch is walked in time order."""

    key: str | None
    started_at: datetime | None = None
    failed_runs: int = 0
    failures: int = 0
    counted: set[int] = field(default_factory=set)

    def count(self, events: Sequence[FailureEvent]) -> None:
        for event in events:
            if event.id in self.counted or not _counts(event):
                continue
            self.counted.add(event.id)
            if event.kind is EventKind.RUN_FAILED:
                self.failed_runs += 1
            else:
                self.failures += 1

    def open(self, draft: NotificationDraft, moment: datetime) -> None:
        self.key, self.failed_runs, self.failures = draft.dedupe_key, 0, 0
        times = [e.occurred_at for e in draft.events]
        self.started_at = min(times) if times else (draft.quiet_since or moment)
        self.count(draft.events)


def assign_episode(
    state: DirectionState, drafts: Sequence[NotificationDraft], events: Sequence[FailureEvent], now: datetime
) -> EpisodeUpdate:
    """Walk the batch in time order: successes end the open episode, a draft with none open opens one."""
    failing = list(state.failing_runs)
    for event in events:
        if event.kind in _FAILURE_KINDS and event.is_final and event.run_id not in failing:
            failing.append(event.run_id)
    failing = failing[-MAX_FAILING_RUNS:]
    failing_set = set(failing)
    clean_successes = sorted(
        (e for e in events if e.kind is EventKind.RUN_SUCCEEDED and e.run_id not in failing_set),
        key=lambda e: (e.occurred_at, e.id),
    )
    failures = sorted((e for e in events if _counts(e)), key=lambda e: (e.occurred_at, e.id))
    episode = _Episode(
        state.episode_key, state.episode_started_at, state.episode_failed_runs, state.episode_failures
    )
    ended: list[EndedEpisode] = []

    def close(success: FailureEvent) -> None:
        if episode.key is not None:
            episode.count([e for e in failures if e.occurred_at < success.occurred_at])
            summary = EpisodeSummary(
                episode.started_at, success.occurred_at, success.run_id, episode.failed_runs, episode.failures
            )
            ended.append(EndedEpisode(episode.key, summary))
        # What happened before this success is over: a later episode does not count it.
        episode.key, episode.started_at, episode.failed_runs, episode.failures = None, None, 0, 0
        episode.counted.update(e.id for e in failures if e.occurred_at < success.occurred_at)

    def anchor(draft: NotificationDraft) -> datetime:
        return max((e.occurred_at for e in draft.events), default=now)

    closed = 0
    assigned: list[NotificationDraft] = []
    for draft in sorted(drafts, key=lambda d: (anchor(d), _KIND_ORDER[d.kind], d.dedupe_key)):
        moment = anchor(draft)
        while closed < len(clean_successes) and clean_successes[closed].occurred_at < moment:
            close(clean_successes[closed])
            closed += 1
        if episode.key is None:
            episode.open(draft, moment)
        assigned.append(replace(draft, episode_key=episode.key))
    for success in clean_successes[closed:]:
        close(success)
    if episode.key is not None:
        episode.count(failures)
    return EpisodeUpdate(
        drafts=assigned,
        episode_key=episode.key,
        failing_runs=tuple(failing),
        started_at=episode.started_at,
        failed_runs=episode.failed_runs,
        failures=episode.failures,
        ended=tuple(ended),
    )
