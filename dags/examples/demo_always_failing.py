"""Demo integration that fails every run: the warehouse export cannot connect.

``examples/demo.yaml`` registers it with a consecutive-failure threshold of 2 (not immediate), so
every second failed run gives a "2 consecutive job failures" mail. No network is used: the error is
raised, not met.
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import DAG, task

with DAG(
    dag_id="demo_export_to_warehouse",
    description="Demo export that fails every run",
    schedule="*/2 * * * *",
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    default_args={"owner": "demo", "retries": 0},
    tags=["failnotify-demo"],
    doc_md=__doc__,
):

    @task
    def export_orders() -> None:
        raise ConnectionRefusedError("warehouse.example.internal:5432 refused the connection (demo)")

    export_orders()
