"""Test DAGs for failure capture (tests/airflow). Registered or not by the tests themselves.

- failnotify_capture_demo: mapped failures (not accessible, permission, value error), a task retried
  once that fails twice, and entity reports through record_entity_failure().
- failnotify_capture_unregistered: fails, never registered.
- failnotify_post_failure_notification: the notification DAG's id; fails; must record nothing.
- failnotify_capture_scheduler: one task raising, one killed hard (SIGKILL), for the real scheduler.
- failnotify_capture_spool: one task raising, run by `airflow dags test` with the store unreachable.
"""

from __future__ import annotations

import os
import signal
from datetime import datetime, timedelta

from airflow.sdk import DAG, get_current_context, task

from airflow_failnotify import EntityNotAccessible, record_entity_failure

START = datetime(2024, 1, 1)


def _fail_for(name: str) -> None:
    if name == "beta":
        raise EntityNotAccessible(f"project {name} is gone")  # raising line: not accessible
    if name == "gamma":
        raise PermissionError(f"no access to {name}")  # raising line: permission
    if name == "delta":
        raise ValueError(f"bad record in {name}")  # raising line: value error


with DAG("failnotify_capture_demo", schedule=None, start_date=START, catchup=False) as demo:

    @task(map_index_template="{{ entity_name }}")
    def sync(name: str) -> str:
        get_current_context()["entity_name"] = name  # type: ignore[typeddict-unknown-key]
        _fail_for(name)
        return name

    @task
    def plain(number: int) -> int:
        if number == 1:
            raise ValueError("plain number one failed")  # raising line: plain mapped
        return number

    @task(retries=1, retry_delay=timedelta(seconds=0))
    def flaky() -> None:
        raise RuntimeError("flaky failed again")  # raising line: flaky

    @task
    def entities() -> None:
        assert record_entity_failure("cust-1", EntityNotAccessible("customer cust-1 deleted"),
                                     retry_count=2, max_retries=2)
        assert record_entity_failure("cust-2", "timeout talking to the CRM", retry_count=0, max_retries=3)
        try:  # this DAG is the forward direction of its integration
            record_entity_failure("cust-3", "x", retry_count=0, max_retries=0, direction="backward")
        except ValueError as err:
            assert "does not match" in str(err), err
        else:
            raise AssertionError("a wrong direction must raise ValueError")

    sync.expand(name=["alpha", "beta", "gamma", "delta"])
    plain.expand(number=[0, 1])
    flaky()
    entities()


with DAG("failnotify_capture_unregistered", schedule=None, start_date=START, catchup=False):

    @task
    def unregistered_fails() -> None:
        raise ValueError("nobody listens")

    unregistered_fails()


with DAG("failnotify_post_failure_notification", schedule=None, start_date=START, catchup=False):

    @task
    def notification_fails() -> None:
        raise ValueError("the notification DAG itself failed")

    notification_fails()


with DAG("failnotify_capture_scheduler", schedule=None, start_date=START, catchup=False):

    @task
    def boom() -> None:
        raise ValueError("boom under the real scheduler")

    @task
    def killed() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    @task
    def fine() -> None:
        pass

    boom()
    killed()
    fine()


with DAG("failnotify_capture_spool", schedule=None, start_date=START, catchup=False):

    @task
    def load() -> None:
        raise PermissionError("locked out of the warehouse")  # raising line: spooled by the task

    load()
