"""The watchdog's episodes: one bad mail when health turns bad, one recovery mail, claims with a lease."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow_failnotify.core import watchdog as wd
from airflow_failnotify.core.health import (
    HealthFacts,
    NotificationDagFacts,
    ScheduleFacts,
    Thresholds,
    evaluate_health,
)

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=timezone.utc)


def test_turning_bad_makes_the_bad_mail_due_once() -> None:
    state = wd.step(wd.WatchdogState(), True, ("last_pass: late",), NOW)
    assert state.status == "bad" and state.due == wd.BAD_MAIL
    sent = wd.mark_sent(state)
    assert sent.due is None and sent.bad_sent
    assert wd.step(sent, True, ("last_pass: late",), NOW + timedelta(minutes=1)) == sent


def test_recovery_mail_only_after_a_bad_mail_went_out() -> None:
    bad = wd.mark_sent(wd.step(wd.WatchdogState(), True, ("x",), NOW))
    recovered = wd.step(bad, False, (), NOW + timedelta(minutes=5))
    assert recovered.status == "ok" and recovered.due == wd.RECOVERED_MAIL
    unsent = wd.step(wd.WatchdogState(), True, ("x",), NOW)
    assert wd.step(unsent, False, (), NOW).due is None


def test_a_claim_holds_until_its_lease_ends() -> None:
    due = wd.step(wd.WatchdogState(), True, ("x",), NOW)
    held = wd.claim(due, "scheduler-a", NOW, timedelta(minutes=2))
    assert not wd.claimable(held, "scheduler-b", NOW + timedelta(minutes=1))
    assert wd.claimable(held, "scheduler-a", NOW + timedelta(minutes=1))
    assert wd.claimable(held, "scheduler-b", NOW + timedelta(minutes=3))


def test_state_round_trips_through_json() -> None:
    state = wd.claim(wd.step(wd.WatchdogState(), True, ("a", "b"), NOW), "w", NOW, timedelta(seconds=5))
    assert wd.WatchdogState.from_json(state.to_json()) == state
    assert wd.WatchdogState.from_json("not json") == wd.WatchdogState()


def test_the_admin_mail_names_the_bad_checks() -> None:
    facts = HealthFacts(
        now=NOW,
        schedule=ScheduleFacts("* * * * *", "default", timedelta(minutes=1)),
        last_pass_at=NOW - timedelta(minutes=10),
        notification_dag=NotificationDagFacts(present=True, paused=True),
        pending=0,
        failed=0,
        registrations=0,
    )
    report = evaluate_health(facts, Thresholds.for_interval(timedelta(minutes=1)))
    state = wd.step(wd.WatchdogState(), True, wd.bad_reasons(report), NOW)
    mail = wd.render_admin_mail(state, report, to=("admin@example.com",), instance="prod", now=NOW)
    assert mail.subject.startswith("[failnotify] Failure notification is not working (prod): last_pass")
    assert "notification_dag: the notification DAG is paused" in mail.text
    recovered = wd.step(wd.mark_sent(state), False, (), NOW)
    again = wd.render_admin_mail(recovered, report, to=("admin@example.com",), instance="prod", now=NOW)
    assert again.subject == "[failnotify] Failure notification recovered (prod)"
    assert again.message_id != mail.message_id
