"""Values defined once in airflow_failnotify.constants, and the copies that must still equal them."""

from __future__ import annotations

from pathlib import Path

from airflow_failnotify import constants

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_the_mounted_dag_file_is_the_one_install_dag_writes() -> None:
    from airflow_failnotify.cli import dag

    mounted = REPO_ROOT / "dags" / constants.NOTIFICATION_DAG_FILE_NAME
    assert mounted.read_text(encoding="utf-8") == constants.NOTIFICATION_DAG_FILE
    assert dag.DAG_FILE == constants.NOTIFICATION_DAG_FILE


def test_the_default_schedule_is_the_same_everywhere() -> None:
    from airflow_failnotify import settings
    from airflow_failnotify.core import schedule

    assert schedule.DEFAULT_SCHEDULE == constants.DEFAULT_NOTIFICATION_SCHEDULE
    assert settings.DEFAULTS["notification_schedule"] == constants.DEFAULT_NOTIFICATION_SCHEDULE
    assert (constants.DEFAULT_NOTIFICATION_SCHEDULE, "Every 30 minutes (default)") in schedule.PRESETS


def test_the_notification_dag_id_is_the_same_everywhere() -> None:
    from airflow_failnotify.core import config, rules
    from airflow_failnotify.listeners import capture

    assert config.NOTIFICATION_DAG_ID == rules.NOTIFICATION_DAG_ID == constants.NOTIFICATION_DAG_ID
    assert capture.NOTIFICATION_DAG_ID == constants.NOTIFICATION_DAG_ID
