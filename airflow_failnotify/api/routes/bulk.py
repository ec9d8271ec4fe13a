"""``POST /bulk``: one email server, recipients, CC and prefix for the selected integrations that are
not configured yet (each other one is skipped with the reason)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from airflow_failnotify.api import problems, security
from airflow_failnotify.core.config import FieldError
from airflow_failnotify.lookups import access, dag_listing
from airflow_failnotify.service import bulk

router = APIRouter(tags=["integrations"])


class BulkBody(BaseModel):
    dag_ids: list[str] = Field(..., max_length=bulk.MAX_SELECTED)
    smtp_conn_id: str = ""
    recipients: str | list[str] = ""
    cc: str | list[str] = ""
    subject_prefix: str = ""


def _store() -> Any:
    from airflow_failnotify.store import get_store

    return get_store()


@router.post("/bulk", summary="Configure the selected integrations that are not configured yet")
def bulk_configure(body: BulkBody, user: Any = Depends(security.authenticated)) -> dict[str, Any]:  # noqa: B008
    editable = access.authorized_dag_ids(user, write=True)
    if not editable:
        raise HTTPException(403, "You may not change the failure notification of any integration.")
    dag_ids = [d for d in body.dag_ids if d]
    common = {
        "smtp_conn_id": body.smtp_conn_id.strip(),
        "recipients": body.recipients,
        "cc": body.cc,
        "subject_prefix": body.subject_prefix,
    }
    errors = bulk.common_errors(dag_ids, common)
    if not dag_ids:
        errors.insert(0, FieldError("dag_ids", "select one or more integrations"))
    if errors:
        raise problems.unprocessable(errors)
    store = _store()
    selection = bulk.select(store, dag_ids, existing=dag_listing.all_dag_ids(), editable=editable)
    configured, skipped = bulk.apply(store, selection, common, actor=security.actor_of(user, "bulk"))
    return {"configured": configured, "skipped": skipped}
