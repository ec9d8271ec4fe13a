"""The recovery rule and mail (issue 18): an ended episode gives one "Back to normal" in its thread."""

from __future__ import annotations

from dataclasses import replace

from airflow_failnotify.core.emails import message_id_for, render_notification
from airflow_failnotify.core.mime import to_mime_message
from airflow_failnotify.core.model import (
    Direction,
    NoiseSettings,
    NotificationDraft,
    NotificationKind,
    Registration,
)
from tests.core.test_rules import (
    BWD,
    FakeStore,
    at,
    entity_failed,
    failed_run,
    ok_run,
    registration,
    state,
    task_failed,
)

RECOVERY = NotificationKind.RECOVERY


def with_recovery(reg: Registration, on: bool = True) -> Registration:
    return replace(reg, forward=replace(reg.forward, noise=NoiseSettings(recovery_mail=on)))


def recoveries(drafts: list[NotificationDraft]) -> list[NotificationDraft]:
    return [d for d in drafts if d.kind is RECOVERY]


def test_an_ended_episode_gives_one_recovery_in_its_thread() -> None:
    store = FakeStore(with_recovery(registration(immediate=True)))
    (first,) = store.run(2, [failed_run("r1", 1)])
    store.run(12, [task_failed("r2", 10), failed_run("r2", 11)])
    (recovery,) = recoveries(store.run(70, [ok_run("r3", 61)]))
    assert recovery.dedupe_key == f"recovery:{first.dedupe_key}"
    assert recovery.episode_key == first.dedupe_key  # the thread of the episode's first mail
    assert recovery.run_id == "r3"
    summary = recovery.recovery
    assert summary is not None
    assert (summary.started_at, summary.ended_at) == (at(1), at(61))
    assert (summary.failed_runs, summary.failures) == (2, 1)
    assert state(store).episode_key is None and state(store).episode_failed_runs == 0


def test_no_recovery_when_the_option_is_off() -> None:
    store = FakeStore(with_recovery(registration(immediate=True), on=False))
    store.run(2, [failed_run("r1", 1)])
    assert recoveries(store.run(4, [ok_run("r2", 3)])) == []
    assert state(store).episode_key is None


def test_never_twice_and_none_without_an_episode() -> None:
    store = FakeStore(with_recovery(registration(immediate=True)))
    assert recoveries(store.run(1, [ok_run("r0", 0.5)])) == []  # nothing was failing
    store.run(2, [failed_run("r1", 1)])
    assert len(recoveries(store.run(4, [ok_run("r2", 3)]))) == 1
    assert recoveries(store.run(6, [ok_run("r3", 5)])) == []  # the episode ended once


def test_a_success_with_a_final_entity_failure_is_not_a_recovery() -> None:
    store = FakeStore(with_recovery(registration(immediate=True)))
    store.run(2, [failed_run("r1", 1)])
    assert recoveries(store.run(4, [entity_failed("r2", 3), ok_run("r2", 3.5)])) == []
    assert state(store).episode_key is not None


def test_two_episodes_in_one_batch_give_two_recoveries() -> None:
    store = FakeStore(with_recovery(registration(immediate=True, processing=False)))
    drafts = store.run(10, [failed_run("r1", 1), ok_run("r2", 2), failed_run("r3", 3), ok_run("r4", 4)])
    first, second = recoveries(drafts)
    assert first.episode_key != second.episode_key
    assert [d.recovery.run_id for d in (first, second) if d.recovery] == ["r2", "r4"]


def test_the_backward_direction_follows_its_own_setting() -> None:
    reg = registration(immediate=True, backward="sync_back")
    reg = replace(
        reg,
        same_for_backward=False,
        backward=replace(reg.forward, noise=NoiseSettings(recovery_mail=True)),
    )
    store = FakeStore(reg)
    store.run(2, [failed_run("r1", 1), failed_run("b1", 1, direction=BWD, dag_id="sync_back")])
    drafts = store.run(4, [ok_run("r2", 3), ok_run("b2", 3, direction=BWD, dag_id="sync_back")])
    assert [d.direction for d in recoveries(drafts)] == [Direction.BACKWARD]


def test_the_episode_tally_survives_the_stores_extra_column() -> None:
    from airflow_failnotify.store.codecs import state_from_row, state_row

    store = FakeStore(with_recovery(registration(immediate=True)))
    store.run(2, [failed_run("r1", 1)])
    stored = state(store)

    class Row:
        def __init__(self, values: dict[str, object]) -> None:
            self.__dict__.update(values)

    loaded = state_from_row(Row(state_row(stored)))
    assert (loaded.episode_started_at, loaded.episode_failed_runs) == (at(1), 1)


def test_the_recovery_mail_threads_and_names_how_long_it_was_down() -> None:
    reg = with_recovery(registration(immediate=True, backward="sync_back"))
    store = FakeStore(reg)
    (first,) = store.run(2, [failed_run("b1", 1, direction=BWD, dag_id="sync_back")])
    store.run(50, [failed_run("b2", 49, direction=BWD, dag_id="sync_back")])
    (recovery,) = recoveries(store.run(130, [ok_run("b3", 126, direction=BWD, dag_id="sync_back")]))
    mail = render_notification(
        recovery, reg.settings_for(BWD), dag_id="sync_back", base_url="https://airflow.example.com"
    )
    assert mail.subject == "Back to normal: sync_back (backward of sync_crm)"
    assert mail.references == (message_id_for(first.dedupe_key),)
    assert mail.message_id == message_id_for(recovery.dedupe_key) != mail.references[0]
    assert "down for 2 h 5 min" in mail.text and "2 failed runs" in mail.text
    assert "run b3 succeeded" in mail.text and "down for <b>2 h 5 min</b>" in mail.html
    message = to_mime_message(mail, sender="failnotify@example.com")
    assert message["In-Reply-To"] == message_id_for(first.dedupe_key)
    assert message["X-Failnotify-Kind"] == "recovery"


def test_a_recovery_payload_round_trips_through_the_outbox_codec() -> None:
    from airflow_failnotify.store.codecs import draft_to_payload, payload_to_draft

    reg = with_recovery(registration(immediate=True))
    store = FakeStore(reg)
    store.run(2, [failed_run("r1", 1)])
    (recovery,) = recoveries(store.run(4, [ok_run("r2", 3)]))
    draft, _, _ = payload_to_draft(draft_to_payload(recovery, reg.forward, "sync_crm"))
    assert draft == recovery
