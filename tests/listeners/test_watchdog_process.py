"""The scheduler's watchdog runs in its own process, so the scheduler's forks never hang.

A process forked while another of its threads holds a lock inherits the lock held: inside SQLite, its
first SQLite call hangs for ever; inside an import, its first import of that module does. The scheduler
forks (LocalExecutor workers at its start, then their task processes), and with the watchdog as a
scheduler thread (and then with a thread that only started the watchdog process) tasks hung in their
first listener call on a running Airflow (py-spy: ``_ModuleLock.acquire`` in ``listeners/sink.py``).
So ``on_starting`` must leave no thread in the scheduler. Here a stand-in scheduler (a real process,
the real listener and a real SQLite store) forks children that each write to the store, and the hung
ones are counted: with the watchdog's tick in a thread of the forking process (the old design, kept as
the control that shows the count can be non-zero) and with the listener's watchdog process (now).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_failnotify.store import Store

MARK = "RESULT "  # the stand-in's result lines (its logs go to standard output too)
SCHEDULER = r"""
import json, os, sys, threading, time

from airflow_failnotify.listeners import watchdog
from airflow_failnotify.service.watchdog import Watchdog
from airflow_failnotify.store import get_store

mode, seconds = sys.argv[1], float(sys.argv[2])
min_forks = int(sys.argv[3]) if len(sys.argv) > 3 else 0


class Job:  # what on_starting receives in a scheduler (the listener checks the class name)
    job_type = "SchedulerJob"


ticks = 0
if mode == "thread":
    def loop():
        global ticks
        dog = Watchdog(read_airflow=False)
        while True:
            dog.tick()
            ticks += 1
    threading.Thread(target=loop, daemon=True).start()
else:
    sys.argv = ["airflow", "scheduler"]  # what the listener looks at
    watchdog.on_starting(Job())
    started_threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    started = {"watchdog_pid": watchdog._process.pid, "threads": started_threads}
    print("RESULT", json.dumps(started), flush=True)

forks = hung = 0
deadline = time.monotonic() + seconds
# At least min_forks (a loaded machine forks slowly), within four times the time.
hard_deadline = deadline + 3 * seconds
while time.monotonic() < deadline or (forks < min_forks and time.monotonic() < hard_deadline):
    pid = os.fork()
    if pid == 0:  # a task process: its first store write
        get_store().set_setting("fork_probe", str(os.getpid()))
        os._exit(0)
    forks += 1
    child_deadline = time.monotonic() + 5
    while os.waitpid(pid, os.WNOHANG)[0] == 0:
        if time.monotonic() > child_deadline:
            hung += 1
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            break
        time.sleep(0.01)
threads = sorted(t.name for t in threading.enumerate() if t is not threading.main_thread())
print("RESULT", json.dumps({"forks": forks, "hung": hung, "threads": threads}), flush=True)
if mode == "process":
    watchdog.before_stopping(Job())
"""


def _run_scheduler(
    mode: str, seconds: float, env: dict[str, str], tmp_path: Path, *, min_forks: int = 0
) -> list[dict[str, object]]:
    script = tmp_path / "scheduler.py"
    script.write_text(SCHEDULER)
    done = subprocess.run(
        [sys.executable, str(script), mode, str(seconds), str(min_forks)],
        env=env,
        capture_output=True,
        text=True,
        timeout=4 * seconds + 240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    return [json.loads(line[len(MARK) :]) for line in lines]


@pytest.fixture
def scheduler_env(sqlite_store: Store, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN"] = str(sqlite_store.engine.url)
    env["AIRFLOW__FAILNOTIFY__SPOOL_DIR"] = str(tmp_path / "spool")
    env["AIRFLOW__FAILNOTIFY__WATCHDOG_INTERVAL"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    return env


def test_the_old_design_a_watchdog_thread_hangs_forked_children(
    scheduler_env: dict[str, str], tmp_path: Path
) -> None:
    (result,) = _run_scheduler("thread", 4, scheduler_env, tmp_path)
    print("watchdog as a thread:", result)
    assert result["forks"] > 0
    assert result["hung"] > 0, f"the control saw no hang, so the measurement below proves nothing: {result}"


def test_the_watchdog_process_leaves_the_schedulers_forks_alone(
    scheduler_env: dict[str, str], tmp_path: Path
) -> None:
    started, result = _run_scheduler("process", 8, scheduler_env, tmp_path, min_forks=20)
    print("watchdog as a process:", result)
    assert result["forks"] >= 20, result
    assert result["hung"] == 0, f"{result['hung']} of {result['forks']} forked children hung in SQLite"
    assert started["threads"] == [], f"on_starting left threads in the scheduler: {started['threads']}"
    assert result["threads"] == [], f"threads left in the scheduler: {result['threads']}"
    pid = int(started["watchdog_pid"])  # type: ignore[call-overload]
    assert not _alive(pid), "the watchdog process outlived before_stopping"


def test_the_watchdog_process_exits_when_the_scheduler_is_killed(
    scheduler_env: dict[str, str], tmp_path: Path
) -> None:
    script = tmp_path / "scheduler.py"
    script.write_text(SCHEDULER)
    scheduler = subprocess.Popen(
        [sys.executable, str(script), "process", "600"], env=scheduler_env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert scheduler.stdout is not None
        line = next(line for line in scheduler.stdout if line.startswith(MARK))
        pid = int(json.loads(line[len(MARK) :])["watchdog_pid"])
        assert _alive(pid)
        scheduler.send_signal(signal.SIGKILL)
        scheduler.wait(10)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid), "the watchdog process outlived its scheduler's kill -9"
    finally:
        scheduler.kill()
        scheduler.wait()


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return status != "Z"
