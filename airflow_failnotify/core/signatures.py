"""Failures grouped by error signature: identical errors are one line with a count (issue 18).

Pure: imports nothing from Airflow, SQLAlchemy or Flask. A signature is the exception type and the
message with what varies from one failure to the next taken out: the failed entity's own name,
numbers, hexadecimal addresses and UUIDs. ``ValueError: ERP refused INV-7001: currency 'XBT'`` and
``ValueError: ERP refused INV-7002: currency 'XBT'`` are one signature; the same text from another
exception type is another. The mail and the error-trace PDF show one entry per signature, naming
every failure in it, so folding hides nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from airflow_failnotify.core.model import FailureEvent
from airflow_failnotify.core.text import entity_label

__all__ = ["ErrorGroup", "error_type", "group_by_signature", "signature_of"]

_TYPE = re.compile(r"^([A-Za-z_][\w.]*)(?::\s|$)")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_HEX = re.compile(r"\b0x[0-9a-f]+\b", re.I)
_NUMBER = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")


def error_type(message: str) -> str:
    """The exception type a captured message starts with (``"ValueError: ..."``), or ``""``."""
    match = _TYPE.match(message.strip())
    return match.group(1) if match else ""


def signature_of(event: FailureEvent) -> str:
    """The exception type and the normalised message of ``event``'s error."""
    text = event.error_message.strip()
    for name in {n for n in (event.entity, entity_label(event)) if n and len(n) > 1}:
        text = text.replace(name, "<entity>")
    text = _UUID.sub("<uuid>", text)
    text = _HEX.sub("<hex>", text)
    text = _NUMBER.sub("<n>", text)
    return _SPACE.sub(" ", text)


@dataclass(frozen=True)
class ErrorGroup:
    """The failures of one signature, in the order they happened."""

    signature: str
    events: tuple[FailureEvent, ...]

    @property
    def first(self) -> FailureEvent:
        return self.events[0]

    @property
    def count(self) -> int:
        return len(self.events)

    @property
    def first_at(self) -> datetime:
        return min(e.occurred_at for e in self.events)

    @property
    def last_at(self) -> datetime:
        return max(e.occurred_at for e in self.events)

    def labels(self) -> list[str]:
        """Each failed entity once, in order."""
        return list(dict.fromkeys(entity_label(e) for e in self.events))


def group_by_signature(events: Sequence[FailureEvent]) -> list[ErrorGroup]:
    """``events`` by signature, the groups in the order of their first failure."""
    groups: dict[str, list[FailureEvent]] = {}
    for event in sorted(events, key=lambda e: e.occurred_at):
        groups.setdefault(signature_of(event), []).append(event)
    return [ErrorGroup(signature, tuple(of_signature)) for signature, of_signature in groups.items()]
