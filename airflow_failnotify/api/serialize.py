"""Store and service records as JSON for the API (times in ISO 8601 UTC, links as Airflow UI paths)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from airflow_failnotify.core import text
from airflow_failnotify.core.config_export import direction_to_dict, registration_to_dict
from airflow_failnotify.core.model import FailureEvent, Registration

# The link helpers of core.text want an absolute base; the app navigates with paths inside the UI.
_BASE = "http://airflow-ui"


def moment(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat()


def _path(url: str | None) -> str | None:
    return None if url is None else url.removeprefix(_BASE)


def dag_path(dag_id: str) -> str | None:
    return _path(text.dag_url(_BASE, dag_id))


def registration(reg: Registration) -> dict[str, Any]:
    """The documented registration dict, with the backward section in full (what the form edits)."""
    data = registration_to_dict(reg)
    data["same_for_backward"] = reg.same_for_backward
    data["backward"] = direction_to_dict(reg.backward if reg.backward is not None else reg.forward)
    data["registered_at"] = moment(getattr(reg, "registered_at", None))
    return data


def event(item: FailureEvent) -> dict[str, Any]:
    return {
        "id": item.id,
        "kind": item.kind.value,
        "integration": item.integration,
        "direction": item.direction.value,
        "dag_id": item.dag_id,
        "run_id": item.run_id,
        "task_id": item.task_id,
        "map_index": item.map_index,
        "try_number": item.try_number,
        "max_tries": item.max_tries,
        "is_final": item.is_final,
        "occurred_at": moment(item.occurred_at),
        "error_message": item.error_message,
        "traceback": item.traceback,
        "dag_url": dag_path(item.dag_id),
        "run_url": _path(text.run_url(_BASE, item.dag_id, item.run_id)),
        "task_url": _path(text.task_url(_BASE, item.dag_id, item.run_id, item.task_id or "", item.map_index)),
    }


def error_row(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "occurred_at": moment(row.occurred_at),
        "category": row.category,
        "integration": row.integration,
        "server": row.server,
        "reason": row.reason,
        "outbox_id": row.outbox_id,
        "dag_url": dag_path(row.integration) if row.integration else None,
    }


def outbox_item(item: Any) -> dict[str, Any]:
    return {
        "id": item.id,
        "kind": item.kind.value,
        "integration": item.integration,
        "direction": item.direction.value,
        "dag_id": item.dag_id,
        "state": item.state.value,
        "smtp_conn_id": item.smtp_conn_id,
        "immediate": item.immediate,
        "attempts": item.attempts,
        "created_at": moment(item.created_at),
        "updated_at": moment(item.updated_at),
        "sent_at": moment(item.sent_at),
        "last_error": item.last_error,
        "recipients": list(item.settings.recipients),
        "dag_url": dag_path(item.dag_id),
    }


def flag(item: Any) -> dict[str, Any]:
    return {
        "integration": item.integration,
        "direction": item.direction,
        "dag_id": item.dag_id,
        "problem": getattr(item.problem, "value", str(item.problem)),
        "label": item.label,
        "detail": item.detail,
    }


def last_pass(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "id": row.id,
        "trigger": row.trigger,
        "started_at": moment(row.started_at),
        "finished_at": moment(row.finished_at),
        "summary": row.summary,
    }
