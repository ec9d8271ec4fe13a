"""Item 6: peak RSS of one notification pass (delivery) over 1,000 and 10,000 pending notifications.

The outbox is filled in the parent; each pass runs in a fresh child process (``python -m bench.memory``)
that reports its own RSS after its imports (baseline, VmRSS) and its peak after the pass (VmHWM; the
same as ru_maxrss but not inherited across exec), so nothing the parent or the mail server holds counts.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import no_status
from bench.delivery import BASIC, _set_conn, _template
from bench.servers import MailServers


def _status_kib(field: str) -> int:
    """VmHWM (peak) / VmRSS (current) of this process. Unlike ru_maxrss, VmHWM starts afresh at exec:
    Linux keeps ru_maxrss across exec, so a child would report its parent's peak at fork time."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child(db: Path, expected: int) -> None:
    from airflow_failnotify.service.passes import run_notification_pass
    from airflow_failnotify.store.engine import create_store_engine
    from airflow_failnotify.store.store import Store

    baseline = _status_kib("VmRSS")
    store = Store(create_store_engine(f"sqlite:///{db}", timeout=30))
    started = time.perf_counter()
    summary = run_notification_pass(trigger="bench", store=store, dag_status=no_status, evaluate=False)
    elapsed = time.perf_counter() - started
    peak = _status_kib("VmHWM")
    if summary.sent != expected:
        raise SystemExit(f"sent {summary.sent} of {expected}: {summary.errors[:3]}")
    print(json.dumps({"baseline_kib": baseline, "peak_kib": peak, "sent": summary.sent, "seconds": elapsed}))


def run(workdir: Path, *, sizes: Sequence[int] = (1_000, 10_000)) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"passes": {}}
    with MailServers() as servers:
        _set_conn(BASIC, servers.failnotify_conn(auth_type="basic"))
        for size in sizes:
            db = _template(workdir, f"memory{size}", pending=size, integrations=50, conn_id=BASIC)
            servers.clear()
            proc = subprocess.run(
                [sys.executable, "-m", "bench.memory", "--db", str(db), "--expected", str(size)],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode:
                raise RuntimeError(f"memory child failed: {proc.stderr[-2000:]}")
            child = json.loads(proc.stdout.strip().splitlines()[-1])
            arrived = servers.stats()["messages"]
            if arrived != size:
                raise RuntimeError(f"{arrived} of {size} messages arrived")
            out["passes"][str(size)] = child
            db.unlink(missing_ok=True)
    small, large = (out["passes"][str(s)] for s in (sizes[0], sizes[-1]))
    out["baseline_mib"] = large["baseline_kib"] / 1024
    out["peak_mib"] = {k: v["peak_kib"] / 1024 for k, v in out["passes"].items()}
    out["growth_ratio"] = large["peak_kib"] / small["peak_kib"]
    out["growth_mib"] = (large["peak_kib"] - small["peak_kib"]) / 1024
    out["pass_growth_ratio"] = (large["peak_kib"] - large["baseline_kib"]) / max(
        1, small["peak_kib"] - small["baseline_kib"]
    )
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--expected", type=int, required=True)
    args = parser.parse_args()
    _child(args.db, args.expected)
