"""The Configure Failure Notification form <-> the registration dict of :mod:`airflow_failnotify.core.config`.

The views never validate by themselves: a posted form becomes the documented registration dict
(the same shape the CLI and ``failnotify config import`` read) and goes through
:func:`~airflow_failnotify.core.config.parse_registration`. Its errors come back by path
(``global.failure_count_threshold``, ``backward.recipients``, ...) and are mapped here onto the
form's field names, so each message is shown at its field.

Form field names: the forward direction uses the plain names of :data:`DIRECTION_FIELDS`; the
backward section (shown when "same setting for backward direction" is unchecked) the same names
with the ``b_`` prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_failnotify.core.config import FieldError
from airflow_failnotify.core.model import THRESHOLD_MAX, THRESHOLD_MIN, DirectionSettings, Registration

BACKWARD_PREFIX = "b_"
YES, NO = "yes", "no"

# Per-direction form fields: form name -> path inside a direction of the registration dict.
DIRECTION_FIELDS: dict[str, str] = {
    "smtp_conn_id": "smtp_conn_id",
    "include_error_trace": "include_error_trace",
    "recipients": "recipients",
    "cc": "cc",
    "subject_prefix": "subject_prefix",
    "global_enabled": "global.enabled",
    "inactivity": "global.inactivity_minutes",
    "notify_immediately": "global.notify_immediately",
    "failure_count_threshold": "global.failure_count_threshold",
    "processing_enabled": "processing.enabled",
    "notify_before_max_retries": "processing.notify_before_max_retries",
    "noise_coalesce": "noise.coalesce",
    "noise_group_wait": "noise.group_wait_seconds",
    "noise_repeat_interval": "noise.repeat_interval_minutes",
    "noise_recovery_mail": "noise.recovery_mail",
}
CHECKBOXES = frozenset(
    {
        "global_enabled",
        "notify_immediately",
        "processing_enabled",
        "notify_before_max_retries",
        "noise_coalesce",
        "noise_recovery_mail",
    }
)
TOP_FIELDS: dict[str, str] = {
    "backward_integration": "backward_integration",
    "same_for_backward": "same_for_backward",
    "integration": "integration",
}
_PATH_TO_FIELD = {path: name for name, path in DIRECTION_FIELDS.items()}
_PATH_TO_FIELD.update({path: name for name, path in TOP_FIELDS.items()})
_PATH_TO_FIELD.update(
    {"global": "global_enabled", "processing": "processing_enabled", "noise": "noise_coalesce"}
)

# The bulk form: one email server, recipients, CC and prefix for every selected integration.
BULK_FIELDS = ("smtp_conn_id", "recipients", "cc", "subject_prefix")


def format_minutes(minutes: int | None) -> str:
    """The inactivity duration as the form shows it: ``1d``, ``2h`` or ``90``; empty for none."""
    if not minutes:
        return ""
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return str(minutes)


def _direction_values(settings: DirectionSettings, prefix: str = "") -> dict[str, Any]:
    values: dict[str, Any] = {
        "smtp_conn_id": settings.smtp_conn_id,
        "include_error_trace": YES if settings.include_error_trace else NO,
        "recipients": ", ".join(settings.recipients),
        "cc": ", ".join(settings.cc),
        "subject_prefix": settings.subject_prefix,
        "global_enabled": settings.global_.enabled,
        "inactivity": format_minutes(settings.global_.inactivity_minutes),
        "notify_immediately": settings.global_.notify_immediately,
        "failure_count_threshold": str(settings.global_.failure_count_threshold),
        "processing_enabled": settings.processing.enabled,
        "notify_before_max_retries": settings.processing.notify_before_max_retries,
        "noise_coalesce": settings.noise.coalesce,
        "noise_group_wait": str(settings.noise.group_wait_seconds),
        "noise_repeat_interval": format_minutes(settings.noise.repeat_interval_minutes) or "0",
        "noise_recovery_mail": settings.noise.recovery_mail,
    }
    return {f"{prefix}{name}": value for name, value in values.items()}


def default_values(integration: str, smtp_conn_id: str = "") -> dict[str, Any]:
    """A new registration's form: the seed's defaults (error trace Yes, global and processing on)."""
    forward = DirectionSettings(smtp_conn_id=smtp_conn_id, recipients=())
    values = {"integration": integration, "backward_integration": "", "same_for_backward": True}
    values.update(_direction_values(forward))
    values.update(_direction_values(forward, BACKWARD_PREFIX))
    return values


def values_from_registration(registration: Registration) -> dict[str, Any]:
    """The form of a stored registration; the backward section is pre-filled even when it is shared."""
    values: dict[str, Any] = {
        "integration": registration.integration,
        "backward_integration": registration.backward_integration or "",
        "same_for_backward": registration.same_for_backward,
    }
    values.update(_direction_values(registration.forward))
    backward = registration.backward if registration.backward is not None else registration.forward
    values.update(_direction_values(backward, BACKWARD_PREFIX))
    return values


def values_from_post(integration: str, form: Mapping[str, str]) -> dict[str, Any]:
    """What the user posted, as form values (checkboxes become booleans), to re-render the form."""
    values: dict[str, Any] = {"integration": integration}
    values["backward_integration"] = (form.get("backward_integration") or "").strip()
    values["same_for_backward"] = "same_for_backward" in form
    for prefix in ("", BACKWARD_PREFIX):
        for name in DIRECTION_FIELDS:
            key = f"{prefix}{name}"
            values[key] = key in form if name in CHECKBOXES else (form.get(key) or "")
    return values


def _direction_dict(values: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    def get(name: str) -> Any:
        return values.get(f"{prefix}{name}")

    return {
        "smtp_conn_id": (get("smtp_conn_id") or "").strip(),
        "include_error_trace": get("include_error_trace") or YES,
        "recipients": get("recipients") or "",
        "cc": get("cc") or "",
        "subject_prefix": get("subject_prefix") or "",
        "global": {
            "enabled": bool(get("global_enabled")),
            "inactivity_minutes": (get("inactivity") or "").strip() or None,
            "notify_immediately": bool(get("notify_immediately")),
            "failure_count_threshold": (str(get("failure_count_threshold") or "")).strip() or None,
        },
        "processing": {
            "enabled": bool(get("processing_enabled")),
            "notify_before_max_retries": bool(get("notify_before_max_retries")),
        },
        "noise": {
            "coalesce": bool(get("noise_coalesce")),
            "group_wait_seconds": (str(get("noise_group_wait") or "")).strip() or None,
            "repeat_interval_minutes": (str(get("noise_repeat_interval") or "")).strip() or None,
            "recovery_mail": bool(get("noise_recovery_mail")),
        },
    }


def registration_dict(values: Mapping[str, Any]) -> dict[str, Any]:
    """The documented registration dict for the form's values (see README, "Configuration as code")."""
    data: dict[str, Any] = {"integration": values["integration"]}
    if values.get("backward_integration"):
        data["backward_integration"] = values["backward_integration"]
    data.update(_direction_dict(values, ""))
    data["same_for_backward"] = bool(values.get("same_for_backward"))
    if not data["same_for_backward"]:
        data["backward"] = _direction_dict(values, BACKWARD_PREFIX)
    return data


@dataclass
class FormErrors:
    """Messages by form field name, and those that belong to no field (shown above the form)."""

    fields: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)

    def add(self, name: str | None, message: str) -> None:
        if name is None:
            self.general.append(message)
        elif name in self.fields:
            if message not in self.fields[name]:
                self.fields[name] = f"{self.fields[name]}; {message}"
        else:
            self.fields[name] = message


def field_for_path(path: str) -> str | None:
    """The form field of a validation error path; None when no field shows it."""
    prefix = ""
    if path == "backward":
        return "same_for_backward"
    if path.startswith("backward."):
        prefix, path = BACKWARD_PREFIX, path.removeprefix("backward.")
    name = _PATH_TO_FIELD.get(path)
    if name is None:
        return None
    if prefix and name in TOP_FIELDS:
        return None
    return f"{prefix}{name}"


def map_errors(errors: list[FieldError], into: FormErrors | None = None) -> FormErrors:
    out = into if into is not None else FormErrors()
    for error in errors:
        name = field_for_path(error.path)
        out.add(name, error.message if name else str(error))
    return out


THRESHOLD_RANGE = (THRESHOLD_MIN, THRESHOLD_MAX)
