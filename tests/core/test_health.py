"""The health model: each check's status from its facts, the overall status, the JSON forms."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow_failnotify.core.health import (
    HealthFacts,
    HealthStatus,
    NotificationDagFacts,
    RegistrationFlag,
    RegistrationProblem,
    ScheduleFacts,
    Thresholds,
    evaluate_health,
)

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=timezone.utc)
SCHEDULE = ScheduleFacts("*/30 * * * *", "default", timedelta(minutes=30))
THRESHOLDS = Thresholds.for_interval(timedelta(minutes=30))


def healthy(**changes: object) -> HealthFacts:
    values: dict[str, object] = {
        "now": NOW,
        "schedule": SCHEDULE,
        "last_pass_at": NOW - timedelta(minutes=10),
        "notification_dag": NotificationDagFacts(present=True, recent_run_states=("success",)),
        "pending": 0,
        "failed": 0,
        "registrations": 2,
    }
    values.update(changes)
    return HealthFacts(**values)  # type: ignore[arg-type]


def check(facts: HealthFacts, name: str) -> HealthStatus:
    report = evaluate_health(facts, THRESHOLDS)
    return next(c.status for c in report.checks if c.name == name)


def test_defaults_follow_the_issue() -> None:
    assert THRESHOLDS.pass_late_after == timedelta(hours=1)
    assert THRESHOLDS.store_down_after == timedelta(minutes=5)
    assert THRESHOLDS.pending_late_after == timedelta(minutes=70)


def test_all_facts_fine_is_ok_and_exit_code_0() -> None:
    report = evaluate_health(healthy(), THRESHOLDS)
    assert report.status is HealthStatus.OK and report.status.exit_code == 0


def test_a_pass_older_than_twice_the_schedule_is_bad() -> None:
    assert check(healthy(last_pass_at=NOW - timedelta(minutes=61)), "last_pass") is HealthStatus.BAD
    assert check(healthy(last_pass_at=NOW - timedelta(minutes=59)), "last_pass") is HealthStatus.OK


def test_paused_dag_warns_until_the_last_pass_is_late_then_is_bad() -> None:
    paused = NotificationDagFacts(present=True, paused=True)
    assert check(healthy(notification_dag=paused), "notification_dag") is HealthStatus.WARN
    late = healthy(notification_dag=paused, last_pass_at=NOW - timedelta(hours=2))
    assert check(late, "notification_dag") is HealthStatus.BAD


def test_failing_runs_warn_once_and_are_bad_from_the_threshold() -> None:
    one = NotificationDagFacts(present=True, recent_run_states=("failed", "success"))
    two = NotificationDagFacts(present=True, recent_run_states=("failed", "failed", "success"))
    assert check(healthy(notification_dag=one), "notification_dag") is HealthStatus.WARN
    assert check(healthy(notification_dag=two), "notification_dag") is HealthStatus.BAD


def test_missing_notification_dag_is_bad() -> None:
    facts = healthy(notification_dag=NotificationDagFacts(present=False))
    assert check(facts, "notification_dag") is HealthStatus.BAD


def test_store_unreachable_warns_then_is_bad_after_five_minutes() -> None:
    short = healthy(store_error="down", store_unreachable_since=NOW - timedelta(minutes=4))
    long = healthy(store_error="down", store_unreachable_since=NOW - timedelta(minutes=5))
    assert check(short, "store") is HealthStatus.WARN
    assert check(long, "store") is HealthStatus.BAD


def test_store_not_migrated_is_bad() -> None:
    assert check(healthy(store_not_migrated=True), "store") is HealthStatus.BAD


def test_oldest_pending_past_its_bound_is_bad_and_failed_mails_warn() -> None:
    old = healthy(pending=1, oldest_pending_at=NOW - timedelta(minutes=71))
    assert check(old, "outbox") is HealthStatus.BAD
    fresh = healthy(pending=1, oldest_pending_at=NOW - timedelta(minutes=5))
    assert check(fresh, "outbox") is HealthStatus.OK
    assert check(healthy(failed=2), "outbox") is HealthStatus.WARN


def test_spool_and_outage_reports_warn() -> None:
    assert check(healthy(spool_files=1, spool_records=3), "spool") is HealthStatus.WARN
    assert check(healthy(outage_reports=1), "spool") is HealthStatus.WARN


def test_flagged_registrations_warn_and_are_named() -> None:
    problem = RegistrationProblem.CONNECTION_MISSING
    flag = RegistrationFlag("sync_a", "forward", "sync_a", problem, "gone_smtp")
    report = evaluate_health(healthy(flags=(flag,)), THRESHOLDS)
    assert report.status is HealthStatus.WARN and report.status.exit_code == 1
    (problem,) = report.problems()
    assert "sync_a: connection gone_smtp not found" in problem.message


def test_schedule_kept_from_the_cache_warns() -> None:
    cached = ScheduleFacts("*/5 * * * *", "cache", timedelta(minutes=5), "store unreadable at parse")
    assert check(healthy(schedule=cached), "schedule") is HealthStatus.WARN


def test_unknown_facts_are_never_ok() -> None:
    facts = healthy(
        notification_dag=None,
        store_error="down",
        store_unreachable_since=NOW,
        last_pass_at=None,
        pending=None,
        failed=None,
        registrations=None,
    )
    report = evaluate_health(facts, THRESHOLDS)
    for name in ("notification_dag", "last_pass", "outbox", "registrations"):
        assert next(c for c in report.checks if c.name == name).status is HealthStatus.WARN


def test_overall_is_the_worst_check_and_bad_exits_2() -> None:
    report = evaluate_health(healthy(failed=1, last_pass_at=NOW - timedelta(hours=3)), THRESHOLDS)
    assert report.status is HealthStatus.BAD and report.status.exit_code == 2


def test_minimal_form_has_no_names_and_detailed_form_has_them() -> None:
    flag = RegistrationFlag("secret_sync", "forward", "secret_sync", RegistrationProblem.DAG_MISSING)
    report = evaluate_health(healthy(flags=(flag,)), THRESHOLDS)
    minimal = report.minimal_dict()
    assert minimal == {"status": "warn", "last_pass_age_seconds": 600, "checked_at": NOW.isoformat()}
    detailed = report.to_dict()
    assert detailed["flags"][0]["integration"] == "secret_sync"
    assert detailed["flags"][0]["problem"] == "dag_missing"


def test_missing_notification_dag_before_any_pass_only_warns() -> None:
    facts = healthy(notification_dag=NotificationDagFacts(present=False), last_pass_at=None)
    assert check(facts, "notification_dag") is HealthStatus.WARN
