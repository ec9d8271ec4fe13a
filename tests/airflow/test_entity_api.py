"""record_entity_failure(): argument validation (no task needed) and the lazy package export.

Recording from a real task, the direction check and the not-accessible classification are covered by
test_capture_dags_test.py (the ``entities`` task of failnotify_capture_demo).
"""

from __future__ import annotations

from typing import Any

import pytest

import airflow_failnotify
from airflow_failnotify.listeners.api import record_entity_failure


def test_exported_lazily_from_the_package() -> None:
    assert airflow_failnotify.record_entity_failure is record_entity_failure


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("", ValueError("x")), {"retry_count": 0, "max_retries": 1}, "entity_id must be a non-empty"),
        (("   ", "x"), {"retry_count": 0, "max_retries": 1}, "entity_id must be a non-empty"),
        (("e" * 501, "x"), {"retry_count": 0, "max_retries": 1}, "at most 500"),
        (("e1", 42), {"retry_count": 0, "max_retries": 1}, "error must be an exception or a string"),
        (("e1", "x"), {"retry_count": -1, "max_retries": 1}, "retry_count must be 0 or more"),
        (("e1", "x"), {"retry_count": 0, "max_retries": -2}, "max_retries must be 0 or more"),
        (("e1", "x"), {"retry_count": True, "max_retries": 1}, "retry_count must be a whole number"),
        (("e1", "x"), {"retry_count": 0, "max_retries": 1.5}, "max_retries must be a whole number"),
        (("e1", "x"), {"retry_count": 0, "max_retries": 1, "direction": "sideways"},
         "direction must be one of"),
    ],
)
def test_bad_arguments_raise_value_error(args: tuple[Any, ...], kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        record_entity_failure(*args, **kwargs)


def test_outside_a_task_says_so() -> None:
    with pytest.raises(RuntimeError, match="inside a running Airflow task"):
        record_entity_failure("e1", "x", retry_count=0, max_retries=0)
