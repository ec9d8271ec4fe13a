"""What changed in a configuration change: field by field, before and after (the audit trail).

Pure: imports nothing from Airflow, SQLAlchemy or Flask. The store writes what :func:`changes_between`
returns in the same transaction as the change itself (:mod:`airflow_failnotify.store.audit`).

Configurations hold no secrets (an email server is a connection id, never its password); still, a
field whose name says it is a secret is never written with its value (:data:`REDACTED`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow_failnotify.core.config_export import direction_to_dict
from airflow_failnotify.core.model import Direction, Registration

__all__ = [
    "REDACTED",
    "AuditEntry",
    "FieldChange",
    "changes_between",
    "flatten_registration",
    "setting_changes",
]

REDACTED = "***"
_SECRET_NAME = re.compile(r"(password|secret|token|credential|api_key)", re.IGNORECASE)

# Actions of an audit row.
REGISTER, UPDATE, UNREGISTER, SETTING = "register", "update", "unregister", "setting"


@dataclass(frozen=True)
class FieldChange:
    """One field of a change: its path (``recipients``, ``global.enabled``, ``backward.cc``)."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class AuditEntry:
    """One recorded configuration change."""

    id: int
    occurred_at: datetime
    actor: str  # the UI user's name, or "cli:<os user>"
    source: str  # ui | bulk | cli | import
    action: str  # register | update | unregister | setting
    integration: str | None  # None for a plugin setting (the schedule)
    changes: tuple[FieldChange, ...]


def _scalar(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return value


def _flatten(prefix: str, data: Mapping[str, Any], out: dict[str, Any]) -> None:
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            _flatten(f"{path}.", value, out)
        else:
            out[path] = _scalar(value)


def flatten_registration(registration: Registration | None) -> dict[str, Any]:
    """Every field by path; the backward direction's effective settings under ``backward.``."""
    if registration is None:
        return {}
    out: dict[str, Any] = {"backward_integration": registration.backward_integration or ""}
    _flatten("", direction_to_dict(registration.forward), out)
    out["same_for_backward"] = registration.same_for_backward
    if registration.backward_integration and not registration.same_for_backward:
        _flatten("backward.", direction_to_dict(registration.settings_for(Direction.BACKWARD)), out)
    return out


def _safe(path: str, value: Any) -> Any:
    return REDACTED if _SECRET_NAME.search(path) and value not in (None, "") else value


def changes_between(before: Registration | None, after: Registration | None) -> tuple[FieldChange, ...]:
    """The fields that differ, in a stable order (a new registration: every field, before None)."""
    old, new = flatten_registration(before), flatten_registration(after)
    changes = []
    for path in [*new, *(p for p in old if p not in new)]:
        was, now = old.get(path), new.get(path)
        if was != now:
            changes.append(FieldChange(path, _safe(path, was), _safe(path, now)))
    return tuple(changes)


def setting_changes(key: str, before: str | None, after: str | None) -> tuple[FieldChange, ...]:
    """A plugin setting (e.g. the schedule) that changed; empty when it did not."""
    if (before or None) == (after or None):
        return ()
    return (FieldChange(key, _safe(key, before), _safe(key, after)),)
