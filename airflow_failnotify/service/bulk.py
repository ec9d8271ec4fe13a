"""Configure selected: one email server, recipients, CC and prefix for many integrations at once.

Shared by the FAB bulk page and the JSON API. Only integrations not configured yet are configured;
each other one is skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_failnotify.constants import NOTIFICATION_DAG_ID
from airflow_failnotify.core.config import ConfigValidationError, FieldError, bulk_registration
from airflow_failnotify.core.model import Registration

MAX_SELECTED = 500
BULK_FIELDS = ("smtp_conn_id", "recipients", "cc", "subject_prefix")


class BulkStore(Protocol):
    def list_registrations(self) -> list[Registration]: ...

    def register_new_only(
        self, registrations: Sequence[Registration], *, actor: Any = None
    ) -> tuple[list[str], dict[str, str]]: ...


@dataclass
class Selection:
    """The selected DAGs that may be configured, and those skipped with why (before any write)."""

    ok: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def taken(registrations: Iterable[Registration]) -> dict[str, str]:
    """Every DAG a registration already uses (forward or backward) -> the registration's integration."""
    return {
        d: reg.integration for reg in registrations for d in (reg.integration, reg.backward_integration) if d
    }


def why_skipped(dag_id: str, *, existing: set[str], editable: set[str], used: Mapping[str, str]) -> str:
    """Why ``dag_id`` cannot be configured here; empty when it can."""
    if dag_id == NOTIFICATION_DAG_ID:
        return "the notification DAG itself cannot be registered"
    if dag_id not in existing or dag_id not in editable:
        return "you may not change this DAG (or it does not exist)"
    if dag_id in used:
        owner = used[dag_id]
        return "already configured" if owner == dag_id else f"already the backward DAG of {owner}"
    return ""


def select(store: BulkStore, dag_ids: Sequence[str], *, existing: set[str], editable: set[str]) -> Selection:
    used = taken(store.list_registrations())
    out = Selection()
    for dag_id in dict.fromkeys(dag_ids):
        why = why_skipped(dag_id, existing=existing, editable=editable, used=used)
        if why:
            out.skipped[dag_id] = why
        else:
            out.ok.append(dag_id)
    return out


def common_errors(dag_ids: Sequence[str], common: Mapping[str, Any]) -> list[FieldError]:
    """The shared fields' errors (each DAG is checked on its own by :func:`apply`)."""
    try:
        bulk_registration(dag_ids[0] if dag_ids else "placeholder", **common)
    except ConfigValidationError as err:
        return [error for error in err.errors if error.path != "integration"]
    return []


def apply(
    store: BulkStore, selection: Selection, common: Mapping[str, Any], *, actor: Any = None
) -> tuple[list[str], dict[str, str]]:
    """Register the selection's DAGs that are still new: (configured, skipped with why, sorted)."""
    skipped = dict(selection.skipped)
    registrations = []
    for dag_id in selection.ok:
        try:
            registrations.append(bulk_registration(dag_id, **common))
        except ConfigValidationError as err:
            skipped[dag_id] = str(err)
    configured, refused = store.register_new_only(registrations, actor=actor)
    skipped.update(refused)
    return configured, dict(sorted(skipped.items()))
