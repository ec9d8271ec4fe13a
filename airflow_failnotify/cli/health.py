"""``failnotify health [--json]``: the health report; exit 0 ok, 1 warn, 2 bad."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "health",
        help="is failure notification itself working? (exit 0 ok, 1 warn, 2 bad)",
        description="The same health report as the views' banner, the JSON endpoint and the watchdog.",
    )
    parser.add_argument("--json", action="store_true", help="the detailed report as JSON")
    parser.set_defaults(func=_health)


def _health(args: argparse.Namespace) -> int:
    from airflow_failnotify.service.health import health_report

    report = health_report()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(f"failnotify health: {report.status.value}")
        for check in report.checks:
            print(f"  [{check.status.value:4}] {check.name}: {check.message}")
        for flag in report.facts.flags:
            print(f"  flagged: {flag.integration} ({flag.direction}): {flag.label}")
    return report.status.exit_code
