"""Both DAGs of one bidirectional integration for tests/e2e/test_mail_truth.py (they always fail)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

START = datetime(2024, 1, 1)

with DAG("truth_sync_fwd", schedule=None, start_date=START, catchup=False):

    @task
    def extract() -> None:
        raise ValueError("ERP rejected CUST-1003: field 'vat_id' must be 11 characters")

    @task
    def fine() -> None:
        print("fine")

    extract()
    fine()


with DAG("truth_sync_bwd", schedule=None, start_date=START, catchup=False):

    @task
    def push() -> None:
        raise PermissionError("CRM project SALES-EU refused the write")

    push()
