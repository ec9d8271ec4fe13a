"""Validation and (de)serialisation of notification registrations.

One entry point for every way configuration comes in: the views, the CLI and
``failnotify config import`` all build a plain dict in the documented shape (see
README, "Configuration as code") and call :func:`parse_registration` or
:func:`parse_document`. Errors are collected, not raised one at a time, so a person
sees every problem of a form or a file at once, each named by its path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from airflow_failnotify.constants import NOTIFICATION_DAG_ID
from airflow_failnotify.core.addresses import parse_registration_addresses as parse_address_list
from airflow_failnotify.core.model import (
    THRESHOLD_MAX,
    THRESHOLD_MIN,
    DirectionSettings,
    GlobalSettings,
    ProcessingSettings,
    Registration,
)
from airflow_failnotify.core.noise import NOISE_KEY, parse_noise
from airflow_failnotify.core.validation import Collector as _Collector
from airflow_failnotify.core.validation import ConfigValidationError, FieldError
from airflow_failnotify.core.validation import check_unknown as _check_unknown
from airflow_failnotify.core.validation import join as _join
from airflow_failnotify.core.validation import mapping as _mapping
from airflow_failnotify.core.validation import parse_bool as _bool

__all__ = [
    "ConfigValidationError",
    "FieldError",
    "bulk_registration",
    "check_dag_conflicts",
    "parse_document",
    "parse_duration_minutes",
    "parse_registration",
    "with_registered_at",
]

SUBJECT_PREFIX_MAX = 100
MAX_INACTIVITY_MINUTES = 60 * 24 * 365
MAX_RECIPIENTS = 100

# Airflow's own rule for DAG ids (airflow.utils.helpers.KEY_REGEX) and connection ids.
_DAG_ID_RE = re.compile(r"^[\w.-]{1,250}$")
_CONN_ID_RE = re.compile(r"^[\w.-]{1,250}$")
# A practical address check: one local part, one domain, nothing that could break a header.
_EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_DURATION_RE = re.compile(r"^\s*(\d+)\s*(m|min|mins|minutes?|h|hours?|d|days?)?\s*$", re.IGNORECASE)

_TOP_KEYS = {
    "integration",
    "backward_integration",
    "same_for_backward",
    "backward",
}
_DIRECTION_KEYS = {
    "smtp_conn_id",
    "recipients",
    "cc",
    "subject_prefix",
    "include_error_trace",
    "global",
    "processing",
    NOISE_KEY,
}
_GLOBAL_KEYS = {"enabled", "inactivity_minutes", "notify_immediately", "failure_count_threshold"}
_PROCESSING_KEYS = {"enabled", "notify_before_max_retries"}


def parse_duration_minutes(value: Any) -> int | None:
    """Minutes from an int, or a string such as ``"90"``, ``"90m"``, ``"2h"``, ``"1d"``; None/"" is None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError("must be a number of minutes")
    if isinstance(value, int):
        minutes = value
    elif isinstance(value, float) and value.is_integer():
        minutes = int(value)
    elif isinstance(value, str):
        match = _DURATION_RE.match(value)
        if not match:
            raise ValueError("must be a number of minutes, or a duration such as 90m, 2h or 1d")
        number, unit = int(match.group(1)), (match.group(2) or "m").lower()
        minutes = number * (60 if unit.startswith("h") else 1440 if unit.startswith("d") else 1)
    else:
        raise ValueError("must be a number of minutes")
    if minutes <= 0:
        raise ValueError("must be greater than 0 (leave it empty for no inactivity mail)")
    if minutes > MAX_INACTIVITY_MINUTES:
        raise ValueError("must be at most one year (525600 minutes)")
    return minutes


def _addresses(value: Any, path: str, out: _Collector, *, required: bool) -> tuple[str, ...]:
    try:
        items = parse_address_list(value)
    except TypeError as err:
        out.add(path, str(err))
        return ()
    if required and not items:
        out.add(path, "at least one recipient address is required")
    if len(items) > MAX_RECIPIENTS:
        out.add(path, f"at most {MAX_RECIPIENTS} addresses")
    for item in items:
        if not _EMAIL_RE.match(item):
            out.add(path, f"{item!r} is not a valid email address")
    return tuple(dict.fromkeys(items))  # keep order, drop repeats


def _subject_prefix(value: Any, path: str, out: _Collector) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        out.add(path, "must be text")
        return ""
    if any(ord(ch) < 32 or 127 <= ord(ch) <= 159 or ch in "\u2028\u2029" for ch in value):
        out.add(path, "must be a single line (no line breaks or control characters)")
    if len(value) > SUBJECT_PREFIX_MAX:
        out.add(path, f"must be at most {SUBJECT_PREFIX_MAX} characters")
    return value.strip()


def _threshold(value: Any, path: str, out: _Collector) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return THRESHOLD_MIN
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or not THRESHOLD_MIN <= number <= THRESHOLD_MAX:
        out.add(path, f"must be a whole number from {THRESHOLD_MIN} to {THRESHOLD_MAX}")
        return THRESHOLD_MIN
    return number


def _parse_global(
    data: Mapping[str, Any] | None, base: GlobalSettings, path: str, out: _Collector
) -> GlobalSettings:
    if data is None:
        return base
    _check_unknown(data, _GLOBAL_KEYS, path, out)
    inactivity = base.inactivity_minutes
    if "inactivity_minutes" in data:
        try:
            inactivity = parse_duration_minutes(data["inactivity_minutes"])
        except ValueError as err:
            out.add(_join(path, "inactivity_minutes"), str(err))
    threshold = base.failure_count_threshold
    if "failure_count_threshold" in data:
        threshold = _threshold(data["failure_count_threshold"], _join(path, "failure_count_threshold"), out)
    return GlobalSettings(
        enabled=_bool(data, "enabled", base.enabled, path, out),
        inactivity_minutes=inactivity,
        notify_immediately=_bool(data, "notify_immediately", base.notify_immediately, path, out),
        failure_count_threshold=threshold,
    )


def _parse_processing(
    data: Mapping[str, Any] | None, base: ProcessingSettings, path: str, out: _Collector
) -> ProcessingSettings:
    if data is None:
        return base
    _check_unknown(data, _PROCESSING_KEYS, path, out)
    return ProcessingSettings(
        enabled=_bool(data, "enabled", base.enabled, path, out),
        notify_before_max_retries=_bool(
            data, "notify_before_max_retries", base.notify_before_max_retries, path, out
        ),
    )


def _parse_direction(
    data: Mapping[str, Any], base: DirectionSettings | None, path: str, out: _Collector
) -> DirectionSettings:
    """Per-direction keys; with ``base`` (the backward section) omitted keys inherit from it."""
    smtp_conn_id = base.smtp_conn_id if base else ""
    if "smtp_conn_id" in data or base is None:
        raw = data.get("smtp_conn_id")
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            out.add(_join(path, "smtp_conn_id"), "an email server (SMTP connection id) is required")
        elif not isinstance(raw, str) or not _CONN_ID_RE.match(raw.strip()):
            out.add(_join(path, "smtp_conn_id"), "must be a connection id (letters, digits, _ . -)")
        else:
            smtp_conn_id = raw.strip()

    recipients = base.recipients if base else ()
    if "recipients" in data or base is None:
        recipients = _addresses(data.get("recipients"), _join(path, "recipients"), out, required=True)
    cc = base.cc if base else ()
    if "cc" in data:
        cc = _addresses(data.get("cc"), _join(path, "cc"), out, required=False)
    prefix = base.subject_prefix if base else ""
    if "subject_prefix" in data:
        prefix = _subject_prefix(data.get("subject_prefix"), _join(path, "subject_prefix"), out)

    global_base = base.global_ if base else GlobalSettings()
    processing_base = base.processing if base else ProcessingSettings()
    return DirectionSettings(
        smtp_conn_id=smtp_conn_id,
        recipients=recipients,
        cc=cc,
        subject_prefix=prefix,
        include_error_trace=_bool(
            data, "include_error_trace", base.include_error_trace if base else True, path, out
        ),
        global_=_parse_global(_mapping(data, "global", path, out), global_base, _join(path, "global"), out),
        processing=_parse_processing(
            _mapping(data, "processing", path, out), processing_base, _join(path, "processing"), out
        ),
        noise=parse_noise(
            _mapping(data, NOISE_KEY, path, out), base.noise if base else None, _join(path, NOISE_KEY), out
        ),
    )


def _dag_id(value: Any, path: str, out: _Collector, *, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            out.add(path, "a DAG id is required")
        return None
    if not isinstance(value, str) or not _DAG_ID_RE.match(value.strip()):
        out.add(path, "must be a DAG id (letters, digits, _ . -; at most 250 characters)")
        return None
    dag_id = value.strip()
    if dag_id == NOTIFICATION_DAG_ID:
        out.add(path, "the notification DAG itself cannot be registered")
    return dag_id


def _parse_into(data: Any, path: str, out: _Collector) -> Registration | None:
    if not isinstance(data, Mapping):
        out.add(path, "must be a mapping")
        return None
    _check_unknown(data, _TOP_KEYS | _DIRECTION_KEYS, path, out)
    integration = _dag_id(data.get("integration"), _join(path, "integration"), out, required=True)
    backward_dag = _dag_id(
        data.get("backward_integration"), _join(path, "backward_integration"), out, required=False
    )
    if integration and backward_dag and integration == backward_dag:
        out.add(_join(path, "backward_integration"), "must be a different DAG from the integration itself")
    forward = _parse_direction(data, None, path, out)
    same = _bool(data, "same_for_backward", True, path, out)

    backward: DirectionSettings | None = None
    backward_data = _mapping(data, "backward", path, out)
    if backward_data is not None:
        if same:
            out.add(_join(path, "backward"), "only allowed when same_for_backward is false")
        else:
            _check_unknown(backward_data, _DIRECTION_KEYS, _join(path, "backward"), out)
            backward = _parse_direction(backward_data, forward, _join(path, "backward"), out)
    elif not same:
        backward = forward
    if not same and not backward_dag:
        out.add(_join(path, "same_for_backward"), "separate backward settings need a backward_integration")

    if integration is None:
        return None
    return Registration(
        integration=integration,
        forward=forward,
        backward_integration=backward_dag,
        same_for_backward=same,
        backward=backward,
    )


def parse_registration(data: Any, *, path: str = "") -> Registration:
    """Validate one registration dict; raise :class:`ConfigValidationError` with every problem."""
    out = _Collector()
    registration = _parse_into(data, path, out)
    if out.errors or registration is None:
        raise ConfigValidationError(out.errors or [FieldError(path, "invalid registration")])
    return registration


def check_dag_conflicts(
    registrations: Iterable[tuple[str, Registration]], existing: Iterable[Registration] = ()
) -> list[FieldError]:
    """A DAG may belong to one registration only, as forward or as backward DAG.

    ``registrations`` are (path, registration) pairs being saved; ``existing`` are the stored
    ones they must not collide with (a registration never collides with its own stored self).
    """
    errors: list[FieldError] = []
    saving = list(registrations)
    saving_ids = {reg.integration for _, reg in saving}
    owner: dict[str, str] = {}
    for reg in existing:
        if reg.integration in saving_ids:
            continue
        for dag_id in (reg.integration, reg.backward_integration):
            if dag_id:
                owner[dag_id] = reg.integration
    for path, reg in saving:
        for key, dag_id in (
            ("integration", reg.integration),
            ("backward_integration", reg.backward_integration),
        ):
            if not dag_id:
                continue
            if dag_id in owner and owner[dag_id] != reg.integration:
                errors.append(
                    FieldError(
                        _join(path, key), f"DAG {dag_id!r} is already used by integration {owner[dag_id]!r}"
                    )
                )
            elif dag_id in owner:
                errors.append(FieldError(_join(path, key), f"DAG {dag_id!r} appears twice"))
            else:
                owner[dag_id] = reg.integration
    return errors


def parse_document(document: Any) -> list[Registration]:
    """Validate a whole configuration file (``{"notifications": [...]}``) as one unit."""
    out = _Collector()
    if not isinstance(document, Mapping):
        raise ConfigValidationError(
            [FieldError("", "the file must be a mapping with a 'notifications' list")]
        )
    _check_unknown(document, {"notifications"}, "", out)
    entries = document.get("notifications")
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise ConfigValidationError([FieldError("notifications", "must be a list")])
    parsed: list[tuple[str, Registration]] = []
    for index, entry in enumerate(entries):
        path = f"notifications[{index}]"
        registration = _parse_into(entry, path, out)
        if registration is not None:
            parsed.append((path, registration))
    out.errors.extend(check_dag_conflicts(parsed))
    if out.errors:
        raise ConfigValidationError(out.errors)
    return [reg for _, reg in parsed]


def bulk_registration(
    integration: str, *, smtp_conn_id: str, recipients: Any, cc: Any = None, subject_prefix: str = ""
) -> Registration:
    """The seed's bulk configuration: global and processing enabled, both directions alike."""
    return parse_registration(
        {
            "integration": integration,
            "smtp_conn_id": smtp_conn_id,
            "recipients": recipients,
            "cc": cc,
            "subject_prefix": subject_prefix,
            "global": {"enabled": True},
            "processing": {"enabled": True},
            "same_for_backward": True,
        }
    )


def with_registered_at(registration: Registration, when: Any) -> Registration:
    return replace(registration, registered_at=when)
