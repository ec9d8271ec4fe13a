"""The CeleryExecutor case's integrations: ``celery_int_00`` .. ``celery_int_NN``, each failing every minute.

One task per DAG that reports an entity failure (``record_entity_failure``, final) and raises ValueError;
every fourth integration retries once (a non-final try, then the final one). Schedule every minute, no
catch-up, unpaused on creation. It checks first that no store setting reached its worker.
FAILNOTIFY_CELERY_INTEGRATIONS (default 20) sets how many; the test passes it in.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG, task

from airflow_failnotify import record_entity_failure

COUNT = int(os.environ.get("FAILNOTIFY_CELERY_INTEGRATIONS", "20"))
STORE_VARIABLES = ("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", "AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN_CMD")


def retries_of(number: int) -> int:
    return 1 if number % 4 == 0 else 0


def build(dag_id: str, retries: int) -> DAG:
    with DAG(
        dag_id=dag_id,
        schedule="* * * * *",
        start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        is_paused_upon_creation=False,
        default_args={"retries": retries, "retry_delay": timedelta(seconds=0)},
        tags=["failnotify-celery"],
    ) as dag:

        @task(task_id="load")
        def load(ti=None) -> None:
            leaked = [name for name in STORE_VARIABLES if name in os.environ]
            if leaked:
                raise RuntimeError(f"store settings reached the worker: {leaked}")
            try_number = int(getattr(ti, "try_number", 1))
            record_entity_failure(f"record-{try_number}", f"{dag_id}: record rejected (try {try_number})",
                                  retry_count=0, max_retries=0)
            raise ValueError(f"{dag_id}: the source returned a bad record (try {try_number})")

        load()
    return dag


for _number in range(COUNT):
    _dag_id = f"celery_int_{_number:02d}"
    globals()[_dag_id] = build(_dag_id, retries_of(_number))
