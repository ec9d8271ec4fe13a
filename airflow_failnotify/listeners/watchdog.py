"""Starts the watchdog (service/watchdog.py) as a child process of every scheduler.

``on_starting`` fires in the scheduler, the triggerer and the dag-processor (``Job.__init__``, before
the job's ``job_type`` is set) and in every task process. The hook starts the watchdog only in an
``airflow scheduler`` process (its command line says so), as ``failnotify watchdog --parent-pid
<scheduler>``. Why the scheduler: it is the one process every Airflow runs (a paused notification DAG,
a dead triggerer or a failing task do not stop it) and it may read Airflow's database.

Why a process, started right here and not from a thread: the scheduler forks (LocalExecutor workers
at its start, whose task processes fork again), and a child forked while another thread of its parent
holds a lock inherits that lock held. Two ways were seen: a thread inside SQLite (tasks hung at their
first SQLite call) and a thread importing a module (tasks hung on the module's import lock, on their
first listener call). So the hook leaves no thread behind, and ``subprocess`` runs a fresh interpreter
(fork, then exec at once). The child exits when the scheduler stops (``before_stopping``) or dies (its
parent pid changes). tests/listeners/test_watchdog_process.py measures both.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)

STOP_GRACE = 5.0  # seconds the watchdog process gets to finish its tick on stop
_process: subprocess.Popen[bytes] | None = None


def is_scheduler_command(argv: list[str]) -> bool:
    """Whether this process is ``airflow scheduler`` (also ``python -m airflow scheduler``)."""
    program = Path(argv[0]).name if argv else ""
    words = [a for a in argv[1:] if not a.startswith("-")]
    return program in ("airflow", "__main__.py") and words[:1] == ["scheduler"]


def _is_job(component: Any) -> bool:
    # A Job (not a task process's TaskRunnerMarker: task processes forked from the scheduler's workers
    # still have the scheduler's command line).
    return type(component).__name__ == "Job" and hasattr(component, "job_type")


def watchdog_command(parent_pid: int) -> list[str]:
    return [sys.executable, "-m", "airflow_failnotify", "watchdog", "--parent-pid", str(parent_pid)]


def _child_environment() -> dict[str, str]:
    """This process's environment, with this copy of the package first on the path (the scheduler may
    have found it through the plugins folder, which a fresh interpreter does not search)."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    return env


@hookimpl
def on_starting(component: Any) -> None:
    global _process
    try:
        if not (_is_job(component) and is_scheduler_command(sys.argv)):
            return
        from airflow_failnotify import settings

        if not settings.get_bool("watchdog_enabled"):
            log.info("failnotify watchdog disabled ([failnotify] watchdog_enabled)")
            return
        if _process is not None and _process.poll() is None:
            return
        _process = subprocess.Popen(
            watchdog_command(os.getpid()), stdin=subprocess.DEVNULL, env=_child_environment(), close_fds=True
        )
        log.info("failnotify watchdog started: process %d, child of scheduler %d", _process.pid, os.getpid())
    except Exception:  # never into the scheduler
        log.exception("failnotify watchdog: not started")


@hookimpl
def before_stopping(component: Any) -> None:
    global _process
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
