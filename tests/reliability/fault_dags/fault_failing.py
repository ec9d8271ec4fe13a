"""An integration that fails whenever it is triggered (one task raising ValueError, no retries)."""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import DAG, task

with DAG(
    dag_id="fault_failing",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    is_paused_upon_creation=False,
    default_args={"retries": 0},
) as dag:

    @task(task_id="load")
    def load() -> None:
        raise ValueError("fault_failing: the source returned a bad record")

    load()
