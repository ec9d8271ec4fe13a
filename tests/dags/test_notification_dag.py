"""The Post Failure Notification DAG: schedule precedence, unpaused on creation, no catch-up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_failnotify.core import schedule
from airflow_failnotify.dags.notification_dag import build_notification_dag, current_schedule
from airflow_failnotify.store import get_store, reset_stores


@pytest.fixture
def store_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'fn.db'}")
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.delenv("AIRFLOW__FAILNOTIFY__NOTIFICATION_SCHEDULE", raising=False)
    reset_stores()
    get_store().migrate()
    yield
    reset_stores()


def cron_of(dag: object) -> str:
    timetable = dag.timetable  # type: ignore[attr-defined]
    inner = getattr(timetable, "timetable", timetable)  # AssetOrTimeSchedule wraps the cron timetable
    return str(inner.expression)


def test_default_is_every_30_minutes_unpaused_without_catch_up(store_env: None) -> None:
    dag = build_notification_dag()
    assert dag.dag_id == "failnotify_post_failure_notification"
    assert cron_of(dag) == "*/30 * * * *"
    assert dag.is_paused_upon_creation is False and dag.catchup is False


def test_config_option_beats_default_and_stored_setting_beats_both(
    store_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__NOTIFICATION_SCHEDULE", "@hourly")
    assert current_schedule() == ("0 * * * *", "[failnotify] notification_schedule")
    get_store().set_setting(schedule.SETTING_KEY, "*/5 * * * *")
    assert current_schedule() == ("*/5 * * * *", "settings view")
    assert cron_of(build_notification_dag()) == "*/5 * * * *"  # picked up at the next parse


def test_an_invalid_value_falls_back_instead_of_breaking_the_dag(
    store_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__NOTIFICATION_SCHEDULE", "every tuesday")
    assert current_schedule() == (schedule.DEFAULT_SCHEDULE, "default")


def test_an_unreachable_store_does_not_break_the_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'never-migrated.db'}")
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SPOOL_DIR", str(tmp_path / "spool"))
    reset_stores()
    try:
        assert current_schedule()[0] == schedule.DEFAULT_SCHEDULE
    finally:
        reset_stores()


def test_an_unreadable_store_keeps_the_last_known_schedule_and_the_health_says_so(
    store_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_failnotify.service.health import gather_facts

    get_store().set_setting(schedule.SETTING_KEY, "*/5 * * * *")
    assert current_schedule() == ("*/5 * * * *", "settings view")  # cached at this parse
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'gone.db'}")
    reset_stores()
    assert current_schedule() == ("*/5 * * * *", "cache")  # not the */30 default
    facts = gather_facts(read_airflow=False, check_connections=False)
    assert facts.schedule.cron == "*/5 * * * *" and "could not be read" in facts.schedule.note


def test_the_immediate_trigger_is_attached_and_serialisable(store_env: None) -> None:
    from airflow_failnotify.triggers.store_events import StoreEventTrigger

    dag = build_notification_dag()
    assets = dag.timetable.asset_condition.objects  # type: ignore[attr-defined]
    watcher = assets[0].watchers[0]
    assert isinstance(watcher.trigger, StoreEventTrigger)
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath == "airflow_failnotify.triggers.store_events.StoreEventTrigger"
    assert kwargs == {"poll_seconds": 2.0, "settle_seconds": 30.0, "max_backoff_seconds": 300.0}
    assert StoreEventTrigger(**kwargs).serialize() == (classpath, kwargs)  # the triggerer rebuilds it so


def test_the_trigger_back_off_cap_is_the_config_option(
    store_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__IMMEDIATE_BACKOFF_MAX_SECONDS", "600")
    dag = build_notification_dag()
    trigger = dag.timetable.asset_condition.objects[0].watchers[0].trigger  # type: ignore[attr-defined]
    assert trigger.serialize()[1]["max_backoff_seconds"] == 600.0
    rule = trigger.firing()
    assert (rule.backoff.delay(1), rule.backoff.delay(100)) == (5.0, 600.0)  # 2.5 polls of 2 s, the cap


@pytest.mark.parametrize(("value", "cron"), [("@daily", "0 0 * * *"), ("*/15  * * * *", "*/15 * * * *")])
def test_normalise(value: str, cron: str) -> None:
    assert schedule.normalise(value) == cron


def test_normalise_refuses_garbage() -> None:
    with pytest.raises(ValueError, match="5-field cron"):
        schedule.normalise("* * *")
