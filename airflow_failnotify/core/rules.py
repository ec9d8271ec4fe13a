"""The rules engine: which notifications are due (DESIGN.md, "Rules").

:func:`evaluate` is a pure, deterministic function of its inputs: the registrations, what the
rules remember per (integration, direction), the events recorded since the last evaluation, the
DAGs' status and the time. It returns the notification drafts that are due and the new state of
every registered (integration, direction). The store persists both in one transaction; the
drafts' dedupe keys (unique in the outbox) and their event coverage make a failure appear in at
most one notification of each kind, even when two evaluations race.

Decisions where DESIGN.md leaves room (each is covered by a test in tests/core/test_rules.py):

* Settings are those current at evaluation. Passes run within seconds of every new failure
  event (the immediate trigger), so "recorded while a kind was disabled" is decided at the pass
  that first sees the event; an event is never looked at again by a later pass.
* Consecutive failed runs are counted while global notification is enabled, in both modes:
  with "notify immediately" on the count is kept too (its last ``THRESHOLD_MAX`` failures), so
  switching to threshold mode is an update that keeps the count. Switching with a count already
  at or above N fires at the next evaluation, like a lowered N (count 4, new N 3 fires); such a
  mail lists every failure counted (which may be more than N), then the count starts again.
* While global notification is disabled the count is dropped and failed runs are not counted:
  nothing recorded while disabled is notified later.
* A failed run that is already in the count (the same run id failing again after a clear) is not
  counted twice.
* Not accessible: one draft per run; it lists the run's not-accessible failures of this batch,
  the first being the one that fired it. A later batch's failure of the same run produces the
  same dedupe key, which the outbox refuses.
* Inactivity clock: the latest of registration, last activity (stored, every event of the
  batch, and ``now`` while a run is running), the first pass that saw the DAG unpaused after a
  pause, and, for a backward direction (or a registration without ``registered_at``), the first
  evaluation that saw that DAG linked: a backward DAG linked by a later update does not inherit
  the forward registration time. The spell start is the clock start, so any activity re-arms.
* A backward direction re-linked to another DAG starts afresh (count, clock, pause tracking).
* Broken DAG (issue 14, core/broken_dag.py): not activity; a broken DAG gets no inactivity mail.
* Events whose DAG is not the registration's DAG for their direction (a stale link), whose
  integration is not registered, or that belong to the notification DAG are ignored entirely,
  including as activity.
* Episodes (threads): every draft of a direction belongs to its open episode; with none open, the
  draft opens one and its dedupe key becomes the episode key (its mail is the thread's root). A
  successful run closes the episode unless that run had a final task or entity failure (the runs
  with one are remembered, the latest ``MAX_FAILING_RUNS``). Within a batch, times decide: a clean
  success before a draft's latest failure closes the episode before that draft; an inactivity draft
  counts as happening at ``now``. Inactivity mails belong to episodes too (they are a problem
  notified about the integration-direction).
* Recovery (issue 18, opt-in per direction with ``noise.recovery_mail``): each episode a clean
  successful run ends gives one "Back to normal" draft in the episode's thread (core/recovery.py).
  The setting current when the episode ends decides; an episode that ended while it was off gets none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from airflow_failnotify.constants import NOTIFICATION_DAG_ID
from airflow_failnotify.core.broken_dag import broken_dag_drafts
from airflow_failnotify.core.episodes import assign_episode
from airflow_failnotify.core.model import (
    THRESHOLD_MAX,
    THRESHOLD_MIN,
    DagPresence,
    DagStatus,
    Direction,
    DirectionState,
    EventKind,
    FailureEvent,
    NotificationDraft,
    NotificationKind,
    Registration,
)
from airflow_failnotify.core.recovery import recovery_drafts

__all__ = ["NOTIFICATION_DAG_ID", "DagStatus", "Evaluation", "evaluate"]

log = logging.getLogger(__name__)

_FAILURE_KINDS = (EventKind.TASK_FAILED, EventKind.ENTITY_FAILED)
_DIRECTION_ORDER = {direction: index for index, direction in enumerate(Direction)}
_KIND_ORDER = {kind: index for index, kind in enumerate(NotificationKind)}

StateKey = tuple[str, Direction]


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` decided.

    ``drafts`` are sorted (integration, direction, kind, dedupe key). ``states`` holds the new
    state of every registered (integration, direction) and nothing else: the state of an
    integration or direction that is no longer registered is for the store to delete.
    """

    drafts: list[NotificationDraft]
    states: dict[StateKey, DirectionState]


def evaluate(
    registrations: Sequence[Registration],
    states: Mapping[StateKey, DirectionState],
    new_events: Sequence[FailureEvent],
    dag_status: Mapping[str, DagStatus],
    now: datetime,
) -> Evaluation:
    """Decide which notifications are due; see the module docstring for the semantics.

    ``new_events`` are every event recorded since the last evaluation, in any order (they are
    sorted by ``occurred_at`` then ``id``; an id given twice is used once). ``dag_status`` is by
    DAG id; a DAG missing from it is neither paused nor running. All datetimes must be
    timezone-aware (UTC), like Airflow's.
    """
    by_integration: dict[str, Registration] = {}
    for given in registrations:
        if given.integration in by_integration:
            raise ValueError(f"integration {given.integration!r} is registered twice; pass each once")
        by_integration[given.integration] = given

    events_by_key: dict[StateKey, list[FailureEvent]] = {}
    for event in _sorted_unique(new_events):
        owner = by_integration.get(event.integration)
        if owner is None or not _is_tracked(owner, event.direction):
            continue
        if event.dag_id != owner.dag_id_for(event.direction):
            log.debug(
                "ignoring event %s: DAG %s is not linked to %s", event.id, event.dag_id, event.integration
            )
            continue
        events_by_key.setdefault((event.integration, event.direction), []).append(event)

    drafts: list[NotificationDraft] = []
    new_states: dict[StateKey, DirectionState] = {}
    for integration in sorted(by_integration):
        registration = by_integration[integration]
        for direction in registration.directions():
            key = (integration, direction)
            dag_id = registration.dag_id_for(direction)
            state = _current_state(states.get(key), integration, direction, dag_id, now)
            if not _is_tracked(registration, direction):
                new_states[key] = state
                continue
            direction_drafts, new_states[key] = _evaluate_direction(
                registration,
                direction,
                state,
                events_by_key.get(key, []),
                dag_status.get(dag_id, DagStatus()),
                now,
            )
            drafts.extend(direction_drafts)

    drafts.sort(
        key=lambda d: (d.integration, _DIRECTION_ORDER[d.direction], _KIND_ORDER[d.kind], d.dedupe_key)
    )
    return Evaluation(drafts=drafts, states=new_states)


# ---------------------------------------------------------------------------------------------
# One (integration, direction)
# ---------------------------------------------------------------------------------------------


def _evaluate_direction(
    registration: Registration,
    direction: Direction,
    state: DirectionState,
    events: Sequence[FailureEvent],
    status: DagStatus,
    now: datetime,
) -> tuple[list[NotificationDraft], DirectionState]:
    settings = registration.settings_for(direction)
    integration = registration.integration
    failures = [e for e in events if e.kind in _FAILURE_KINDS]
    drafts: list[NotificationDraft] = []

    # Not accessible: whatever the enabled flags, one per run.
    not_accessible_by_run: dict[str, list[FailureEvent]] = {}
    for event in _unique_failures(e for e in failures if e.not_accessible):
        not_accessible_by_run.setdefault(event.run_id, []).append(event)
    for run_id, run_events in not_accessible_by_run.items():
        drafts.append(
            NotificationDraft(
                kind=NotificationKind.NOT_ACCESSIBLE,
                integration=integration,
                direction=direction,
                dedupe_key=f"not_accessible:{integration}:{direction.value}:{run_id}",
                created_at=now,
                events=tuple(run_events),
                run_id=run_id,
            )
        )

    # Global: immediate and threshold.
    global_drafts, counted_ids, counted_events = _evaluate_global(registration, direction, state, events, now)
    drafts.extend(global_drafts)

    # Processing: one draft with every new qualifying failure.
    processing = settings.processing
    if processing.enabled:
        qualifying = _unique_failures(
            e for e in failures if e.is_final or processing.notify_before_max_retries
        )
        if qualifying:
            drafts.append(
                NotificationDraft(
                    kind=NotificationKind.PROCESSING,
                    integration=integration,
                    direction=direction,
                    dedupe_key=(
                        f"processing:{integration}:{direction.value}:{qualifying[0].id}-{qualifying[-1].id}"
                    ),
                    created_at=now,
                    events=tuple(qualifying),
                )
            )

    drafts.extend(broken_dag_drafts(integration, direction, events, now))  # one per broken episode

    # Inactivity (an import error is not activity; a broken DAG gets its Broken DAG mail instead).
    activity = [
        state.last_activity_at,
        *(e.occurred_at for e in events if e.kind is not EventKind.DAG_IMPORT_ERROR),
    ]
    if status.has_running_run:
        activity.append(now)
    last_activity_at = _latest(activity)

    was_paused, unpaused_seen_at = state.was_paused, state.unpaused_seen_at
    if status.is_paused:
        was_paused = True
    elif was_paused:
        was_paused, unpaused_seen_at = False, now

    notified_spell_start = state.notified_spell_start
    global_settings = settings.global_
    minutes = global_settings.inactivity_minutes
    quiet_is_expected = status.is_paused or status.presence is DagPresence.BROKEN
    if global_settings.enabled and minutes is not None and minutes > 0 and not quiet_is_expected:
        clock_starts = [registration.registered_at, last_activity_at, unpaused_seen_at]
        if direction is Direction.BACKWARD or registration.registered_at is None:
            clock_starts.append(state.tracked_since)
        spell_start = _latest(clock_starts)
        if (
            spell_start is not None
            and now - spell_start >= timedelta(minutes=minutes)
            and notified_spell_start != spell_start
        ):
            drafts.append(
                NotificationDraft(
                    kind=NotificationKind.INACTIVITY,
                    integration=integration,
                    direction=direction,
                    dedupe_key=f"inactivity:{integration}:{direction.value}:{spell_start.isoformat()}",
                    created_at=now,
                    inactivity_minutes=minutes,
                    quiet_since=spell_start,
                )
            )
            notified_spell_start = spell_start

    episodes = assign_episode(state, drafts, events, now)
    drafts = episodes.drafts
    if settings.noise.recovery_mail:
        drafts.extend(recovery_drafts(integration, direction, episodes.ended, now))

    new_state = replace(
        state,
        episode_key=episodes.episode_key,
        failing_runs=episodes.failing_runs,
        episode_started_at=episodes.started_at,
        episode_failed_runs=episodes.failed_runs,
        episode_failures=episodes.failures,
        consecutive_failure_event_ids=tuple(counted_ids),
        counted_failures=tuple(counted_events[i] for i in counted_ids if i in counted_events),
        last_activity_at=last_activity_at,
        notified_spell_start=notified_spell_start,
        was_paused=was_paused,
        unpaused_seen_at=unpaused_seen_at,
    )
    return drafts, new_state


def _counted_failures(
    state: DirectionState, integration: str, direction: Direction
) -> dict[int, FailureEvent]:
    """The counted failed runs the store gave back, by event id (a missing one is logged)."""
    counted_ids = set(state.consecutive_failure_event_ids)
    known = {e.id: e for e in state.counted_failures if e.id in counted_ids}
    if len(known) != len(counted_ids):
        log.warning(
            "%s (%s): the store gave %d of %d counted failure events; the threshold mail lists only those",
            integration,
            direction.value,
            len(known),
            len(counted_ids),
        )
    return known


def _immediate_draft(
    integration: str, direction: Direction, event: FailureEvent, now: datetime
) -> NotificationDraft:
    return NotificationDraft(
        kind=NotificationKind.GLOBAL_IMMEDIATE,
        integration=integration,
        direction=direction,
        dedupe_key=f"global_immediate:{integration}:{direction.value}:{event.run_id}",
        created_at=now,
        events=(event,),
        run_id=event.run_id,
    )


def _evaluate_global(
    registration: Registration,
    direction: Direction,
    state: DirectionState,
    events: Sequence[FailureEvent],
    now: datetime,
) -> tuple[list[NotificationDraft], list[int], dict[int, FailureEvent]]:
    """Immediate and threshold drafts; returns them with the new count (ids, and events by id)."""
    settings = registration.settings_for(direction).global_
    if not settings.enabled:
        return [], [], {}

    integration = registration.integration
    immediate = settings.notify_immediately
    threshold = min(max(settings.failure_count_threshold, THRESHOLD_MIN), THRESHOLD_MAX)
    counted_ids = list(state.consecutive_failure_event_ids)
    known = _counted_failures(state, integration, direction)
    drafts: list[NotificationDraft] = []

    def crossing() -> None:
        listed = tuple(known[i] for i in counted_ids if i in known)
        last = known.get(counted_ids[-1])
        last_run = last.run_id if last is not None else f"event-{counted_ids[-1]}"
        drafts.append(
            NotificationDraft(
                kind=NotificationKind.GLOBAL_THRESHOLD,
                integration=integration,
                direction=direction,
                dedupe_key=f"global_threshold:{integration}:{direction.value}:{last_run}",
                created_at=now,
                events=listed,
                run_id=last_run,
            )
        )
        counted_ids.clear()
        known.clear()

    if not immediate and counted_ids and len(counted_ids) >= threshold:
        crossing()  # a lowered N (or a switch from immediate mode) applies now

    immediate_runs: set[str] = set()
    for event in events:
        if event.kind is EventKind.RUN_SUCCEEDED:
            counted_ids.clear()
            known.clear()
            continue
        if event.kind is not EventKind.RUN_FAILED:
            continue
        if immediate and event.run_id not in immediate_runs:
            immediate_runs.add(event.run_id)
            drafts.append(_immediate_draft(integration, direction, event, now))
        if any(e.run_id == event.run_id for e in known.values()):
            continue  # this run is already counted
        counted_ids.append(event.id)
        known[event.id] = event
        if immediate:
            for dropped in counted_ids[:-THRESHOLD_MAX]:
                known.pop(dropped, None)
            del counted_ids[:-THRESHOLD_MAX]
        elif len(counted_ids) >= threshold:
            crossing()
    return drafts, counted_ids, known


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _is_tracked(registration: Registration, direction: Direction) -> bool:
    """A registered direction whose DAG is not the notification DAG."""
    if direction not in registration.directions():
        return False
    return NOTIFICATION_DAG_ID not in (registration.integration, registration.dag_id_for(direction))


def _current_state(
    state: DirectionState | None, integration: str, direction: Direction, dag_id: str, now: datetime
) -> DirectionState:
    """The stored state, or a fresh one when there is none or the direction's DAG has changed."""
    if state is None:
        return DirectionState(integration=integration, direction=direction, dag_id=dag_id, tracked_since=now)
    if state.dag_id is None:  # created by the store, or stored before these fields existed
        return replace(state, dag_id=dag_id, tracked_since=state.tracked_since or now)
    if state.dag_id != dag_id:
        log.info(
            "%s (%s) is now linked to DAG %s: its count and clock start afresh",
            integration,
            direction.value,
            dag_id,
        )
        return DirectionState(
            integration=integration,
            direction=direction,
            last_activity_at=state.last_activity_at,
            dag_id=dag_id,
            tracked_since=now,
        )
    return state


def _sorted_unique(events: Iterable[FailureEvent]) -> list[FailureEvent]:
    unique: dict[int, FailureEvent] = {}
    for event in events:
        unique.setdefault(event.id, event)
    return sorted(unique.values(), key=lambda e: (e.occurred_at, e.id))


def _unique_failures(events: Iterable[FailureEvent]) -> list[FailureEvent]:
    """Keep the first event of each failure: (kind, run, task, map index, entity, try)."""
    seen: set[tuple[object, ...]] = set()
    unique: list[FailureEvent] = []
    for event in events:
        identity = (event.kind, event.run_id, event.task_id, event.map_index, event.entity, event.try_number)
        if identity not in seen:
            seen.add(identity)
            unique.append(event)
    return unique


def _latest(values: Iterable[datetime | None]) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


RulesFn = Callable[
    [
        Sequence[Registration],
        Mapping[StateKey, DirectionState],
        Sequence[FailureEvent],
        Mapping[str, DagStatus],
        datetime,
    ],
    Evaluation,
]
