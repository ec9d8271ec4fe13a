"""Demo integration that has gone quiet: it is never scheduled and never triggered.

``examples/demo.yaml`` registers it with ``inactivity_minutes: 1``; the inactivity clock starts at
registration, so the first notification pass one minute later sends "No activity for 1 minute".
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import DAG, task

with DAG(
    dag_id="demo_quiet_inventory",
    description="Demo integration that never runs (inactivity notification)",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    default_args={"owner": "demo"},
    tags=["failnotify-demo"],
    doc_md=__doc__,
):

    @task
    def count_stock() -> int:
        return 42

    count_stock()
