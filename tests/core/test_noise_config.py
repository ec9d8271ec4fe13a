"""The ``noise`` section of a direction (issue 18): defaults, durations, errors at the path, round trip."""

from __future__ import annotations

import pytest

from airflow_failnotify.core.config import ConfigValidationError, parse_document, parse_registration
from airflow_failnotify.core.config_export import document_to_dict, registration_to_dict
from airflow_failnotify.core.model import Direction, NoiseSettings


def base(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "integration": "sync_a",
        "smtp_conn_id": "mail",
        "recipients": "ops@example.com",
    }
    data.update(overrides)
    return data


def errors_of(data: object) -> dict[str, str]:
    with pytest.raises(ConfigValidationError) as info:
        parse_registration(data)
    return info.value.by_field()


def test_no_noise_section_gives_the_defaults() -> None:
    noise = parse_registration(base()).forward.noise
    # The defaults cut noise without hiding anything (README, Noise control).
    assert noise == NoiseSettings(
        coalesce=True, group_wait_seconds=5, repeat_interval_minutes=60, recovery_mail=False
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"repeat_interval_minutes": "1h"}, {"repeat_interval_minutes": 60}),
        ({"repeat_interval_minutes": 90}, {"repeat_interval_minutes": 90}),
        ({"repeat_interval_minutes": "1d"}, {"repeat_interval_minutes": 1440}),
        ({"repeat_interval_minutes": 0}, {"repeat_interval_minutes": 0}),
        ({"group_wait_seconds": "30s"}, {"group_wait_seconds": 30}),
        ({"group_wait_seconds": "2m"}, {"group_wait_seconds": 120}),
        ({"group_wait_seconds": 0}, {"group_wait_seconds": 0}),
        ({"coalesce": "no", "recovery_mail": "yes"}, {"coalesce": False, "recovery_mail": True}),
        ({"repeat_interval_minutes": ""}, {"repeat_interval_minutes": 60}),  # empty: the default
    ],
)
def test_noise_options_and_durations(given: dict[str, object], expected: dict[str, object]) -> None:
    noise = parse_registration(base(noise=given)).forward.noise
    for key, value in expected.items():
        assert getattr(noise, key) == value


@pytest.mark.parametrize(
    ("given", "path", "fragment"),
    [
        ({"group_wait_seconds": 301}, "noise.group_wait_seconds", "0 to 300 seconds"),
        ({"group_wait_seconds": "6m"}, "noise.group_wait_seconds", "0 to 300 seconds"),
        ({"group_wait_seconds": -1}, "noise.group_wait_seconds", "negative"),
        ({"repeat_interval_minutes": "2d"}, "noise.repeat_interval_minutes", "0 to 1440 minutes"),
        ({"repeat_interval_minutes": "30s"}, "noise.repeat_interval_minutes", "whole number of minutes"),
        ({"repeat_interval_minutes": "soon"}, "noise.repeat_interval_minutes", "duration"),
        ({"repeat_interval_minutes": True}, "noise.repeat_interval_minutes", "whole number"),
        ({"coalesce": "maybe"}, "noise.coalesce", "true or false"),
        ({"loud": True}, "noise.loud", "unknown key"),
    ],
)
def test_bad_noise_values_are_named_at_their_path(given: dict[str, object], path: str, fragment: str) -> None:
    errors = errors_of(base(noise=given))
    assert fragment in errors[path]


def test_noise_must_be_a_mapping() -> None:
    assert "mapping" in errors_of(base(noise="quiet"))["noise"]


def test_backward_noise_errors_carry_the_backward_path() -> None:
    errors = errors_of(
        base(
            backward_integration="sync_b",
            same_for_backward=False,
            backward={"noise": {"group_wait_seconds": 1000}},
        )
    )
    assert "backward.noise.group_wait_seconds" in errors


def test_backward_inherits_forward_noise_and_overrides_per_key() -> None:
    reg = parse_registration(
        base(
            backward_integration="sync_b",
            noise={"repeat_interval_minutes": "2h", "recovery_mail": True},
            same_for_backward=False,
            backward={"noise": {"recovery_mail": False}},
        )
    )
    backward = reg.settings_for(Direction.BACKWARD).noise
    assert backward.repeat_interval_minutes == 120 and backward.recovery_mail is False
    assert reg.forward.noise.recovery_mail is True


def test_same_for_backward_copies_noise() -> None:
    reg = parse_registration(base(backward_integration="sync_b", noise={"recovery_mail": True}))
    assert reg.settings_for(Direction.BACKWARD).noise.recovery_mail is True


def test_noise_is_always_exported_and_round_trips() -> None:
    defaults = registration_to_dict(parse_registration(base()))
    assert defaults["noise"] == {
        "coalesce": True,
        "group_wait_seconds": 5,
        "repeat_interval_minutes": 60,
        "recovery_mail": False,
    }
    original = parse_document(
        {
            "notifications": [
                base(
                    backward_integration="sync_b",
                    noise={"coalesce": False, "group_wait_seconds": "1m", "repeat_interval_minutes": 0},
                    same_for_backward=False,
                    backward={"noise": {"recovery_mail": True}},
                )
            ]
        }
    )
    exported = document_to_dict(original)
    assert exported["notifications"][0]["backward"]["noise"]["recovery_mail"] is True
    assert parse_document(exported) == original
