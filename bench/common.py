"""Shared helpers: an isolated environment, machine facts, timing, and stores filled for a benchmark."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_failnotify.store import Store

RECIPIENTS = ("ops@example.com", "lead@example.com")
CC = ("audit@example.com",)
NOW = datetime.now(timezone.utc)


def isolate_environment() -> Path:
    """A throwaway AIRFLOW_HOME; drop Airflow settings inherited from the shell (as tests/conftest does)."""
    for name in list(os.environ):
        if name.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")) or name == "AIRFLOW_CONFIG":
            del os.environ[name]
    home = Path(tempfile.mkdtemp(prefix="failnotify-bench-"))
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__FAILNOTIFY__BASE_URL"] = "https://airflow.example.com"
    os.environ["AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / 'failnotify.db'}"
    return home


def remove_home(home: Path) -> None:
    shutil.rmtree(home, ignore_errors=True)


def run_alone(doc: str | None, quick_help: str, measure: Callable[..., dict[str, Any]],
              quick: dict[str, Any]) -> None:
    """A benchmark module run by itself: ``measure()`` (``measure(**quick)`` with ``--quick``) in a
    throwaway AIRFLOW_HOME, its result printed as one JSON line."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    args = parser.parse_args()
    home = isolate_environment()
    try:
        result = measure(**quick) if args.quick else measure()
    finally:
        remove_home(home)
    print(json.dumps(result))


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        airflow_version = version("apache-airflow")
        smtp_provider = version("apache-airflow-providers-smtp")
    except Exception:  # pragma: no cover
        airflow_version = smtp_provider = "unknown"
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "airflow": airflow_version,
        "apache-airflow-providers-smtp": smtp_provider,
        "os": platform.platform(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float]]:
    times = [timed(fn)[0] for _ in range(repeat)]
    return statistics.median(times), times


def no_status(dag_ids: Sequence[str]) -> dict[str, Any]:
    return {}


def migrated_store(url: str) -> Store:
    from airflow_failnotify.store.engine import create_store_engine
    from airflow_failnotify.store.store import Store

    store = Store(create_store_engine(url, timeout=30))
    store.migrate()
    return store


def register(store: Store, names: Iterable[str], conn_id: str) -> None:
    """Register integrations: global failures notified immediately, processing failures on."""
    from airflow_failnotify.core.model import DirectionSettings, GlobalSettings, Registration

    store.save_registrations(
        [
            Registration(
                integration=name,
                forward=DirectionSettings(
                    smtp_conn_id=conn_id,
                    recipients=RECIPIENTS,
                    cc=CC,
                    subject_prefix="[Bench]",
                    global_=GlobalSettings(enabled=True, notify_immediately=True),
                ),
            )
            for name in names
        ]
    )


def fill_outbox(store: Store, *, pending: int, integrations: int, conn_id: str, tag: str = "r") -> int:
    """``pending`` due notifications (job failures) made the real way: record_events + evaluate."""
    from airflow_failnotify.core import rules
    from airflow_failnotify.core.model import EventKind
    from airflow_failnotify.service.evaluation import evaluate
    from airflow_failnotify.store import EventRecord, utcnow

    names = [f"bench_sync_{i:04d}" for i in range(integrations)]
    register(store, names, conn_id)
    chunk = 2000
    for start in range(0, pending, chunk):
        store.record_events(
            [
                EventRecord(
                    kind=EventKind.RUN_FAILED,
                    dag_id=names[i % integrations],
                    run_id=f"scheduled__{tag}{i:06d}",
                    occurred_at=NOW - timedelta(seconds=pending - i),
                    source="scheduler",
                    error_message=f"task load_records failed: ValueError: bad record {i}",
                )
                for i in range(start, min(pending, start + chunk))
            ]
        )
    while evaluate(store, rules.evaluate, no_status, now=utcnow()).evaluated_events:
        pass
    counts = store.outbox_counts()
    return int(counts.get("pending", 0))
