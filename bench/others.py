"""Items measured by colleagues' code: 3 (bench/listener_overhead.py) and 5 (bench/immediate_latency.json).

For item 3 the listener script is called (a ``measure()`` function returning a dict if it has one, else
run as a subprocess and its printed table parsed), and a bare one-row INSERT into the same kind of
store (SQLite, same engine settings) is timed here, for the ratio the issue asks for.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import NOW, migrated_store

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
LISTENER_SCRIPT = BENCH_DIR / "listener_overhead.py"
LATENCY_FILE = BENCH_DIR / "immediate_latency.json"

_WARM = re.compile(
    r"^\s+(?P<name>\S.*?)\s+median\s+(?P<median>[\d.]+) ms\s+p99\s+(?P<p99>[\d.]+) ms\s+"
    r"max\s+(?P<max>[\d.]+) ms"
)
_COLD = re.compile(
    r"run (?P<run>\d+): import airflow\.sdk\s+(?P<import_airflow>[\d.]+) ms, import capture\s+"
    r"(?P<import_capture>[\d.]+) ms, first event\s+(?P<first_event>[\d.]+) ms, "
    r"next call\s+(?P<next_call>[\d.]+) ms"
)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def bare_insert(workdir: Path, count: int = 200) -> dict[str, float]:
    """One failnotify_event row per transaction through the store's own engine (NullPool, BEGIN IMMEDIATE)."""
    from sqlalchemy import insert

    from airflow_failnotify.store import tables as t

    workdir.mkdir(parents=True, exist_ok=True)
    store = migrated_store(f"sqlite:///{workdir / 'bare.db'}")
    times = []
    for i in range(count + 1):
        row = {
            "kind": "task_failed",
            "integration": "d",
            "direction": "forward",
            "dag_id": "d",
            "run_id": "r",
            "task_id": "t",
            "map_index": i,
            "try_number": 1,
            "max_tries": 0,
            "is_final": True,
            "not_accessible": False,
            "error_message": "ValueError: warm failure",
            "traceback": "",
            "occurred_at": NOW,
            "recorded_at": NOW,
            "source": "task",
            "capture_key": f"bare-{i}",
            "evaluated": False,
        }
        started = time.perf_counter()
        with store.engine.begin() as conn:
            conn.execute(insert(t.event).values(row))
        if i:  # the first one opens the file and warms up
            times.append(time.perf_counter() - started)
    store.engine.dispose()
    return {"median_ms": statistics.median(times) * 1000, "p99_ms": percentile(times, 99) * 1000}


def listener_overhead(workdir: Path, events: int = 200) -> dict[str, Any]:
    if not LISTENER_SCRIPT.exists():
        return {"status": "not measured", "reason": "bench/listener_overhead.py is absent"}
    result: dict[str, Any] = {}
    spec = importlib.util.spec_from_file_location("bench_listener_overhead", LISTENER_SCRIPT)
    module = None
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    measure = getattr(module, "measure", None)
    if callable(measure):
        result.update(measure())
        result["source"] = "listener_overhead.measure()"
    else:
        proc = subprocess.run(
            [sys.executable, str(LISTENER_SCRIPT), "--events", str(events)],
            capture_output=True,
            text=True,
            check=False,
            cwd=BENCH_DIR.parent,
        )
        if proc.returncode:
            return {"status": "error", "reason": proc.stderr.strip()[-1500:]}
        warm = {
            m["name"]: {k: float(m[k]) for k in ("median", "p99", "max")}
            for m in (_WARM.match(line) for line in proc.stdout.splitlines())
            if m
        }
        cold = [{k: float(v) for k, v in m.groupdict().items()} for m in _COLD.finditer(proc.stdout)]
        result.update(
            source="listener_overhead.py (subprocess, parsed)", warm_ms=warm, cold_ms=cold, output=proc.stdout
        )
    result["bare_insert_ms"] = bare_insert(workdir)
    failed = result.get("warm_ms", {}).get("on_task_instance_failed (registered)")
    if failed:
        result["warm_ratio_to_bare_insert"] = failed["median"] / result["bare_insert_ms"]["median_ms"]
        result["warm_p99_ratio_to_bare_insert"] = failed["p99"] / result["bare_insert_ms"]["p99_ms"]
    result["status"] = "measured"
    return result


def immediate_latency(workdir: Path, *, samples: int = 5) -> dict[str, Any]:
    """Failure -> inbox on a real running Airflow (api-server, dag-processor, scheduler, triggerer).

    Runs the suite's own end-to-end test (tests/e2e/test_immediate_path.py) with ``samples`` failing
    runs after one warm-up run; the test writes its figures to a file this reads back.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "immediate_latency.json"
    env = {**os.environ, "FAILNOTIFY_LATENCY_SAMPLES": str(samples), "FAILNOTIFY_LATENCY_OUT": str(out)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/e2e/test_immediate_path.py", "-q", "-p", "no:cacheprovider"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0 or not out.exists():
        return {"status": "error", "reason": (result.stdout + result.stderr)[-1500:]}
    data = json.loads(out.read_text())
    LATENCY_FILE.write_text(json.dumps(data, indent=2) + "\n")
    return {"status": "measured", **data}
