"""Starts the watchdog (service/watchdog.py) as a child process of every scheduler.

``on_starting`` fires in the scheduler, the triggerer and the dag-processor (``Job.__init__``), before
the job's ``job_type`` is set, and in every task process (with a ``TaskRunnerMarker``). So the hook
only starts a small thread for a ``Job``; that thread waits for ``job_type``, and in a ``SchedulerJob``
starts ``failnotify watchdog --parent-pid <scheduler>`` and ends. Why the scheduler: it is the one
process every Airflow runs (a paused notification DAG, a dead triggerer or a failing task do not stop
it) and it may read Airflow's database.

Why a process and not a thread: the scheduler forks (LocalExecutor workers, whose task processes fork
again). A child forked while another thread of its parent is inside SQLite inherits SQLite's locks
held and hangs at its first SQLite call: with the watchdog as a thread, tasks of a SQLite store hung in
their first listener call (tests/listeners/test_watchdog_process.py measures it). The starter thread
touches no database, and ``subprocess`` runs a fresh interpreter (fork, then exec at once). The child
exits when the scheduler stops (``before_stopping``) or dies (its parent pid changes).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)

THREAD_NAME = "failnotify-watchdog-start"
JOB_TYPE_WAIT = 120.0  # seconds to wait for the job runner to set job_type
STOP_GRACE = 5.0  # seconds the watchdog process gets to finish its tick on stop
_stop = threading.Event()
_starter: threading.Thread | None = None
_process: subprocess.Popen[bytes] | None = None
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


def watchdog_command(parent_pid: int) -> list[str]:
    return [sys.executable, "-m", "airflow_failnotify", "watchdog", "--parent-pid", str(parent_pid)]


def _child_environment() -> dict[str, str]:
    """This process's environment, with this copy of the package first on the path (the scheduler may
    have found it through the plugins folder, which a fresh interpreter does not search)."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    return env


def _start(component: Any) -> None:
    global _process
    if _wait_for_job_type(component) != "SchedulerJob":
        return
    from airflow_failnotify import settings

    try:
        if not settings.get_bool("watchdog_enabled"):
            log.info("failnotify watchdog disabled ([failnotify] watchdog_enabled)")
            return
    except Exception:
        log.exception("failnotify watchdog: bad configuration; not started")
        return
    with _lock:
        if _stop.is_set() or (_process is not None and _process.poll() is None):
            return
        _process = subprocess.Popen(
            watchdog_command(os.getpid()), stdin=subprocess.DEVNULL, env=_child_environment(), close_fds=True
        )
    log.info("failnotify watchdog started: process %d, child of the scheduler %d", _process.pid, os.getpid())


def _run_starter(component: Any) -> None:
    try:
        _start(component)
    except Exception:  # never into the scheduler
        log.exception("failnotify watchdog: not started")


@hookimpl
def on_starting(component: Any) -> None:
    global _starter
    try:
        if not _is_job(component):
            return
        with _lock:
            if _starter is not None and _starter.is_alive():
                return
            if _process is not None and _process.poll() is None:
                return
            _stop.clear()
            _starter = threading.Thread(target=_run_starter, args=(component,), name=THREAD_NAME, daemon=True)
            _starter.start()
    except Exception:  # never into the scheduler
        log.exception("failnotify watchdog: not started")


@hookimpl
def before_stopping(component: Any) -> None:
    global _process
    _stop.set()
    with _lock:
        process, _process = _process, None
    if process is None or process.poll() is not None:
        return
    try:
        process.terminate()
        process.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    except Exception:  # never into the scheduler's shutdown
        log.exception("failnotify watchdog: not stopped cleanly")
