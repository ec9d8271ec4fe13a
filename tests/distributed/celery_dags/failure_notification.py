"""The Post Failure Notification job of airflow-failnotify (every 30 minutes by default)."""

from airflow_failnotify.dags.notification_dag import build_notification_dag

dag = build_notification_dag()
