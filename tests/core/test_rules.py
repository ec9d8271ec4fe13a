"""The rules engine, scenario by scenario (DESIGN.md, "Rules"). Time is passed in, never slept.

``FakeStore`` plays the lead's store around :func:`evaluate`: it keeps the states between passes
(dropping those of unregistered integrations), refuses a draft whose dedupe key is already in its
outbox, and asserts the coverage invariant (a failure is in at most one notification of each kind).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from airflow_failnotify.core.model import (
    DagStatus,
    Direction,
    DirectionSettings,
    DirectionState,
    EventKind,
    FailureEvent,
    GlobalSettings,
    NotificationDraft,
    NotificationKind,
    ProcessingSettings,
    Registration,
)
from airflow_failnotify.core.rules import NOTIFICATION_DAG_ID, Evaluation, evaluate

FWD, BWD = Direction.FORWARD, Direction.BACKWARD
K = NotificationKind
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def settings(
    *,
    global_enabled: bool = True,
    immediate: bool = False,
    threshold: int = 1,
    inactivity: int | None = None,
    processing: bool = True,
    before_max: bool = False,
) -> DirectionSettings:
    return DirectionSettings(
        smtp_conn_id="smtp_default",
        recipients=("ops@example.com",),
        global_=GlobalSettings(
            enabled=global_enabled,
            inactivity_minutes=inactivity,
            notify_immediately=immediate,
            failure_count_threshold=threshold,
        ),
        processing=ProcessingSettings(enabled=processing, notify_before_max_retries=before_max),
    )


def registration(
    integration: str = "sync_crm",
    *,
    backward: str | None = None,
    backward_settings: DirectionSettings | None = None,
    registered_at: datetime | None = T0,
    **kwargs: object,
) -> Registration:
    return Registration(
        integration=integration,
        forward=settings(**kwargs),  # type: ignore[arg-type]
        backward_integration=backward,
        same_for_backward=backward_settings is None,
        backward=backward_settings,
        registered_at=registered_at,
    )


_ids = itertools.count(1)


def event(
    kind: EventKind,
    run: str,
    minute: float,
    *,
    integration: str = "sync_crm",
    direction: Direction = FWD,
    dag_id: str | None = None,
    task: str | None = None,
    entity: str | None = None,
    try_number: int | None = None,
    final: bool = True,
    not_accessible: bool = False,
    event_id: int | None = None,
) -> FailureEvent:
    if kind in (EventKind.TASK_FAILED, EventKind.ENTITY_FAILED):
        task = task or "load"
        entity = entity or task
        try_number = try_number or 1
    return FailureEvent(
        id=event_id if event_id is not None else next(_ids),
        kind=kind,
        integration=integration,
        direction=direction,
        dag_id=dag_id or integration,
        run_id=run,
        occurred_at=at(minute),
        task_id=task,
        entity=entity,
        try_number=try_number,
        is_final=final,
        not_accessible=not_accessible,
        error_message="RuntimeError: boom",
    )


def failed_run(run: str, minute: float, **kw: object) -> FailureEvent:
    return event(EventKind.RUN_FAILED, run, minute, **kw)  # type: ignore[arg-type]


def ok_run(run: str, minute: float, **kw: object) -> FailureEvent:
    return event(EventKind.RUN_SUCCEEDED, run, minute, **kw)  # type: ignore[arg-type]


def task_failed(run: str, minute: float, **kw: object) -> FailureEvent:
    return event(EventKind.TASK_FAILED, run, minute, **kw)  # type: ignore[arg-type]


def entity_failed(run: str, minute: float, **kw: object) -> FailureEvent:
    return event(EventKind.ENTITY_FAILED, run, minute, **kw)  # type: ignore[arg-type]


class FakeStore:
    def __init__(self, *registrations: Registration) -> None:
        self.registrations = {r.integration: r for r in registrations}
        self.states: dict[tuple[str, Direction], DirectionState] = {}
        self.outbox: dict[str, NotificationDraft] = {}
        self.covered: set[tuple[NotificationKind, int]] = set()
        self.last: Evaluation | None = None

    def register(self, reg: Registration) -> None:
        self.registrations[reg.integration] = reg

    def unregister(self, integration: str) -> None:
        del self.registrations[integration]
        self.states = {k: v for k, v in self.states.items() if k[0] != integration}

    def run(
        self,
        minute: float,
        events: Iterable[FailureEvent] = (),
        status: Mapping[str, DagStatus] | None = None,
    ) -> list[NotificationDraft]:
        """One pass; returns the drafts the outbox accepted."""
        registrations = list(self.registrations.values())
        result = evaluate(registrations, self.states, list(events), status or {}, at(minute))
        self.last = result
        assert set(result.states) == {
            (r.integration, d) for r in self.registrations.values() for d in r.directions()
        }
        accepted = []
        for draft in result.drafts:
            assert draft.created_at == at(minute)
            if draft.dedupe_key in self.outbox:
                continue
            for covered in draft.events:
                assert (draft.kind, covered.id) not in self.covered, f"{covered.id} twice in {draft.kind}"
                self.covered.add((draft.kind, covered.id))
            self.outbox[draft.dedupe_key] = draft
            accepted.append(draft)
        self.states = dict(result.states)
        return accepted


def kinds(drafts: Iterable[NotificationDraft]) -> list[tuple[NotificationKind, Direction]]:
    return [(d.kind, d.direction) for d in drafts]


def runs(draft: NotificationDraft) -> list[str]:
    return [e.run_id for e in draft.events]


def state(store: FakeStore, integration: str = "sync_crm", direction: Direction = FWD) -> DirectionState:
    return store.states[(integration, direction)]


# ---------------------------------------------------------------------------------------------
# Global failures: threshold
# ---------------------------------------------------------------------------------------------


def test_threshold_1_fires_on_every_failed_run() -> None:
    store = FakeStore(registration(threshold=1, processing=False))
    drafts = store.run(10, [failed_run("r1", 1), failed_run("r2", 2)])
    assert [(d.kind, d.run_id, runs(d)) for d in drafts] == [
        (K.GLOBAL_THRESHOLD, "r1", ["r1"]),
        (K.GLOBAL_THRESHOLD, "r2", ["r2"]),
    ]
    assert drafts[0].dedupe_key == "global_threshold:sync_crm:forward:r1"
    assert state(store).consecutive_failure_event_ids == ()


def test_threshold_20_counts_across_passes_and_lists_all_20() -> None:
    store = FakeStore(registration(threshold=20))
    for i in range(19):
        assert store.run(i + 0.5, [failed_run(f"r{i + 1}", i)]) == []
    assert len(state(store).consecutive_failure_event_ids) == 19
    assert len(state(store).counted_failures) == 19
    [draft] = store.run(30, [failed_run("r20", 29)])
    assert draft.kind is K.GLOBAL_THRESHOLD
    assert runs(draft) == [f"r{i}" for i in range(1, 21)]
    assert draft.dedupe_key == "global_threshold:sync_crm:forward:r20"
    assert state(store).consecutive_failure_event_ids == ()


def test_success_resets_the_count() -> None:
    store = FakeStore(registration(threshold=3))
    batch = [failed_run("r1", 1), failed_run("r2", 2), ok_run("r3", 3), failed_run("r4", 4)]
    assert store.run(10, batch) == []
    assert store.run(20, [failed_run("r5", 11)]) == []
    [draft] = store.run(30, [failed_run("r6", 21)])
    assert runs(draft) == ["r4", "r5", "r6"]


def test_crossing_lists_n_runs_then_counting_restarts() -> None:
    store = FakeStore(registration(threshold=2))
    drafts = store.run(10, [failed_run(f"r{i}", i) for i in range(1, 6)])
    assert [runs(d) for d in drafts] == [["r1", "r2"], ["r3", "r4"]]
    assert [e.run_id for e in state(store).counted_failures] == ["r5"]
    [draft] = store.run(20, [failed_run("r6", 11)])
    assert runs(draft) == ["r5", "r6"]


def test_lowered_threshold_fires_at_next_evaluation_without_new_event() -> None:
    store = FakeStore(registration(threshold=5))
    assert store.run(10, [failed_run(f"r{i}", i) for i in range(1, 5)]) == []
    store.register(registration(threshold=3))  # an update keeps the count
    [draft] = store.run(20)
    assert draft.kind is K.GLOBAL_THRESHOLD
    assert runs(draft) == ["r1", "r2", "r3", "r4"]  # every counted failure is listed
    assert draft.run_id == "r4"
    assert store.run(30, [failed_run("r5", 25)]) == []  # the count started again


def test_failures_are_counted_in_finish_order_whatever_the_input_order() -> None:
    store = FakeStore(registration(threshold=2))
    # r2 failed, then r3 succeeded, then r4 failed: given shuffled, no two consecutive failures.
    assert store.run(10, [failed_run("r4", 5), ok_run("r3", 4), failed_run("r2", 3)]) == []
    assert [e.run_id for e in state(store).counted_failures] == ["r4"]


def test_same_run_failing_again_is_counted_once() -> None:
    store = FakeStore(registration(threshold=2))
    assert store.run(10, [failed_run("r1", 1), failed_run("r1", 5)]) == []  # cleared and failed again
    [draft] = store.run(20, [failed_run("r2", 11)])
    assert runs(draft) == ["r1", "r2"]


def test_count_given_as_ids_only_still_fires() -> None:
    # A store that persisted the ids but did not load the events back: the count is still right.
    reg = registration(threshold=2)
    states = {("sync_crm", FWD): DirectionState("sync_crm", FWD, consecutive_failure_event_ids=(9001,))}
    result = evaluate([reg], states, [failed_run("r2", 1)], {}, at(10))
    [draft] = result.drafts
    assert runs(draft) == ["r2"]
    assert draft.dedupe_key == "global_threshold:sync_crm:forward:r2"


def test_not_accessible_failure_still_counts_as_failed_run() -> None:
    store = FakeStore(registration(threshold=2, processing=False))
    drafts = store.run(10, [task_failed("r1", 1, not_accessible=True), failed_run("r1", 2)])
    assert kinds(drafts) == [(K.NOT_ACCESSIBLE, FWD)]
    [draft] = store.run(20, [failed_run("r2", 11)])
    assert (draft.kind, runs(draft)) == (K.GLOBAL_THRESHOLD, ["r1", "r2"])


# ---------------------------------------------------------------------------------------------
# Global failures: immediate, disabled
# ---------------------------------------------------------------------------------------------


def test_immediate_one_draft_per_run() -> None:
    store = FakeStore(registration(immediate=True, threshold=2, processing=False))
    drafts = store.run(10, [failed_run("r1", 1), failed_run("r1", 2), failed_run("r2", 3)])
    assert [(d.kind, d.run_id, d.dedupe_key) for d in drafts] == [
        (K.GLOBAL_IMMEDIATE, "r1", "global_immediate:sync_crm:forward:r1"),
        (K.GLOBAL_IMMEDIATE, "r2", "global_immediate:sync_crm:forward:r2"),
    ]
    assert store.run(20, [failed_run("r1", 15)]) == []  # the same run again: already notified


def test_immediate_mode_keeps_counting_for_a_switch_to_threshold() -> None:
    store = FakeStore(registration(immediate=True, processing=False))
    store.run(10, [failed_run(f"r{i}", i) for i in range(1, 26)])
    assert len(state(store).consecutive_failure_event_ids) == 20  # bounded by the largest N
    store.run(20, [ok_run("r26", 15), failed_run("r27", 16), failed_run("r28", 17)])
    assert [e.run_id for e in state(store).counted_failures] == ["r27", "r28"]
    store.register(registration(immediate=False, threshold=3, processing=False))
    assert store.run(30) == []
    [draft] = store.run(40, [failed_run("r29", 35)])
    assert (draft.kind, runs(draft)) == (K.GLOBAL_THRESHOLD, ["r27", "r28", "r29"])


def test_global_disabled_notifies_nothing_and_drops_the_count() -> None:
    store = FakeStore(registration(threshold=3, processing=False))
    store.run(10, [failed_run("r1", 1), failed_run("r2", 2)])
    store.register(registration(global_enabled=False, threshold=3, immediate=True, processing=False))
    assert store.run(20, [failed_run("r3", 11), failed_run("r4", 12), failed_run("r5", 13)]) == []
    assert state(store).consecutive_failure_event_ids == ()
    store.register(registration(threshold=3, processing=False))
    assert store.run(30) == []  # no backlog
    assert store.run(40, [failed_run("r6", 31), failed_run("r7", 32)]) == []
    [draft] = store.run(50, [failed_run("r8", 41)])
    assert runs(draft) == ["r6", "r7", "r8"]


# ---------------------------------------------------------------------------------------------
# Not accessible
# ---------------------------------------------------------------------------------------------


def test_not_accessible_fires_with_everything_disabled() -> None:
    store = FakeStore(registration(global_enabled=False, processing=False))
    [draft] = store.run(10, [task_failed("r1", 1, final=False, not_accessible=True)])
    assert draft.kind is K.NOT_ACCESSIBLE
    assert draft.run_id == "r1"
    assert draft.dedupe_key == "not_accessible:sync_crm:forward:r1"


def test_not_accessible_once_per_run_across_tasks_tries_and_passes() -> None:
    store = FakeStore(registration(global_enabled=False, processing=False))
    drafts = store.run(
        10,
        [
            task_failed("r1", 1, task="extract", not_accessible=False),
            task_failed("r1", 2, task="load", try_number=1, final=False, not_accessible=True),
            task_failed("r1", 3, task="load", try_number=2, final=True, not_accessible=True),
            entity_failed("r1", 4, task="load", entity="project-42", not_accessible=True),
            task_failed("r2", 5, not_accessible=True),
        ],
    )
    assert [(d.run_id, d.events[0].occurred_at) for d in drafts] == [("r1", at(2)), ("r2", at(5))]
    assert len(drafts[0].events) == 3
    # The same run in a later pass gives the same key: the outbox refuses it.
    assert store.run(20, [task_failed("r1", 15, task="other", not_accessible=True)]) == []
    assert store.last is not None and store.last.drafts[0].dedupe_key == "not_accessible:sync_crm:forward:r1"


def test_not_accessible_from_an_entity_report() -> None:
    store = FakeStore(registration(processing=False))
    [draft] = store.run(10, [entity_failed("r1", 1, entity="customer-7", final=False, not_accessible=True)])
    assert (draft.kind, draft.events[0].entity) == (K.NOT_ACCESSIBLE, "customer-7")


# ---------------------------------------------------------------------------------------------
# Processing
# ---------------------------------------------------------------------------------------------


def test_retries_are_ignored_unless_notify_before_max_retries() -> None:
    batch = [
        task_failed("r1", 1, try_number=1, final=False),
        task_failed("r1", 2, try_number=2, final=False),
        task_failed("r1", 3, try_number=3, final=True),
    ]
    store = FakeStore(registration(global_enabled=False))
    [draft] = store.run(10, batch)
    assert draft.kind is K.PROCESSING
    assert [e.try_number for e in draft.events] == [3]
    assert draft.dedupe_key == f"processing:sync_crm:forward:{batch[2].id}-{batch[2].id}"

    store = FakeStore(registration(global_enabled=False, before_max=True))
    [draft] = store.run(10, batch)
    assert [e.try_number for e in draft.events] == [1, 2, 3]
    assert draft.dedupe_key == f"processing:sync_crm:forward:{batch[0].id}-{batch[2].id}"


def test_non_final_failure_alone_gives_nothing() -> None:
    store = FakeStore(registration(global_enabled=False))
    assert store.run(10, [task_failed("r1", 1, final=False)]) == []


def test_entity_reports_one_draft_per_pass_in_order_without_duplicates() -> None:
    store = FakeStore(registration(global_enabled=False))
    e1 = entity_failed("r1", 2, entity="customer-7", try_number=1)
    dup = replace(e1, id=next(_ids), occurred_at=at(2.5))  # the same (run, entity, try) recorded twice
    e2 = entity_failed("r1", 1, entity="customer-9", try_number=1)
    retry = entity_failed("r1", 3, entity="customer-8", try_number=0, final=False)
    [draft] = store.run(10, [e1, dup, e2, retry])
    assert [e.entity for e in draft.events] == ["customer-9", "customer-7"]
    [draft2] = store.run(20, [entity_failed("r2", 12, entity="customer-7")])
    assert [e.run_id for e in draft2.events] == ["r2"]


def test_processing_disabled_gives_nothing() -> None:
    store = FakeStore(registration(processing=False, global_enabled=False))
    assert store.run(10, [task_failed("r1", 1), entity_failed("r1", 2, entity="x")]) == []


def test_final_task_failure_that_fails_the_run_gives_entity_and_job_mail() -> None:
    store = FakeStore(registration(immediate=True))
    drafts = store.run(10, [task_failed("r1", 1), failed_run("r1", 2)])
    assert kinds(drafts) == [(K.GLOBAL_IMMEDIATE, FWD), (K.PROCESSING, FWD)]
    store = FakeStore(registration(immediate=False, threshold=1))
    drafts = store.run(10, [task_failed("r1", 1), failed_run("r1", 2)])
    assert kinds(drafts) == [(K.GLOBAL_THRESHOLD, FWD), (K.PROCESSING, FWD)]


def test_same_event_id_twice_is_used_once() -> None:
    store = FakeStore(registration(immediate=True, threshold=2))
    failure = task_failed("r1", 1)
    run = failed_run("r1", 2)
    drafts = store.run(10, [failure, run, failure, run])
    assert [len(d.events) for d in drafts] == [1, 1]


# ---------------------------------------------------------------------------------------------
# Inactivity
# ---------------------------------------------------------------------------------------------


def test_inactivity_fires_once_per_spell_and_rearms_after_activity() -> None:
    store = FakeStore(registration(inactivity=60, processing=False))
    assert store.run(59) == []
    [draft] = store.run(60)
    assert (draft.kind, draft.inactivity_minutes, draft.quiet_since) == (K.INACTIVITY, 60, T0)
    assert draft.dedupe_key == f"inactivity:sync_crm:forward:{T0.isoformat()}"
    assert store.run(90) == [] and store.run(500) == []
    # Activity (a successful run) at minute 510 ends the spell; the next one starts there.
    assert store.run(520, [ok_run("r1", 510)]) == []
    assert store.run(569) == []
    [draft] = store.run(571)
    assert draft.quiet_since == at(510)


def test_stored_last_activity_starts_the_clock() -> None:
    reg = registration(inactivity=30)
    states = {("sync_crm", FWD): DirectionState("sync_crm", FWD, last_activity_at=at(100))}
    assert evaluate([reg], states, [], {}, at(129)).drafts == []
    [draft] = evaluate([reg], states, [], {}, at(130)).drafts
    assert draft.quiet_since == at(100)


def test_paused_dag_gives_no_inactivity_and_unpause_restarts_the_clock() -> None:
    store = FakeStore(registration(inactivity=60))
    paused = {"sync_crm": DagStatus(is_paused=True)}
    assert store.run(30, status=paused) == []
    assert store.run(200, status=paused) == []
    assert state(store).was_paused
    assert store.run(230) == []  # first pass unpaused: the clock starts now
    assert state(store).unpaused_seen_at == at(230)
    assert store.run(289) == []
    [draft] = store.run(290)
    assert draft.quiet_since == at(230)


def test_running_run_counts_as_activity() -> None:
    store = FakeStore(registration(inactivity=60))
    running = {"sync_crm": DagStatus(has_running_run=True)}
    assert store.run(100, status=running) == []
    assert store.run(150, status=running) == []
    assert store.run(209) == []
    [draft] = store.run(210)
    assert draft.quiet_since == at(150)


def test_changed_duration_applies_at_next_evaluation() -> None:
    store = FakeStore(registration(inactivity=120))
    assert store.run(45) == []
    store.register(registration(inactivity=30))
    [draft] = store.run(46)
    assert (draft.inactivity_minutes, draft.quiet_since) == (30, T0)
    store.register(registration(inactivity=40))
    assert store.run(50) == []  # same spell, already notified


@pytest.mark.parametrize(
    "reg",
    [
        pytest.param(registration(inactivity=None), id="no-duration"),
        pytest.param(registration(inactivity=10, global_enabled=False), id="global-disabled"),
    ],
)
def test_inactivity_needs_global_enabled_and_a_duration(reg: Registration) -> None:
    assert FakeStore(reg).run(10_000) == []


def test_failure_events_are_activity() -> None:
    store = FakeStore(registration(inactivity=60, processing=False, global_enabled=True, threshold=20))
    assert store.run(100, [task_failed("r1", 90, final=False)]) == []
    assert state(store).last_activity_at == at(90)
    assert store.run(149) == []
    assert [d.quiet_since for d in store.run(150)] == [at(90)]


# ---------------------------------------------------------------------------------------------
# Backward direction
# ---------------------------------------------------------------------------------------------


def test_backward_with_same_settings() -> None:
    store = FakeStore(registration(backward="sync_crm_back", immediate=True))
    drafts = store.run(
        10,
        [
            task_failed("b1", 1, direction=BWD, dag_id="sync_crm_back"),
            failed_run("b1", 2, direction=BWD, dag_id="sync_crm_back"),
        ],
    )
    assert kinds(drafts) == [(K.GLOBAL_IMMEDIATE, BWD), (K.PROCESSING, BWD)]
    assert drafts[0].dedupe_key == "global_immediate:sync_crm:backward:b1"


def test_backward_with_its_own_settings() -> None:
    reg = registration(
        backward="sync_crm_back",
        backward_settings=settings(processing=False, immediate=True),
        immediate=False,
        threshold=5,
    )
    store = FakeStore(reg)
    events = [
        task_failed("f1", 1),
        failed_run("f1", 2),
        task_failed("b1", 3, direction=BWD, dag_id="sync_crm_back"),
        failed_run("b1", 4, direction=BWD, dag_id="sync_crm_back"),
    ]
    assert kinds(store.run(10, events)) == [(K.PROCESSING, FWD), (K.GLOBAL_IMMEDIATE, BWD)]
    assert len(state(store, direction=FWD).consecutive_failure_event_ids) == 1
    assert len(state(store, direction=BWD).consecutive_failure_event_ids) == 1


def test_backward_inactivity_and_pause_are_per_direction() -> None:
    store = FakeStore(registration(backward="sync_crm_back", inactivity=60))
    status = {"sync_crm_back": DagStatus(is_paused=True)}
    assert kinds(store.run(60, status=status)) == [(K.INACTIVITY, FWD)]


def test_backward_linked_by_an_update_starts_its_own_clock() -> None:
    store = FakeStore(registration(inactivity=60))
    assert kinds(store.run(60)) == [(K.INACTIVITY, FWD)]
    store.register(registration(inactivity=60, backward="sync_crm_back"))
    assert store.run(300) == []  # not quiet since the forward registration: linked now
    [draft] = store.run(360)
    assert (draft.direction, draft.quiet_since) == (BWD, at(300))


def test_backward_relinked_to_another_dag_starts_afresh() -> None:
    store = FakeStore(registration(backward="old_back", threshold=2, processing=False))
    store.run(10, [failed_run("b1", 1, direction=BWD, dag_id="old_back")])
    store.register(registration(backward="new_back", threshold=2, processing=False))
    stale = failed_run("b2", 11, direction=BWD, dag_id="old_back")
    assert store.run(20, [stale, failed_run("n1", 12, direction=BWD, dag_id="new_back")]) == []
    [draft] = store.run(30, [failed_run("n2", 21, direction=BWD, dag_id="new_back")])
    assert runs(draft) == ["n1", "n2"]


# ---------------------------------------------------------------------------------------------
# Unregistered, notification DAG, determinism
# ---------------------------------------------------------------------------------------------


def test_unregister_in_between() -> None:
    store = FakeStore(registration(threshold=2, immediate=False), registration("sync_erp", threshold=1))
    store.run(10, [failed_run("r1", 1)])
    store.unregister("sync_crm")
    events = [
        failed_run("r2", 11),
        task_failed("r2", 11, not_accessible=True),
        entity_failed("r2", 12, entity="x"),
    ]
    assert store.run(20, events) == []
    assert ("sync_crm", FWD) not in store.states
    store.register(registration(threshold=2, immediate=False))  # registering again: the count starts at 0
    assert store.run(30, [failed_run("r3", 21)]) == []
    [draft] = store.run(40, [failed_run("r4", 31)])
    assert runs(draft) == ["r3", "r4"]


def test_events_of_an_unknown_integration_or_direction_are_ignored() -> None:
    store = FakeStore(registration(immediate=True))
    events = [
        failed_run("x1", 1, integration="never_registered"),
        failed_run("b1", 2, direction=BWD, dag_id="sync_crm_back"),  # no backward DAG registered
        failed_run("f1", 3, dag_id="not_the_forward_dag"),
    ]
    assert store.run(10, events) == []


def test_notification_dag_produces_nothing() -> None:
    kw = {"integration": NOTIFICATION_DAG_ID, "dag_id": NOTIFICATION_DAG_ID}
    store = FakeStore(registration(NOTIFICATION_DAG_ID, immediate=True, inactivity=1))
    events = [task_failed("n1", 1, not_accessible=True, **kw), failed_run("n1", 2, **kw)]
    assert store.run(1000, events) == []
    assert (NOTIFICATION_DAG_ID, FWD) in store.states

    store = FakeStore(registration(backward=NOTIFICATION_DAG_ID, immediate=True, inactivity=60))
    back = {"direction": BWD, "dag_id": NOTIFICATION_DAG_ID}
    events = [task_failed("n1", 1, not_accessible=True, **back), failed_run("n1", 2, **back)]
    assert kinds(store.run(60, events)) == [(K.INACTIVITY, FWD)]


def test_duplicate_registration_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        evaluate([registration(), registration()], {}, [], {}, T0)


def test_deterministic_and_sorted_whatever_the_input_order() -> None:
    regs = [
        registration("b_sync", backward="b_sync_back", immediate=True, inactivity=30),
        registration("a_sync", threshold=1, before_max=True, inactivity=30),
    ]
    events = [
        task_failed("r1", 1, integration="a_sync", not_accessible=True),
        failed_run("r1", 2, integration="a_sync"),
        task_failed("r1", 3, integration="b_sync", final=False),
        failed_run("r1", 4, integration="b_sync"),
        failed_run("s1", 5, integration="b_sync", direction=BWD, dag_id="b_sync_back"),
        entity_failed("s1", 5, integration="b_sync", direction=BWD, dag_id="b_sync_back", entity="e"),
    ]
    baseline = evaluate(regs, {}, events, {}, at(600))
    assert [(d.integration, d.direction, d.kind) for d in baseline.drafts] == [
        ("a_sync", FWD, K.NOT_ACCESSIBLE),
        ("a_sync", FWD, K.GLOBAL_THRESHOLD),
        ("a_sync", FWD, K.INACTIVITY),
        ("a_sync", FWD, K.PROCESSING),
        ("b_sync", FWD, K.GLOBAL_IMMEDIATE),
        ("b_sync", FWD, K.INACTIVITY),
        ("b_sync", BWD, K.GLOBAL_IMMEDIATE),
        ("b_sync", BWD, K.PROCESSING),  # no inactivity: a backward clock starts at its first pass
    ]
    rng = random.Random(7)
    for _ in range(20):
        shuffled_events, shuffled_regs = events[:], regs[:]
        rng.shuffle(shuffled_events)
        rng.shuffle(shuffled_regs)
        again = evaluate(shuffled_regs, {}, shuffled_events, {}, at(600))
        assert again == baseline
        assert list(again.states) == list(baseline.states)


# ---------------------------------------------------------------------------------------------
# Episodes (mail threads)
# ---------------------------------------------------------------------------------------------


def test_the_first_notified_failure_opens_an_episode_that_later_mails_join() -> None:
    store = FakeStore(registration(immediate=True, processing=False))
    (first,) = store.run(2, [failed_run("r1", 1)])
    (second,) = store.run(4, [failed_run("r2", 3)])
    assert first.episode_key == first.dedupe_key
    assert second.episode_key == first.dedupe_key
    assert state(store).episode_key == first.dedupe_key


def test_a_clean_successful_run_ends_the_episode() -> None:
    store = FakeStore(registration(immediate=True, processing=False))
    (first,) = store.run(2, [failed_run("r1", 1)])
    store.run(4, [ok_run("r2", 3)])
    assert state(store).episode_key is None
    (after,) = store.run(6, [failed_run("r3", 5)])
    assert after.episode_key == after.dedupe_key != first.episode_key


def test_a_successful_run_with_a_final_entity_failure_keeps_the_episode_open() -> None:
    store = FakeStore(registration(immediate=True))
    drafts = store.run(2, [failed_run("r1", 1)])
    root = drafts[0].episode_key
    # An earlier pass saw r2's final entity failure; r2 then ends "success".
    store.run(4, [entity_failed("r2", 3)])
    store.run(6, [ok_run("r2", 5)])
    assert state(store).episode_key == root


def test_within_one_batch_a_success_before_a_failure_starts_a_new_episode() -> None:
    store = FakeStore(registration(immediate=True, processing=False))
    (first,) = store.run(2, [failed_run("r1", 1)])
    (again,) = store.run(6, [ok_run("r2", 3), failed_run("r3", 5)])
    assert again.episode_key == again.dedupe_key != first.episode_key
    assert state(store).episode_key == again.dedupe_key


def test_the_episode_survives_the_stores_extra_column_round_trip() -> None:
    from airflow_failnotify.store.codecs import state_from_row, state_row

    stored = DirectionState(integration="a", direction=FWD, episode_key="k", failing_runs=("r1", "r2"))

    class Row:
        def __init__(self, values: dict[str, object]) -> None:
            self.__dict__.update(values)

    loaded = state_from_row(Row(state_row(stored)))
    assert loaded.episode_key == "k" and loaded.failing_runs == ("r1", "r2")
