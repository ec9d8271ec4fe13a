"""The ``[failnotify]`` configuration section, read through Airflow's configuration.

Reading is lazy (never at import): Airflow's ``conf`` already honours the
``AIRFLOW__FAILNOTIFY__*`` environment variables and the secrets backends. Every option
is declared, with its default, in get_provider_info's ``config`` section.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from airflow_failnotify.constants import DEFAULT_NOTIFICATION_SCHEDULE
from airflow_failnotify.core.retry import RetryPolicy
from airflow_failnotify.core.storm import STORM_WINDOW_MAX_MINUTES, STORM_WINDOW_MIN_MINUTES, StormCap
from airflow_failnotify.exceptions import ConfigurationError

SECTION = "failnotify"

DEFAULTS: dict[str, str] = {
    "sql_alchemy_conn": "",
    "store_timeout": "5",
    "notification_schedule": DEFAULT_NOTIFICATION_SCHEDULE,
    "max_attempts": "5",
    "lease_seconds": "60",
    "immediate_poll_seconds": "2",
    "immediate_backoff_max_seconds": "300",
    "base_url": "",
    "spool_dir": "",
    "admin_emails": "",
    "admin_smtp_conn_id": "",
    "watchdog_enabled": "True",
    "watchdog_interval": "30",
    "watchdog_pass_late_after": "",
    "watchdog_store_down_after": "300",
    "watchdog_pending_late_after": "",
    "watchdog_failing_runs": "2",
    "capture_path": "auto",
    "ingest_url": "",
    "storm_cap_mails": "0",
    "storm_cap_window_minutes": "60",
}

CAPTURE_PATHS = ("auto", "store", "api")
INGEST_PREFIX = "/failnotify/ingest"

_DISTRIBUTED_EXECUTORS = ("celery", "kubernetes", "edge")


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")


def get_option(key: str) -> str:
    """One option: env var, then airflow.cfg (through Airflow's conf when importable), then default."""
    env = os.environ.get(f"AIRFLOW__{SECTION.upper()}__{key.upper()}")
    if env is not None:
        return env
    try:
        from airflow.configuration import conf
    except ImportError:  # pragma: no cover - the package always runs next to Airflow
        return DEFAULTS.get(key, "")
    value = conf.get(SECTION, key, fallback=None)
    return DEFAULTS.get(key, "") if value is None else str(value)


def get_int(key: str) -> int:
    raw = get_option(key)
    try:
        return int(raw)
    except ValueError as err:
        raise ConfigurationError(f"[{SECTION}] {key} must be a whole number, got {raw!r}") from err


def get_float(key: str) -> float:
    raw = get_option(key)
    try:
        return float(raw)
    except ValueError as err:
        raise ConfigurationError(f"[{SECTION}] {key} must be a number, got {raw!r}") from err


def get_bool(key: str) -> bool:
    return get_option(key).strip().lower() in ("1", "true", "yes", "on")


def get_optional_float(key: str) -> float | None:
    """A number, or None when the option is empty (its default is computed elsewhere)."""
    return get_float(key) if get_option(key).strip() else None


def default_store_url() -> str:
    return f"sqlite:///{airflow_home() / 'failnotify.db'}"


def store_url() -> str:
    return get_option("sql_alchemy_conn").strip() or default_store_url()


def spool_dir() -> Path:
    configured = get_option("spool_dir").strip()
    return Path(configured) if configured else airflow_home() / "failnotify-spool"


def capture_path() -> str:
    """``[failnotify] capture_path``: where task processes send captured events (auto, store or api)."""
    value = get_option("capture_path").strip().lower() or "auto"
    if value not in CAPTURE_PATHS:
        raise ConfigurationError(
            f"[{SECTION}] capture_path must be one of {', '.join(CAPTURE_PATHS)}, got {value!r}"
        )
    return value


def ingest_url() -> str:
    """The api-server's ingest endpoint: ``[failnotify] ingest_url``, else next to the Execution API.

    Task processes always know the Execution API's URL (their supervisor uses it), so by default the
    ingest API is the same api-server: ``http://host:8080/execution/`` gives
    ``http://host:8080/failnotify/ingest``.
    """
    own = get_option("ingest_url").strip()
    if own:
        return own.rstrip("/")
    execution = execution_api_server_url()
    base = execution.rstrip("/")
    base = base.removesuffix("/execution")
    return f"{base}{INGEST_PREFIX}"


def execution_api_server_url() -> str:
    """``[core] execution_api_server_url``, with Airflow's own default (``[api] base_url`` + /execution/)."""
    try:
        from airflow.configuration import conf
    except ImportError:  # pragma: no cover
        return "http://localhost:8080/execution/"
    configured = conf.get("core", "execution_api_server_url", fallback=None)
    if configured:
        return str(configured)
    base = str(conf.get("api", "base_url", fallback="/") or "/")
    if base.startswith("/"):
        base = f"http://localhost:8080{base}"
    return f"{base.rstrip('/')}/execution/"


def airflow_base_url() -> str | None:
    """Where links in emails point: ``[failnotify] base_url``, else Airflow's ``[api] base_url``."""
    own = get_option("base_url").strip()
    if own:
        return own.rstrip("/")
    try:
        from airflow.configuration import conf

        value = conf.get("api", "base_url", fallback="") or ""
    except ImportError:  # pragma: no cover
        value = ""
    return value.rstrip("/") or None


def executor_name() -> str:
    env = os.environ.get("AIRFLOW__CORE__EXECUTOR")
    if env is not None:
        return env
    try:
        from airflow.configuration import conf

        return str(conf.get("core", "executor", fallback="") or "")
    except ImportError:  # pragma: no cover
        return ""


def is_distributed_executor(executor: str | None = None) -> bool:
    executor = executor_name() if executor is None else executor
    return any(name in executor.lower() for name in _DISTRIBUTED_EXECUTORS)


def check_store_fits_executor(url: str, executor: str | None = None) -> None:
    """SQLite is one file on one host: refuse it under a distributed executor."""
    executor = executor_name() if executor is None else executor
    if url.startswith("sqlite") and any(name in executor.lower() for name in _DISTRIBUTED_EXECUTORS):
        raise ConfigurationError(
            f"the failnotify store is SQLite ({url}) but Airflow runs the distributed executor "
            f"{executor!r}: every host would get its own file. Set [{SECTION}] sql_alchemy_conn "
            f"(AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN) to a PostgreSQL URL."
        )


def storm_cap() -> StormCap:
    """``storm_cap_mails`` per recipient set per ``storm_cap_window_minutes`` (issue 18); 0 mails: off."""
    mails = get_int("storm_cap_mails")
    if mails < 0:
        raise ConfigurationError(
            f"[{SECTION}] storm_cap_mails must be 0 (off) or the number of mails a recipient set may get "
            f"per window (e.g. 20), got {mails}"
        )
    minutes = get_int("storm_cap_window_minutes")
    if not STORM_WINDOW_MIN_MINUTES <= minutes <= STORM_WINDOW_MAX_MINUTES:
        raise ConfigurationError(
            f"[{SECTION}] storm_cap_window_minutes must be a whole number of minutes from "
            f"{STORM_WINDOW_MIN_MINUTES} to {STORM_WINDOW_MAX_MINUTES} (e.g. 60), got {minutes}"
        )
    return StormCap(mails=mails, window_minutes=minutes)


@dataclass(frozen=True)
class DeliverySettings:
    retry_policy: RetryPolicy
    base_url: str | None
    storm_cap: StormCap = field(default_factory=StormCap)

    @classmethod
    def load(cls) -> DeliverySettings:
        policy = RetryPolicy.from_options(
            max_attempts=get_int("max_attempts"), lease_seconds=get_int("lease_seconds")
        )
        return cls(retry_policy=policy, base_url=airflow_base_url(), storm_cap=storm_cap())
