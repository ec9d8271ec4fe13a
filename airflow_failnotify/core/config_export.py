"""Registrations as plain dicts: the documented import/export file shape and the store's JSON columns.

The inverse of :mod:`airflow_failnotify.core.config`'s parsing (a round trip gives the same
registration).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airflow_failnotify.core.model import DirectionSettings, Registration
from airflow_failnotify.core.noise import NOISE_KEY, noise_to_dict


def direction_to_dict(settings: DirectionSettings) -> dict[str, Any]:
    return {
        "smtp_conn_id": settings.smtp_conn_id,
        "recipients": list(settings.recipients),
        "cc": list(settings.cc),
        "subject_prefix": settings.subject_prefix,
        "include_error_trace": settings.include_error_trace,
        "global": {
            "enabled": settings.global_.enabled,
            "inactivity_minutes": settings.global_.inactivity_minutes,
            "notify_immediately": settings.global_.notify_immediately,
            "failure_count_threshold": settings.global_.failure_count_threshold,
        },
        "processing": {
            "enabled": settings.processing.enabled,
            "notify_before_max_retries": settings.processing.notify_before_max_retries,
        },
        NOISE_KEY: noise_to_dict(settings.noise),
    }


def registration_to_dict(registration: Registration) -> dict[str, Any]:
    """The documented file shape; the backward section lists only what differs from forward."""
    data: dict[str, Any] = {"integration": registration.integration}
    if registration.backward_integration:
        data["backward_integration"] = registration.backward_integration
    data.update(direction_to_dict(registration.forward))
    data["same_for_backward"] = registration.same_for_backward
    if not registration.same_for_backward and registration.backward is not None:
        forward = direction_to_dict(registration.forward)
        backward = direction_to_dict(registration.backward)
        diff = {key: value for key, value in backward.items() if forward.get(key) != value}
        if diff:
            data["backward"] = diff
    return data


def document_to_dict(registrations: Iterable[Registration]) -> dict[str, Any]:
    return {
        "notifications": [registration_to_dict(r) for r in sorted(registrations, key=lambda r: r.integration)]
    }
