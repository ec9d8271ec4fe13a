"""Failure capture through `airflow dags test` (real Airflow, the plugin's listener, no mocks).

One module-wide Airflow home: the three DAG runs take about 20 s each, so they run once and the tests
below check what they left in the store.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_failnotify.core.model import EventKind
from tests.fixtures.airflow_env import AirflowEnv, assert_subset

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DEMO = "failnotify_capture_demo"
UNREGISTERED = "failnotify_capture_unregistered"
NOTIFICATION = "failnotify_post_failure_notification"


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory, airflow_db_template: Path) -> Iterator[AirflowEnv]:
    home = tmp_path_factory.mktemp("capture-dags-test")
    shutil.copyfile(airflow_db_template, home / "airflow.db")
    env = AirflowEnv(home=home)
    env.migrate_store()
    env.register(DEMO)
    # Registered on purpose: the listener must still ignore the notification DAG itself.
    env.register(NOTIFICATION)
    outputs = {}
    for dag_id in (DEMO, UNREGISTERED, NOTIFICATION):
        result = env.airflow("dags", "test", dag_id, check=False)
        assert result.returncode != 0, f"{dag_id} should fail"
        outputs[dag_id] = result.stdout + result.stderr
    env.outputs = outputs  # type: ignore[attr-defined]
    try:
        yield env
    finally:
        env.close()


def test_mapped_failures_are_entities_with_classification(ran: AirflowEnv) -> None:
    events = ran.events(DEMO)
    sync = {e.entity: e for e in assert_subset(events, kind=EventKind.TASK_FAILED, task_id="sync")}
    assert set(sync) == {"beta", "gamma", "delta"}  # alpha succeeded; rendered map index names them
    assert (sync["beta"].map_index, sync["gamma"].map_index, sync["delta"].map_index) == (1, 2, 3)
    assert sync["beta"].not_accessible and sync["gamma"].not_accessible
    assert not sync["delta"].not_accessible
    assert sync["beta"].error_message == "EntityNotAccessible: project beta is gone"
    assert sync["gamma"].error_message == "PermissionError: no access to gamma"
    assert sync["delta"].error_message == "ValueError: bad record in delta"
    assert 'raise EntityNotAccessible(f"project {name} is gone")' in sync["beta"].traceback
    assert 'raise ValueError(f"bad record in {name}")' in sync["delta"].traceback
    assert "failnotify_capture_dags.py" in sync["delta"].traceback
    for event in sync.values():
        assert (event.try_number, event.max_tries, event.is_final) == (1, 0, True)

    plain = assert_subset(events, kind=EventKind.TASK_FAILED, task_id="plain")
    assert [(e.entity, e.map_index) for e in plain] == [("plain[1]", 1)]  # no template: task_id[index]
    assert 'raise ValueError("plain number one failed")' in plain[0].traceback


def test_retried_task_records_each_try(ran: AirflowEnv) -> None:
    flaky = sorted(assert_subset(ran.events(DEMO), task_id="flaky"), key=lambda e: e.try_number)
    assert [(e.try_number, e.max_tries, e.is_final, e.entity) for e in flaky] == [
        (1, 1, False, "flaky"), (2, 1, True, "flaky")
    ]
    assert all('raise RuntimeError("flaky failed again")' in e.traceback for e in flaky)


def test_entity_reports(ran: AirflowEnv) -> None:
    entities = {e.entity: e for e in assert_subset(ran.events(DEMO), kind=EventKind.ENTITY_FAILED)}
    assert set(entities) == {"cust-1", "cust-2"}
    one, two = entities["cust-1"], entities["cust-2"]
    assert (one.task_id, one.try_number, one.max_tries, one.is_final, one.not_accessible) == (
        "entities", 2, 2, True, True)
    assert one.error_message == "EntityNotAccessible: customer cust-1 deleted"
    assert (two.try_number, two.max_tries, two.is_final, two.not_accessible) == (0, 3, False, False)
    assert two.error_message == "timeout talking to the CRM"
    sources = ran.event_sources()
    assert {sources[one.id], sources[two.id]} == {"entity_api"}


def test_run_failed_and_activity(ran: AirflowEnv) -> None:
    events = ran.events(DEMO)
    runs = assert_subset(events, kind=EventKind.RUN_FAILED)
    assert len(runs) == 1 and runs[0].error_message == "task_failure"
    assert not assert_subset(events, kind=EventKind.RUN_SUCCEEDED)
    # Exactly the failures expected: 3 sync + 1 plain + 2 flaky task failures, 2 entity reports, 1 run.
    assert len(events) == 9, [(e.kind, e.entity, e.try_number) for e in events]
    sources = ran.event_sources()
    assert {sources[e.id] for e in events if e.kind is EventKind.TASK_FAILED} == {"task"}
    assert ran.activity().get((DEMO, "forward")) is not None


def test_unregistered_and_notification_dags_record_nothing(ran: AirflowEnv) -> None:
    assert ran.events(UNREGISTERED) == []
    assert ran.events(NOTIFICATION) == []
    assert (NOTIFICATION, "forward") not in ran.activity()


def test_listener_never_logs_a_traceback_of_its_own(ran: AirflowEnv) -> None:
    for dag_id, output in ran.outputs.items():  # type: ignore[attr-defined]
        assert "the on_" not in output or "listener failed" not in output, dag_id
        assert "error calling listener" not in output, dag_id
        assert "failnotify: store unavailable" not in output, dag_id
