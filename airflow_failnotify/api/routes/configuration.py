"""Change one integration: save or update (``PUT``), send test mails (``POST .../test``), unregister
(``DELETE``). The body is the documented registration dict; refusals are 422 with field paths."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends

from airflow_failnotify.api import problems, security
from airflow_failnotify.core.config import ConfigValidationError
from airflow_failnotify.core.model import Registration
from airflow_failnotify.lookups import access
from airflow_failnotify.service import configuration

router = APIRouter(tags=["configuration"])

EXAMPLE = {
    "smtp_conn_id": "mail_test",
    "recipients": ["ops@example.com"],
    "cc": [],
    "subject_prefix": "[Sync]",
    "include_error_trace": True,
    "global": {
        "enabled": True,
        "inactivity_minutes": None,
        "notify_immediately": False,
        "failure_count_threshold": 1,
    },
    "processing": {"enabled": True, "notify_before_max_retries": False},
    "same_for_backward": True,
}


def _store() -> Any:
    from airflow_failnotify.store import get_store

    return get_store()


def _validated(dag_id: str, body: dict[str, Any], user: Any) -> Registration:
    try:
        return configuration.validate(
            dag_id, body, may_edit=lambda d: access.can_access_dag(user, d, write=True)
        )
    except ConfigValidationError as err:
        raise problems.unprocessable(err.errors) from err


@router.put("/integrations/{dag_id}", summary="Save (register) or update an integration's configuration")
def save_integration(
    dag_id: str,
    body: dict[str, Any] = Body(..., examples=[EXAMPLE]),  # noqa: B008
    user: Any = Depends(security.dag_editor),  # noqa: B008
) -> dict[str, Any]:
    registration = _validated(dag_id, body, user)
    try:
        created = configuration.save(_store(), registration, actor=security.actor_of(user))
    except ConfigValidationError as err:  # a DAG already used by another registration
        raise problems.unprocessable(err.errors) from err
    return {
        "dag_id": dag_id,
        "created": created,
        "message": (
            f"The failure notification of {dag_id} was "
            + ("saved: failure notification is registered." if created else "updated.")
        ),
    }


@router.post("/integrations/{dag_id}/test", summary="Send test mails for a configuration (not saved)")
def test_integration(
    dag_id: str,
    body: dict[str, Any] = Body(..., examples=[EXAMPLE]),  # noqa: B008
    user: Any = Depends(security.dag_editor),  # noqa: B008
) -> dict[str, Any]:
    from airflow_failnotify.service.test_email import send_test_emails

    outcomes = send_test_emails(_validated(dag_id, body, user))
    return {
        "dag_id": dag_id,
        "ok": all(o.ok for o in outcomes),
        "outcomes": [
            {
                "ok": o.ok,
                "direction": o.direction,
                "message": o.message,
                "refused": sorted(o.refused),
            }
            for o in outcomes
        ],
    }


@router.delete("/integrations/{dag_id}", summary="Unregister an integration (its configuration is removed)")
def unregister_integration(dag_id: str, user: Any = Depends(security.dag_editor)) -> dict[str, Any]:  # noqa: B008
    removed = bool(_store().unregister(dag_id, actor=security.actor_of(user)))
    if not removed:
        raise problems.not_found(f"{dag_id} is not registered for failure notification")
    return {
        "dag_id": dag_id,
        "removed": True,
        "message": f"Failure notification of {dag_id} was unregistered.",
    }
