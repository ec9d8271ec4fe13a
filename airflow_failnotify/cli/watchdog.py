"""``failnotify watchdog``: the watchdog's loop in the foreground.

Every scheduler starts one as its child (listeners/watchdog.py, with ``--parent-pid``: it exits when
that process is gone). Run it yourself where no scheduler of this Airflow has the store, or to watch
from another host; ``--once`` looks once and exits with the health's code.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any

log = logging.getLogger(__name__)

ORPHAN_CHECK = 1.0  # seconds between two looks at the parent process


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "watchdog",
        help="run the watchdog in the foreground (each scheduler already runs one)",
        description="Broken DAG events, health gauges and the admins' mails every watchdog_interval seconds.",
    )
    parser.add_argument(
        "--interval", type=float, help="seconds between two looks (default: [failnotify] watchdog_interval)"
    )
    parser.add_argument("--once", action="store_true", help="look once; exit 0 ok, 1 warn, 2 bad")
    parser.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)  # set by the scheduler's listener
    parser.set_defaults(func=_watchdog)


def _watchdog(args: argparse.Namespace) -> int:
    from airflow_failnotify import settings
    from airflow_failnotify.service.watchdog import Watchdog

    interval = args.interval if args.interval is not None else settings.get_float("watchdog_interval")
    if interval <= 0:
        print(
            f"failnotify watchdog: --interval must be a number of seconds > 0, got {interval:g}",
            file=sys.stderr,
        )
        return 2
    logging.getLogger("airflow_failnotify").setLevel(logging.INFO)
    watchdog = Watchdog()
    if args.once:
        return watchdog.tick().status.exit_code
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info("failnotify watchdog running in process %d (every %g s)", os.getpid(), interval)
    while not stop.is_set() and _parent_alive(args.parent_pid):
        try:
            report = watchdog.tick()
            log.debug("failnotify watchdog: health %s", report.status.value)
        except Exception:  # never die of one tick; the next one tries again
            log.exception("failnotify watchdog: tick failed")
        _wait(stop, interval, args.parent_pid)
    log.info("failnotify watchdog stopped")
    return 0


def _parent_alive(parent_pid: int | None) -> bool:
    return parent_pid is None or os.getppid() == parent_pid


def _wait(stop: threading.Event, seconds: float, parent_pid: int | None) -> None:
    """Sleep ``seconds``, waking early on a signal or when the parent is gone."""
    remaining = seconds
    while remaining > 0 and not stop.is_set() and _parent_alive(parent_pid):
        step = min(ORPHAN_CHECK, remaining)
        stop.wait(step)
        remaining -= step
