"""Validation of registrations: the one function behind the views, the CLI and config import."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from airflow_failnotify.core.config import (
    ConfigValidationError,
    bulk_registration,
    parse_document,
    parse_duration_minutes,
    parse_registration,
)
from airflow_failnotify.core.config_export import document_to_dict
from airflow_failnotify.core.model import Direction

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "failnotify.yaml"


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


def test_minimal_registration_takes_documented_defaults() -> None:
    reg = parse_registration(base())
    settings = reg.forward
    assert settings.recipients == ("ops@example.com",)
    assert settings.include_error_trace is True
    assert settings.global_.enabled and settings.global_.notify_immediately
    assert settings.global_.inactivity_minutes is None
    assert settings.processing.enabled and not settings.processing.notify_before_max_retries
    assert reg.directions() == (Direction.FORWARD,)


def test_recipients_list_or_comma_string_deduplicated() -> None:
    reg = parse_registration(base(recipients="a@x.io, b@x.io;a@x.io", cc=["c@x.io"]))
    assert reg.forward.recipients == ("a@x.io", "b@x.io")
    assert reg.forward.cc == ("c@x.io",)


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"recipients": ""}, "recipients", "at least one"),
        ({"recipients": "not-an-address"}, "recipients", "not a valid email"),
        ({"recipients": "a@x.io\r\nBcc: evil@x.io"}, "recipients", "not a valid email"),
        ({"cc": "ok@x.io, bad@"}, "cc", "not a valid email"),
        (
            {"global": {"notify_immediately": False, "failure_count_threshold": 0}},
            "global.failure_count_threshold",
            "1 to 20",
        ),
        ({"global": {"failure_count_threshold": 21}}, "global.failure_count_threshold", "1 to 20"),
        ({"global": {"failure_count_threshold": "abc"}}, "global.failure_count_threshold", "1 to 20"),
        ({"subject_prefix": "[Sync]\r\nBcc: x@y.io"}, "subject_prefix", "single line"),
        ({"subject_prefix": "x" * 101}, "subject_prefix", "at most 100"),
        ({"global": {"inactivity_minutes": 0}}, "global.inactivity_minutes", "greater than 0"),
        ({"global": {"inactivity_minutes": "soon"}}, "global.inactivity_minutes", "duration"),
        ({"backward_integration": "sync_a"}, "backward_integration", "different DAG"),
        ({"smtp_conn_id": ""}, "smtp_conn_id", "required"),
        ({"smtp_conn_id": "bad id!"}, "smtp_conn_id", "connection id"),
        ({"integration": "failnotify_post_failure_notification"}, "integration", "notification DAG"),
        ({"integration": "bad dag/id"}, "integration", "DAG id"),
        ({"colour": "blue"}, "colour", "unknown key"),
        ({"global": {"enabled": "maybe"}}, "global.enabled", "true or false"),
        ({"same_for_backward": False}, "same_for_backward", "backward_integration"),
        (
            {"backward_integration": "b", "backward": {"cc": "z@x.io"}},
            "backward",
            "same_for_backward is false",
        ),
    ],
)
def test_each_invalid_field_is_named(overrides: dict[str, object], field: str, fragment: str) -> None:
    found = errors_of(base(**overrides))
    assert field in found, found
    assert fragment in found[field]


def test_all_errors_reported_at_once() -> None:
    found = errors_of(base(recipients="bad", subject_prefix="a\nb", global_={"x": 1}))
    assert {"recipients", "subject_prefix", "global_"} <= set(found)


@pytest.mark.parametrize(("value", "minutes"), [(90, 90), ("90", 90), ("2h", 120), ("1d", 1440), ("", None)])
def test_durations(value: object, minutes: int | None) -> None:
    assert parse_duration_minutes(value) == minutes


def test_backward_section_inherits_omitted_keys() -> None:
    reg = parse_registration(
        base(
            backward_integration="sync_b",
            same_for_backward=False,
            backward={"recipients": "b@x.io", "global": {"notify_immediately": False}},
        )
    )
    back = reg.settings_for(Direction.BACKWARD)
    assert back.recipients == ("b@x.io",)
    assert back.smtp_conn_id == "mail"
    assert back.global_.notify_immediately is False
    assert reg.settings_for(Direction.FORWARD).global_.notify_immediately is True
    assert reg.dag_id_for(Direction.BACKWARD) == "sync_b"


def test_same_for_backward_uses_forward_settings() -> None:
    reg = parse_registration(base(backward_integration="sync_b"))
    assert reg.settings_for(Direction.BACKWARD) == reg.forward


def test_document_round_trips_through_export_shape() -> None:
    document = yaml.safe_load(EXAMPLE.read_text())
    registrations = parse_document(document)
    exported = document_to_dict(registrations)
    assert parse_document(yaml.safe_load(yaml.safe_dump(exported))) == registrations
    assert exported["notifications"][0]["backward"] == {
        "recipients": ["ado-team@example.com"],
        "processing": {"enabled": True, "notify_before_max_retries": True},
    }


def test_document_with_three_errors_reports_three_paths() -> None:
    document = {
        "notifications": [
            base(),
            base(integration="sync_b", **{"global": {"failure_count_threshold": 0}}),
            base(integration="sync_c", recipients="nope", subject_prefix="a\nb"),
        ]
    }
    with pytest.raises(ConfigValidationError) as info:
        parse_document(document)
    paths = [e.path for e in info.value.errors]
    assert paths == [
        "notifications[1].global.failure_count_threshold",
        "notifications[2].recipients",
        "notifications[2].subject_prefix",
    ]


def test_dag_used_twice_in_a_document_is_refused() -> None:
    document = {"notifications": [base(backward_integration="shared"), base(integration="shared")]}
    with pytest.raises(ConfigValidationError) as info:
        parse_document(document)
    assert "already used by integration 'sync_a'" in str(info.value)


def test_bulk_registration_enables_global_and_processing_for_both_directions() -> None:
    reg = bulk_registration("sync_a", smtp_conn_id="mail", recipients="ops@example.com")
    assert reg.same_for_backward
    assert reg.forward.global_.enabled and reg.forward.processing.enabled
