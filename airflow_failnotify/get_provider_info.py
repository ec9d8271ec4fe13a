"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_failnotify import __version__


def _field(
    label: str,
    kind: str | list[str],
    *,
    default: Any = None,
    description: str | None = None,
    enum: list[str] | None = None,
    secret: bool = False,
) -> dict[str, Any]:
    types = kind if isinstance(kind, list) else [kind, "null"]
    schema: dict[str, Any] = {"type": types}
    if default is not None:
        schema["default"] = default
    if enum:
        schema["enum"] = enum
    if secret:
        schema["format"] = "password"
    field: dict[str, Any] = {"label": label, "schema": schema}
    if description:
        field["description"] = description
    return field


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
                "conn-fields": {
                    "security": _field(
                        "Security",
                        "string",
                        default="",
                        enum=["", "none", "starttls", "ssl"],
                        description="none, starttls or ssl; empty: by port (587 starttls, 465 ssl)",
                    ),
                    "auth_type": _field(
                        "Authentication type",
                        "string",
                        default="none",
                        enum=["none", "basic", "oauth2"],
                        description="No Auth, Basic Auth (login + password) or OAuth 2.0",
                    ),
                    "from_email": _field(
                        "Sender email", "string", description="Mandatory whatever the authentication type"
                    ),
                    "token_url": _field("Token URL", "string", description="OAuth 2.0 token endpoint"),
                    "client_id": _field("Client ID", "string"),
                    "client_secret": _field("Client secret", "string", secret=True),
                    "scope": _field(
                        "Scope", "string", description="e.g. https://outlook.office.com/.default"
                    ),
                    "token_auth_method": _field(
                        "Token auth method",
                        "string",
                        default="client_secret_post",
                        enum=["client_secret_post", "client_secret_basic"],
                    ),
                    "response_parameter": _field(
                        "Response parameter",
                        "string",
                        default='{"accessTokenKey": "access_token", "expiresInKey": "expires_in"}',
                        description="Where the token and its lifetime are in the token response (JSON)",
                    ),
                    "timeout": _field(
                        "Timeout (seconds)",
                        ["number", "null"],
                        default=30,
                        description="A mail not sent within it counts as a send failure",
                    ),
                    "to_email": _field(
                        "Default To email", "string", description="Recipients of a test mail, comma separated"
                    ),
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "extra"],
                    "relabeling": {
                        "host": "SMTP server",
                        "login": "SMTP user (default: sender)",
                        "password": "Password (Basic Auth)",
                    },
                    "placeholders": {"host": "smtp.example.com", "port": "587"},
                },
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
                        "*/30 * * * *",
                    ),
                    "max_attempts": _option(
                        "Attempts after which a notification refused permanently (e.g. every recipient "
                        "rejected) is marked failed.",
                        "integer",
                        "5",
                        "5",
                    ),
                    "lease_seconds": _option(
                        "How long a pass holds the notifications it is sending; a pass that dies releases "
                        "them when this expires.",
                        "integer",
                        "300",
                        "300",
                    ),
                    "immediate_poll_seconds": _option(
                        "How often the triggerer checks the store for failures "
                        "that must be notified at once.",
                        "float",
                        "2",
                        "2",
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
                },
            }
        },
    }
