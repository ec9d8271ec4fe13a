"""``[failnotify]`` options read and validated in settings.py: the storm cap's two options."""

from __future__ import annotations

import pytest

from airflow_failnotify import settings
from airflow_failnotify.core.storm import StormCap
from airflow_failnotify.exceptions import ConfigurationError
from airflow_failnotify.get_provider_info import get_provider_info
from airflow_failnotify.service.passes import run_notification_pass
from airflow_failnotify.store import Store

MAILS = "AIRFLOW__FAILNOTIFY__STORM_CAP_MAILS"
WINDOW = "AIRFLOW__FAILNOTIFY__STORM_CAP_WINDOW_MINUTES"


def test_the_storm_cap_is_off_by_default_with_a_60_minute_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAILS, raising=False)
    monkeypatch.delenv(WINDOW, raising=False)
    assert settings.storm_cap() == StormCap(mails=0, window_minutes=60)
    assert not settings.DeliverySettings.load().storm_cap.on
    options = get_provider_info()["config"]["failnotify"]["options"]
    for name in ("storm_cap_mails", "storm_cap_window_minutes"):
        assert options[name]["default"] == settings.DEFAULTS[name]


def test_the_storm_cap_options_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAILS, "20")
    monkeypatch.setenv(WINDOW, "1440")
    assert settings.DeliverySettings.load().storm_cap == StormCap(mails=20, window_minutes=1440)


@pytest.mark.parametrize(
    ("mails", "window", "message"),
    [
        ("-1", "60", r"\[failnotify\] storm_cap_mails must be 0 \(off\) or the number of mails .* got -1"),
        ("many", "60", r"\[failnotify\] storm_cap_mails must be a whole number, got 'many'"),
        ("20", "0", r"\[failnotify\] storm_cap_window_minutes must be a whole number of minutes from 1 to"),
        ("20", "1441", r"storm_cap_window_minutes must be .* from 1 to 1440 \(e\.g\. 60\), got 1441"),
        ("20", "1h", r"\[failnotify\] storm_cap_window_minutes must be a whole number, got '1h'"),
    ],
)
def test_a_bad_storm_cap_option_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, mails: str, window: str, message: str
) -> None:
    monkeypatch.setenv(MAILS, mails)
    monkeypatch.setenv(WINDOW, window)
    with pytest.raises(ConfigurationError, match=message):
        settings.DeliverySettings.load()


def test_a_pass_with_a_bad_storm_cap_option_says_which_one(
    monkeypatch: pytest.MonkeyPatch, sqlite_store: Store
) -> None:
    monkeypatch.setenv(MAILS, "5")
    monkeypatch.setenv(WINDOW, "0")
    with pytest.raises(ConfigurationError, match="storm_cap_window_minutes"):
        run_notification_pass(trigger="cli", store=sqlite_store, dag_status=lambda dag_ids: {})
