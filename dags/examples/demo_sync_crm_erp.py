"""Demo integration: a bidirectional CRM <-> ERP sync (forward and backward DAG).

Registered by ``examples/demo.yaml`` as one integration, ``demo_sync_crm_to_erp`` (forward) with
``demo_sync_erp_to_crm`` (backward). Each direction syncs its entities as mapped tasks (the map index
is named after the entity), and some of them fail on purpose, always the same way, so the demo is
reproducible:

forward (CRM -> ERP)
  * CUST-1002 fails on its first try and succeeds on the retry (not notified: retries were left);
  * CUST-1003 is rejected on every try: a final entity failure, and the run fails ("Job failed");
  * ``sync_invoices`` reports entity failures without failing itself (``record_entity_failure``):
    INV-7001 out of retries (final, notified), INV-7002 on its first attempt (not final).
backward (ERP -> CRM)
  * ORD-2002 raises ``EntityNotAccessible`` ("Not accessible", notified at once).

Nothing here touches the network; importing the file has no side effects (it is parsed without the
demo running, too).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG, get_current_context, task

from airflow_failnotify import EntityNotAccessible

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
SCHEDULE = "*/2 * * * *"  # short on purpose: things happen within minutes
DEFAULT_ARGS: dict[str, Any] = {"owner": "demo", "retries": 1, "retry_delay": timedelta(seconds=3)}

FORWARD_ENTITIES = ["CUST-1001", "CUST-1002", "CUST-1003", "CUST-1004"]
BACKWARD_ENTITIES = ["ORD-2001", "ORD-2002", "ORD-2003"]


def _sync_one(direction: str, entity: str) -> str:
    """Pretend to sync one entity; the failures are deterministic."""
    context = get_current_context()
    context["entity"] = entity  # type: ignore[typeddict-unknown-key]  # read by map_index_template
    try_number = context["ti"].try_number
    if entity == "CUST-1002" and try_number == 1:
        raise TimeoutError(f"ERP did not answer within 30 s while saving {entity} (try {try_number})")
    if entity == "CUST-1003":
        raise ValueError(f"ERP rejected {entity}: field 'vat_id' must be 11 characters, got 'IT-00x'")
    if entity == "ORD-2002":
        raise EntityNotAccessible(f"CRM project SALES-EU is not accessible: 403 Forbidden reading {entity}")
    print(f"{direction}: synced {entity}")
    return entity


def _report_invoices() -> None:
    """A batch task that reports bad records and carries on (record_entity_failure)."""
    from airflow_failnotify import record_entity_failure

    invoices = {"INV-7000": None, "INV-7001": (3, 3), "INV-7002": (0, 3), "INV-7003": None}
    for invoice, retries in invoices.items():
        if retries is None:
            print(f"forward: pushed {invoice}")
            continue
        retry_count, max_retries = retries
        error = ValueError(f"ERP refused {invoice}: currency 'XBT' is not enabled for company 100")
        record_entity_failure(invoice, error, retry_count=retry_count, max_retries=max_retries)


def _build(dag_id: str, direction: str, entities: list[str], description: str) -> DAG:
    with DAG(
        dag_id=dag_id,
        description=description,
        schedule=SCHEDULE,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["failnotify-demo", "sync"],
        doc_md=__doc__,
    ) as dag:

        @task(map_index_template="{{ entity }}")
        def sync_entity(entity: str) -> str:
            return _sync_one(direction, entity)

        sync_entity.expand(entity=entities)
        if direction == "forward":

            @task
            def sync_invoices() -> None:
                _report_invoices()

            sync_invoices()
    return dag


forward = _build("demo_sync_crm_to_erp", "forward", FORWARD_ENTITIES, "Demo sync CRM -> ERP (forward)")
backward = _build("demo_sync_erp_to_crm", "backward", BACKWARD_ENTITIES, "Demo sync ERP -> CRM (backward)")
