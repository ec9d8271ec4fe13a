"""Reading a connection's extras safely: an empty string (or spaces) counts as missing. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def text(extras: Mapping[str, Any], name: str) -> str:
    value = extras.get(name)
    if is_missing(value):
        return ""
    return str(value).strip()


def secret(extras: Mapping[str, Any], name: str) -> str:
    """A secret extra, verbatim (not stripped: a secret's spaces are its own); empty when missing."""
    value = extras.get(name)
    return "" if is_missing(value) else str(value)


def choice(extras: Mapping[str, Any], name: str, allowed: tuple[str, ...], errors: dict[str, str]) -> str:
    """A lower-cased extra that must be one of ``allowed``; empty when missing."""
    value = text(extras, name).lower()
    if value and value not in allowed:
        errors[name] = f"unknown {name} {value!r}; use one of: {', '.join(allowed)}"
    return value
