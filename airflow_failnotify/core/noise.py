"""The ``noise`` section of a direction's configuration (issue 18): validation and the file shape.

Pure: imports nothing from Airflow, SQLAlchemy or Flask. Durations read like the other durations of a
configuration: a whole number in the option's unit (seconds for the group wait, minutes for the repeat
interval), or a number with a unit (``30s``, ``2m``, ``1h``, ``1d``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from airflow_failnotify.core.model import GROUP_WAIT_MAX_SECONDS, REPEAT_INTERVAL_MAX_MINUTES, NoiseSettings
from airflow_failnotify.core.validation import Collector, check_unknown, join, parse_bool

__all__ = ["NOISE_KEY", "NOISE_KEYS", "noise_to_dict", "parse_noise", "parse_seconds"]

NOISE_KEY = "noise"
NOISE_KEYS = {"coalesce", "group_wait_seconds", "repeat_interval_minutes", "recovery_mail"}

_SECONDS_RE = re.compile(
    r"^\s*(\d+)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|d|days?)?\s*$", re.IGNORECASE
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_seconds(value: Any, *, default_unit: str) -> int:
    """Seconds from a whole number in ``default_unit`` (``"s"`` or ``"m"``), or a string with a unit.

    ``90`` with unit ``"m"`` is 5400; ``"30s"``, ``"2m"``, ``"1h"`` and ``"1d"`` say their unit.
    """
    if isinstance(value, bool):
        raise ValueError("must be a whole number or a duration")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        return value * _UNIT_SECONDS[default_unit]
    if isinstance(value, str):
        match = _SECONDS_RE.match(value)
        if match:
            unit = (match.group(2) or default_unit).lower()[0]
            return int(match.group(1)) * _UNIT_SECONDS[unit]
    raise ValueError("must be a whole number or a duration such as 30s, 2m, 1h or 1d")


def _duration(
    data: Mapping[str, Any], key: str, *, default: int, unit: str, maximum: int, path: str, out: Collector
) -> int:
    """The option in its own unit (seconds or minutes), 0..``maximum``; ``default`` when absent."""
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    unit_seconds = _UNIT_SECONDS[unit]
    unit_name = "seconds" if unit == "s" else "minutes"
    try:
        seconds = parse_seconds(value, default_unit=unit)
    except ValueError as err:
        out.add(join(path, key), str(err))
        return default
    if seconds % unit_seconds:
        out.add(join(path, key), f"must be a whole number of {unit_name}")
        return default
    if seconds // unit_seconds > maximum:
        out.add(join(path, key), f"must be from 0 to {maximum} {unit_name}")
        return default
    return seconds // unit_seconds


def parse_noise(
    data: Mapping[str, Any] | None, base: NoiseSettings | None, path: str, out: Collector
) -> NoiseSettings:
    """The ``noise`` mapping of a direction; omitted keys keep ``base`` (the defaults without one)."""
    base = base or NoiseSettings()
    if data is None:
        return base
    check_unknown(data, NOISE_KEYS, path, out)
    return NoiseSettings(
        coalesce=parse_bool(data, "coalesce", base.coalesce, path, out),
        group_wait_seconds=_duration(
            data,
            "group_wait_seconds",
            default=base.group_wait_seconds,
            unit="s",
            maximum=GROUP_WAIT_MAX_SECONDS,
            path=path,
            out=out,
        ),
        repeat_interval_minutes=_duration(
            data,
            "repeat_interval_minutes",
            default=base.repeat_interval_minutes,
            unit="m",
            maximum=REPEAT_INTERVAL_MAX_MINUTES,
            path=path,
            out=out,
        ),
        recovery_mail=parse_bool(data, "recovery_mail", base.recovery_mail, path, out),
    )


def noise_to_dict(noise: NoiseSettings) -> dict[str, Any]:
    """The file shape (always exported, so the file shows what applies)."""
    return {
        "coalesce": noise.coalesce,
        "group_wait_seconds": noise.group_wait_seconds,
        "repeat_interval_minutes": noise.repeat_interval_minutes,
        "recovery_mail": noise.recovery_mail,
    }


def noise_from_dict(data: Mapping[str, Any] | None) -> NoiseSettings:
    """A trusted dict (an outbox payload); one written before noise control existed gives the defaults."""
    if not data:
        return NoiseSettings()
    return NoiseSettings(**{key: data[key] for key in NOISE_KEYS if key in data})
