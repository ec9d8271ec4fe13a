"""``failnotify silence|unsilence``: hold an integration's notifications (or all) until a time.

- ``failnotify silence <integration> --until 2h --reason "vendor maintenance"`` (``--all``: every one)
- ``failnotify unsilence <integration>`` (``--all``: the silence of all): what it held goes out now
- ``failnotify silence list [--json]``: the silences in force and what each holds

Held notifications stay in the outbox as ``silenced`` and go out when the silence ends (service/silences.py).
Silences are operational and not part of ``failnotify config export/import``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from airflow_failnotify.cli.audit import cli_actor
from airflow_failnotify.service.silences import SilenceError, parse_until, silence, unsilence
from airflow_failnotify.store import ALL_INTEGRATIONS, Silence, get_store, utcnow

LIST = "list"


def register(subparsers: argparse._SubParsersAction) -> None:
    setter = subparsers.add_parser(
        "silence",
        help="hold an integration's notifications until a time (`silence list`: the silences in force)",
    )
    setter.add_argument(
        "integration", nargs="?", help="the integration's (forward) DAG id, or `list` to list silences"
    )
    setter.add_argument("--all", action="store_true", help="silence every integration")
    setter.add_argument("--until", help="a duration (30m, 2h, 1d) or a time (2026-12-01T18:00, UTC)")
    setter.add_argument("--reason", help="why (required; shown in the views and the audit trail)")
    setter.add_argument("--json", action="store_true", help="with `list`: print JSON")
    setter.set_defaults(func=_silence)

    lifter = subparsers.add_parser("unsilence", help="lift a silence: what it held is sent now")
    lifter.add_argument("integration", nargs="?", help="the integration's (forward) DAG id")
    lifter.add_argument("--all", action="store_true", help="lift the silence of all integrations")
    lifter.set_defaults(func=_unsilence)


def _target(args: argparse.Namespace) -> str | None:
    if args.all == bool(args.integration):
        print("failnotify: name one integration, or give --all", file=sys.stderr)
        return None
    return ALL_INTEGRATIONS if args.all else str(args.integration)


def _label(integration: str) -> str:
    return "all integrations" if integration == ALL_INTEGRATIONS else integration


def _silence(args: argparse.Namespace) -> int:
    if args.integration == LIST and not args.all:
        return _list(args)
    target = _target(args)
    if target is None:
        return 2
    now = utcnow()
    try:
        until = parse_until(args.until or "", now)
        created = silence(get_store(), target, until, args.reason or "", cli_actor("cli"), now)
    except SilenceError as err:
        print(f"failnotify: {err}", file=sys.stderr)
        return 2
    print(f"{_label(target)} silenced until {created.until:%Y-%m-%d %H:%M:%S} UTC: {created.reason}")
    return 0


def _unsilence(args: argparse.Namespace) -> int:
    target = _target(args)
    if target is None:
        return 2
    try:
        released = unsilence(get_store(), target, cli_actor("cli"), utcnow())
    except SilenceError as err:
        print(f"failnotify: {err}", file=sys.stderr)
        return 1
    held = sum(r.count for r in released)
    print(f"silence of {_label(target)} lifted; {held} held notification(s) are sent at the next pass")
    return 0


def silence_to_dict(item: Silence, held: int) -> dict[str, Any]:
    return {
        "integration": item.integration,
        "until": item.until.isoformat(),
        "reason": item.reason,
        "created_by": item.created_by,
        "created_at": item.created_at.isoformat(),
        "held": held,
    }


def _list(args: argparse.Namespace) -> int:
    store = get_store()
    silences = store.list_silences(now=utcnow())
    held = {h.integration: h.count for h in store.held_notifications()}

    def count(item: Silence) -> int:  # the silence of all holds every silenced row
        return sum(held.values()) if item.is_global else held.get(item.integration, 0)

    if args.json:
        print(json.dumps([silence_to_dict(s, count(s)) for s in silences], indent=2))
        return 0
    if not silences:
        print("no silence in force")
    for item in silences:
        print(
            f"{_label(item.integration)}  until {item.until:%Y-%m-%d %H:%M:%S} UTC  by {item.created_by}  "
            f"({count(item)} held): {item.reason}"
        )
    return 0
