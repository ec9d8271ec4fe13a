"""The Post Failure Notification job's schedule: the drop-down's presets and which value wins.

The setting chosen in the plugin's Settings view wins over ``[failnotify] notification_schedule``,
which wins over the default of every 30 minutes.
"""

from __future__ import annotations

import re

from airflow_failnotify.constants import DEFAULT_NOTIFICATION_SCHEDULE

DEFAULT_SCHEDULE = DEFAULT_NOTIFICATION_SCHEDULE
SETTING_KEY = "notification_schedule"

# (value stored, label shown) in the order of the drop-down; all times UTC.
PRESETS: tuple[tuple[str, str], ...] = (
    ("*/5 * * * *", "Every 5 minutes"),
    ("*/10 * * * *", "Every 10 minutes"),
    ("*/15 * * * *", "Every 15 minutes"),
    (DEFAULT_SCHEDULE, "Every 30 minutes (default)"),
    ("0 * * * *", "Every hour"),
    ("0 */2 * * *", "Every 2 hours"),
    ("0 */6 * * *", "Every 6 hours"),
    ("0 */12 * * *", "Every 12 hours"),
    ("0 0 * * *", "Daily at 00:00 UTC"),
)
PRESET_VALUES = frozenset(value for value, _ in PRESETS)

_AIRFLOW_PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z?LW#]+$")


def normalise(value: str) -> str:
    """A cron expression from a cron expression or an Airflow preset; ValueError when neither."""
    text = " ".join(value.split())
    if text in _AIRFLOW_PRESETS:
        return _AIRFLOW_PRESETS[text]
    fields = text.split(" ")
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ValueError(f"{value!r} is not a 5-field cron expression or a preset such as @hourly")
    return text


def resolve(stored: str | None, configured: str | None) -> tuple[str, str]:
    """(cron, where it came from): the stored setting, else the config option, else the default.

    An invalid value is skipped (the caller logs it), so a typo never stops the job.
    """
    for source, value in (("settings view", stored), ("[failnotify] notification_schedule", configured)):
        if value and value.strip():
            try:
                return normalise(value), source
            except ValueError:
                continue
    return DEFAULT_SCHEDULE, "default"


def label_for(cron: str) -> str:
    """The preset's label, or ``Custom schedule`` (pages show the expression next to it, once)."""
    for value, label in PRESETS:
        if value == cron:
            return label
    return "Custom schedule"
