"""Names and values that several rooms of the package share. Imports nothing (safe from the core)."""

from __future__ import annotations

#: The id of the Post Failure Notification DAG (its failures are never notified).
NOTIFICATION_DAG_ID = "failnotify_post_failure_notification"

#: The notification job's schedule when neither the Settings view nor airflow.cfg sets one.
DEFAULT_NOTIFICATION_SCHEDULE = "*/30 * * * *"

#: The DAG file a deployment mounts (``dags/failure_notification.py``, ``failnotify install-dag``).
NOTIFICATION_DAG_FILE_NAME = "failure_notification.py"
NOTIFICATION_DAG_FILE = (
    '"""The Post Failure Notification job of airflow-failnotify (every 30 minutes by default)."""\n'
    "\n"
    "from airflow_failnotify.dags.notification_dag import build_notification_dag\n"
    "\n"
    "dag = build_notification_dag()\n"
)
