"""Starts the watchdog (service/watchdog.py) in a daemon thread of every scheduler.

``on_starting`` fires in the scheduler, the triggerer and the dag-processor (``Job.__init__``), before
the job's ``job_type`` is set, and in every task process (with a ``TaskRunnerMarker``). So the hook
only starts a small thread for a ``Job``; the thread waits for ``job_type`` and carries on only in a
``SchedulerJob``. Why the scheduler: it is the one process every Airflow runs (a paused notification
DAG, a dead triggerer or a failing task do not stop it) and it may read Airflow's database. Its
LocalExecutor forks do not inherit the thread. The scheduler therefore needs the store and the admin
connection (``[failnotify] admin_smtp_conn_id``); no other process does for the watchdog.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)

THREAD_NAME = "failnotify-watchdog"
JOB_TYPE_WAIT = 120.0  # seconds to wait for the job runner to set job_type
_stop = threading.Event()
_thread: threading.Thread | None = None
_lock = threading.Lock()


def _is_job(component: Any) -> bool:
    return type(component).__name__ == "Job" and hasattr(component, "job_type")


def _wait_for_job_type(component: Any) -> str | None:
    deadline = time.monotonic() + JOB_TYPE_WAIT
    while not _stop.is_set() and time.monotonic() < deadline:
        job_type = getattr(component, "job_type", None)
        if job_type:
            return str(job_type)
        _stop.wait(0.2)
    return None


def _run(component: Any) -> None:
    if _wait_for_job_type(component) != "SchedulerJob":
        return
    from airflow_failnotify import settings
    from airflow_failnotify.service.watchdog import Watchdog

    try:
        if not settings.get_bool("watchdog_enabled"):
            log.info("failnotify watchdog disabled ([failnotify] watchdog_enabled)")
            return
        interval = max(settings.get_float("watchdog_interval"), 1.0)
    except Exception:
        log.exception("failnotify watchdog: bad configuration; not started")
        return
    watchdog = Watchdog()
    log.info("failnotify watchdog started in the scheduler (every %.0f s)", interval)
    while not _stop.is_set():
        try:
            report = watchdog.tick()
            log.debug("failnotify watchdog: health %s", report.status.value)
        except Exception:  # never let the thread die; the next tick tries again
            log.exception("failnotify watchdog: tick failed")
        _stop.wait(interval)


@hookimpl
def on_starting(component: Any) -> None:
    global _thread
    try:
        if not _is_job(component):
            return
        with _lock:
            if _thread is not None and _thread.is_alive():
                return
            _stop.clear()
            _thread = threading.Thread(target=_run, args=(component,), name=THREAD_NAME, daemon=True)
            _thread.start()
    except Exception:  # never into the scheduler
        log.exception("failnotify watchdog: not started")


@hookimpl
def before_stopping(component: Any) -> None:
    _stop.set()
