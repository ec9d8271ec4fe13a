"""Secrets of a connection: registered with Airflow's secret masker, and redacted from messages."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)


DEFAULT_MIN_LENGTH_MASKED = 5  # Airflow's [logging] min_length_masked_secret default


def _min_length_masked() -> int:
    try:
        from airflow.configuration import conf

        return conf.getint("logging", "min_length_masked_secret", fallback=DEFAULT_MIN_LENGTH_MASKED)
    except Exception:
        return DEFAULT_MIN_LENGTH_MASKED


def mask_secret(value: str) -> None:
    """Register ``value`` with Airflow's secret masker (task SDK first); a no-op without Airflow.

    A value shorter than ``[logging] min_length_masked_secret`` is not given to the masker: it would
    not mask it and would print "Skipping masking for a secret as it's too short" on every command.
    Such a value is still removed from the package's own messages (:func:`redact`).
    """
    if not value:
        return
    if len(value) < _min_length_masked():
        log.debug("a secret shorter than [logging] min_length_masked_secret is not masked in Airflow's logs")
        return
    masker: Any = None
    try:
        from airflow.sdk.log import mask_secret as masker
    except ImportError:  # pragma: no cover - older / newer Airflow layouts
        try:
            from airflow.sdk.execution_time.secrets_masker import (  # type: ignore[no-redef]
                mask_secret as masker,
            )
        except ImportError:
            try:
                from airflow.utils.log.secrets_masker import mask_secret as masker  # type: ignore[no-redef]
            except ImportError:
                return
    try:
        masker(value)
    except Exception:  # masking must never break sending
        log.debug("could not register a secret with Airflow's secret masker", exc_info=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret (longest first) in ``text`` with ***."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
