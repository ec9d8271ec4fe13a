"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_failnotify import __version__
from airflow_failnotify.constants import DEFAULT_NOTIFICATION_SCHEDULE
from airflow_failnotify.hooks.smtp_form import CONN_FIELDS, UI_FIELD_BEHAVIOUR


def _option(
    description: str, kind: str, example: str | None, default: str | None, sensitive: bool = False
) -> dict[str, Any]:
    option: dict[str, Any] = {
        "description": description,
        "version_added": "0.1.0",
        "type": kind,
        "example": example,
        "default": default,
    }
    if sensitive:
        option["sensitive"] = True
    return option


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-failnotify",
        "name": "Failure Notification",
        "description": "Email when integrations (DAGs) fail, go quiet or cannot reach their source.",
        "versions": [__version__],
        "hooks": [
            {"integration-name": "Failure Notification", "python-modules": ["airflow_failnotify.hooks.smtp"]}
        ],
        "operators": [
            {
                "integration-name": "Failure Notification",
                "python-modules": ["airflow_failnotify.operators.notification"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Failure Notification",
                "python-modules": ["airflow_failnotify.triggers.store_events"],
            }
        ],
        "notifications": ["airflow_failnotify.notifications.smtp.FailnotifySmtpNotifier"],
        "plugins": [
            {"name": "failnotify", "plugin-class": "airflow_failnotify.plugins.plugin.FailnotifyPlugin"}
        ],
        "connection-types": [
            {
                "connection-type": "failnotify_smtp",
                "hook-class-name": "airflow_failnotify.hooks.smtp.FailnotifySmtpHook",
                "hook-name": "Failnotify SMTP (mail server for failure notification)",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
        "config": {
            "failnotify": {
                "description": "Failure notification by email (airflow-failnotify).",
                "options": {
                    "sql_alchemy_conn": _option(
                        "The package's own store. Empty: a SQLite file failnotify.db in AIRFLOW_HOME "
                        "(one machine only; refused under a distributed executor). "
                        "Use PostgreSQL in production.",
                        "string",
                        "postgresql+psycopg2://user:pass@db/failnotify",
                        "",
                        sensitive=True,
                    ),
                    "store_timeout": _option(
                        "Seconds to wait for the store (connect, locks) before giving up; the listener then "
                        "spools events to a local file.",
                        "float",
                        "5",
                        "5",
                    ),
                    "notification_schedule": _option(
                        "Cron expression or preset of the Post Failure Notification DAG. "
                        "A value chosen in the "
                        "plugin's Settings view wins over this option.",
                        "string",
                        "*/15 * * * *",
                        DEFAULT_NOTIFICATION_SCHEDULE,
                    ),
                    "max_attempts": _option(
                        "Attempts after which a notification refused permanently (e.g. every recipient "
                        "rejected) is marked failed.",
                        "integer",
                        "5",
                        "5",
                    ),
                    "lease_seconds": _option(
                        "How long a pass holds the notifications it is sending before it renews the claim; "
                        "the notifications of a pass that dies are free again when this expires. Keep it "
                        "above twice the SMTP connections' timeout.",
                        "integer",
                        "60",
                        "60",
                    ),
                    "immediate_poll_seconds": _option(
                        "How often the triggerer checks the store for failures "
                        "that must be notified at once.",
                        "float",
                        "2",
                        "2",
                    ),
                    "immediate_backoff_max_seconds": _option(
                        "While immediate notification passes keep failing (their failures stay "
                        "unevaluated 30 s after the trigger fired), the trigger waits 5 s, 10 s, 20 s ... "
                        "before it fires again, at most this long.",
                        "float",
                        "600",
                        "300",
                    ),
                    "base_url": _option(
                        "Airflow UI address used for links in emails. Empty: [api] base_url.",
                        "string",
                        "https://airflow.example.com",
                        "",
                    ),
                    "spool_dir": _option(
                        "Where the listener keeps events it could not write to the store. "
                        "Empty: AIRFLOW_HOME/failnotify-spool.",
                        "string",
                        "/var/spool/failnotify",
                        "",
                    ),
                    "admin_emails": _option(
                        "Comma-separated addresses the watchdog mails when failure notification itself "
                        "stops working (and once more when it recovers). Empty: no watchdog mail.",
                        "string",
                        "airflow-admins@example.com",
                        "",
                    ),
                    "admin_smtp_conn_id": _option(
                        "The failnotify_smtp connection the watchdog mails through. The scheduler (where "
                        "the watchdog runs) must be able to resolve it.",
                        "string",
                        "failnotify_admin_smtp",
                        "",
                    ),
                    "watchdog_enabled": _option(
                        "Run the watchdog thread in the scheduler (health checks, admin mails, Broken DAG "
                        "detection, health metrics).",
                        "boolean",
                        "True",
                        "True",
                    ),
                    "watchdog_interval": _option(
                        "Seconds between two looks of the watchdog at the health.",
                        "float",
                        "30",
                        "30",
                    ),
                    "watchdog_pass_late_after": _option(
                        "Seconds without a completed notification pass after which the health is bad. "
                        "Empty: twice the notification schedule's interval.",
                        "float",
                        "3600",
                        "",
                    ),
                    "watchdog_store_down_after": _option(
                        "Seconds the store may be unreachable before the health is bad.",
                        "float",
                        "300",
                        "300",
                    ),
                    "watchdog_pending_late_after": _option(
                        "Seconds a mail may stay pending before the health is bad. Empty: twice the "
                        "notification schedule's interval plus 10 minutes.",
                        "float",
                        "4200",
                        "",
                    ),
                    "watchdog_failing_runs": _option(
                        "Consecutive failed runs of the notification DAG that make the health bad.",
                        "integer",
                        "2",
                        "2",
                    ),
                    "capture_path": _option(
                        "Where task processes send the failures they capture. store: straight into the "
                        "store (needs sql_alchemy_conn and store rights on every worker). api: to the "
                        "api-server's ingest endpoint, proving the task instance's identity through its "
                        "own task state store (workers need no store URL). auto: api in task processes "
                        "when Airflow runs a distributed executor (Celery, Kubernetes, Edge), store "
                        "otherwise (one machine). Schedulers, api-servers and triggerers always use the "
                        "store.",
                        "string",
                        "api",
                        "auto",
                    ),
                    "ingest_url": _option(
                        "The api-server's failnotify ingest endpoint used by the api capture path. "
                        "Empty: the api-server of [core] execution_api_server_url, at /failnotify/ingest.",
                        "string",
                        "https://airflow.example.com/failnotify/ingest",
                        "",
                    ),
                    "storm_cap_mails": _option(
                        "The storm cap: at most this many mails per recipient set (a mail's To and Cc) per "
                        "window, across integrations; above it the rest are held and go out as one storm "
                        "digest when the window ends. 0: off (a digest delays mails). E.g. 20 for large "
                        "teams.",
                        "integer",
                        "20",
                        "0",
                    ),
                    "storm_cap_window_minutes": _option(
                        "The storm cap's window in minutes (1 to 1440): fixed windows aligned to the full "
                        "hour (UTC) for 60, the digest goes out at the first pass after a window ends.",
                        "integer",
                        "60",
                        "60",
                    ),
                },
            }
        },
    }
