"""FailureNotificationOperator: the notification DAG's task, one pass of the service layer."""

from __future__ import annotations

from typing import Any

from airflow_failnotify.lookups.dags import dag_status_from_task_sdk, dag_status_in_one_request
from airflow_failnotify.service.passes import run_notification_pass


def _base_operator() -> type:
    from airflow.sdk import BaseOperator

    return BaseOperator


class FailureNotificationOperator(_base_operator()):  # type: ignore[misc]
    """Runs one notification pass: evaluate the rules, then send every due notification.

    Scheduled runs and runs started by the immediate trigger (an asset event) do the same;
    the outbox's claims make overlapping runs safe.
    """

    ui_color = "#fde2e2"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Any) -> dict[str, Any]:
        events = context.get("triggering_asset_events") or {}
        trigger = "immediate" if events else "schedule"
        from airflow_failnotify.service.broken_dags import with_known_broken
        from airflow_failnotify.store import get_store

        # The Task SDK answers 404 for a broken DAG as for a missing one: the watchdog's record says which.
        by_dag = dag_status_in_one_request(context, fallback=dag_status_from_task_sdk(context))
        dag_status = with_known_broken(by_dag, get_store())
        summary = run_notification_pass(trigger=trigger, dag_status=dag_status)
        for error in summary.errors:
            self.log.warning("send failed on %s: %s", error.get("server"), error.get("reason"))
        return summary.to_dict()
