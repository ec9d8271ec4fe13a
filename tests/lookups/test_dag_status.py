"""The DAG status a pass gets inside a task: the api-server in one request, else the Task SDK.

The one-request path itself runs on a real Airflow in tests/e2e/test_immediate_path.py (the pass's task
log says which path answered) and its refusal for other DAGs' tasks in
tests/distributed/test_remote_capture.py. Here: what the pass gets when that request cannot be made.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import pytest

from airflow_failnotify.core.model import DagPresence, DagStatus
from airflow_failnotify.lookups.dags import dag_status_in_one_request, status_from_json, status_to_json


class NotARunningTask:
    """A task instance outside a task process (as in ``airflow dags test``): it has no identity."""

    dag_id, run_id, task_id, map_index, try_number = "failnotify_post_failure_notification", "r", "t", -1, 1


def test_without_an_identity_the_task_sdk_answers_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    asked: list[list[str]] = []

    def task_sdk(dag_ids: Sequence[str]) -> Mapping[str, DagStatus]:
        asked.append(list(dag_ids))
        return {dag_id: DagStatus(is_paused=True) for dag_id in dag_ids}

    provider = dag_status_in_one_request({"ti": NotARunningTask()}, fallback=task_sdk)
    with caplog.at_level(logging.WARNING, logger="airflow_failnotify.lookups.dags"):
        found = provider(["sync_a", "sync_b"])

    assert found == {"sync_a": DagStatus(is_paused=True), "sync_b": DagStatus(is_paused=True)}
    assert asked == [["sync_a", "sync_b"]]
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "asking the Task SDK DAG by DAG" in warning.getMessage()


def test_no_dags_asks_nobody() -> None:
    def task_sdk(dag_ids: Sequence[str]) -> Mapping[str, DagStatus]:
        raise AssertionError("asked for no DAGs")

    assert dag_status_in_one_request({"ti": NotARunningTask()}, fallback=task_sdk)([]) == {}


@pytest.mark.parametrize("status", [
    DagStatus(), DagStatus(is_paused=True, has_running_run=True), DagStatus(presence=DagPresence.BROKEN),
    DagStatus(presence=DagPresence.MISSING),
])
def test_the_status_survives_its_json_form(status: DagStatus) -> None:
    assert status_from_json(status_to_json(status)) == status
