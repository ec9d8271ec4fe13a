"""An integration whose source is not accessible: every run fails at once (immediate-path test)."""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import DAG, task

from airflow_failnotify import EntityNotAccessible

with DAG(
    dag_id="immediate_failing",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["failnotify-test"],
):

    @task(retries=0)
    def pull_project() -> None:
        raise EntityNotAccessible("project ADO/Platform answered 403")

    pull_project()
