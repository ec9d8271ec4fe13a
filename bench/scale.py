"""What items 8 and 9 (issue 17's scale figures, on PostgreSQL) share: round-trip counting, a migrated
Airflow metadata database, and child processes that report one JSON line.

Round trips are counted on the store's own engine with SQLAlchemy events: every statement
(``before_cursor_execute``; an executemany counts once per parameter set, since psycopg2's
``executemany`` sends one statement per row, and SQLAlchemy's "insertmanyvalues" batches arrive as
one-set executemanys), every commit, and every pool checkout (the engine pings each checkout,
``pool_pre_ping``: one more round trip each that no statement event sees). psycopg2 also sends a
``BEGIN`` of its own before a transaction's first statement; it is not counted, it follows the
commits one for one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from tests.fixtures.postgres import PostgresServer

REPO_ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_URL = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
STORE_URL = "AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN"


@dataclass
class RoundTrips:
    """What one engine sent since :func:`count_round_trips` started counting."""

    statements: int = 0
    commits: int = 0
    checkouts: int = 0

    def per(self, count: int) -> dict[str, float]:
        """Each figure divided by ``count`` (events, mails), rounded for the table."""
        return {name: round(value / max(1, count), 3) for name, value in asdict(self).items()}


def count_round_trips(engine: Engine) -> RoundTrips:
    from sqlalchemy import event

    counts = RoundTrips()

    def statement(_conn: Any, _cursor: Any, _sql: str, parameters: Any, _context: Any, many: bool) -> None:
        # A driver executemany gets one parameter set per row; an insertmanyvalues batch, its flat values.
        sets = many and isinstance(parameters, (list, tuple)) and parameters
        per_row = sets and isinstance(parameters[0], (Mapping, list, tuple))
        counts.statements += len(parameters) if per_row else 1

    def commit(*_args: Any) -> None:
        counts.commits += 1

    def checkout(*_args: Any) -> None:
        counts.checkouts += 1

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    event.listen(engine, "checkout", checkout)
    return counts


def migrated_airflow_db(server: PostgresServer, name: str) -> tuple[str, float]:
    """A fresh PostgreSQL database migrated by ``airflow db migrate``: its URL and the seconds it took."""
    url = server.new_database(name)
    env = dict(os.environ, **{AIRFLOW_URL: url})
    started = time.perf_counter()
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode:
        raise RuntimeError(f"airflow db migrate failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return url, time.perf_counter() - started


def run_child(module: str, args: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    """``python -m <module> --child '<args as JSON>'``; its last line of output, a JSON object."""
    proc = subprocess.run(
        [sys.executable, "-m", module, "--child", json.dumps(args)],
        cwd=REPO_ROOT,
        env=dict(os.environ, **(env or {})),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise RuntimeError(f"{module} child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def start_child(
    module: str, args: dict[str, Any], env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """The same child, left running: it talks one JSON line per step over stdin/stdout."""
    return subprocess.Popen(
        [sys.executable, "-m", module, "--child", json.dumps(args)],
        cwd=REPO_ROOT,
        env=dict(os.environ, **(env or {})),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def read_line(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise RuntimeError(f"a bench child exited ({proc.returncode}) without its report")
    return dict(json.loads(line))


def send_line(proc: subprocess.Popen[str], message: dict[str, Any]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(message) + "\n")
    proc.stdin.flush()


def print_line(message: dict[str, Any]) -> None:
    print(json.dumps(message, default=str), flush=True)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, every core (``/proc/stat``)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick


def register_teams(store: Any, names: Sequence[str], conn_id: str, *, teams: int = 100) -> None:
    """Register integrations as :func:`bench.common.register` does, their recipients those of one of
    ``teams`` teams (integration i mails team i % teams): settings repeat per team, not everywhere."""
    from airflow_failnotify.core.model import DirectionSettings, GlobalSettings, Registration

    store.save_registrations(
        [
            Registration(
                integration=name,
                forward=DirectionSettings(
                    smtp_conn_id=conn_id,
                    recipients=(f"team-{i % teams:03d}@example.com", "lead@example.com"),
                    cc=("audit@example.com",),
                    subject_prefix="[Bench]",
                    global_=GlobalSettings(enabled=True, notify_immediately=True),
                ),
            )
            for i, name in enumerate(names)
        ]
    )
