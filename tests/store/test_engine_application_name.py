"""Every store connection names its process in PostgreSQL's pg_stat_activity (application_name)."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from airflow_failnotify.store.engine import application_name, create_store_engine


def test_a_postgresql_store_connection_carries_the_process_name(postgres_url: str) -> None:
    engine = create_store_engine(postgres_url, timeout=5)
    try:
        with engine.connect() as conn:
            name = conn.execute(
                text("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()")
            ).scalar_one()
    finally:
        engine.dispose()
    assert name == application_name()
    assert name.startswith("failnotify ") and name.endswith(f" {os.getpid()}")


def test_a_task_process_is_named_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "airflow-db-not-allowed:///")
    assert application_name() == f"failnotify task {os.getpid()}"


@pytest.mark.parametrize(("argv", "blocked", "role"), [
    (["/venv/bin/airflow", "scheduler", "--skip-serve-logs"], False, "scheduler"),
    (["/venv/bin/airflow", "celery", "worker", "--queues", "failnotify"], True, "task/celery worker"),
    (["/venv/bin/airflow", "triggerer"], True, "task/triggerer"),
    (["/venv/bin/python", "-m", "x"], False, "python"),
])
def test_the_role_names_the_airflow_command_a_task_runs_under(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], blocked: bool, role: str
) -> None:
    monkeypatch.setattr("sys.argv", argv)
    if blocked:
        monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "airflow-db-not-allowed:///")
    else:
        monkeypatch.delenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", raising=False)
    assert application_name() == f"failnotify {role} {os.getpid()}"
