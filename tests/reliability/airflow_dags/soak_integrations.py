"""The Airflow load soak's integrations: ``soak_int_00`` .. ``soak_int_NN``, each failing every minute.

One tiny task that raises ValueError (no retries), schedule every minute, no catch-up, unpaused on
creation. FAILNOTIFY_SOAK_INTEGRATIONS (default 20) sets how many; the soak case passes it in.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

from airflow.sdk import DAG, task

COUNT = int(os.environ.get("FAILNOTIFY_SOAK_INTEGRATIONS", "20"))


def build(dag_id: str) -> DAG:
    with DAG(
        dag_id=dag_id,
        schedule="* * * * *",
        start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        is_paused_upon_creation=False,
        default_args={"retries": 0},
        tags=["failnotify-soak"],
    ) as dag:

        @task(task_id="load")
        def load() -> None:
            raise ValueError(f"{dag_id}: the source returned a bad record (soak)")

        load()
    return dag


for _number in range(COUNT):
    _dag_id = f"soak_int_{_number:02d}"
    globals()[_dag_id] = build(_dag_id)
