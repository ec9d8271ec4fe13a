"""The building blocks of configuration validation: errors by path, and the checks every section shares.

Pure: imports nothing from Airflow, SQLAlchemy or Flask. :mod:`airflow_failnotify.core.config` (the
registration) and :mod:`airflow_failnotify.core.noise` (its ``noise`` section) collect their errors
here, so a person sees every problem of a form or a file at once, each named by its path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Collector",
    "ConfigValidationError",
    "FieldError",
    "check_unknown",
    "join",
    "mapping",
    "parse_bool",
]


@dataclass(frozen=True)
class FieldError:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigValidationError(ValueError):
    """Every problem found in a registration or a configuration document."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors))

    def by_field(self) -> dict[str, str]:
        """Messages keyed by the last path segment, for showing them next to form fields."""
        out: dict[str, str] = {}
        for err in self.errors:
            out.setdefault(err.path, err.message)
        return out


class Collector:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))


def join(base: str, key: str) -> str:
    return f"{base}.{key}" if base else key


def check_unknown(data: Mapping[str, Any], allowed: set[str], path: str, out: Collector) -> None:
    for key in data:
        if key not in allowed:
            out.add(join(path, str(key)), f"unknown key (allowed: {', '.join(sorted(allowed))})")


def parse_bool(data: Mapping[str, Any], key: str, default: bool, path: str, out: Collector) -> bool:
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "yes", "on", "1"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "no", "off", "0"}:
        return False
    out.add(join(path, key), "must be true or false")
    return default


def mapping(data: Mapping[str, Any], key: str, path: str, out: Collector) -> Mapping[str, Any] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        out.add(join(path, key), "must be a mapping")
        return None
    return value
