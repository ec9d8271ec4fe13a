"""``failnotify audit list [--integration X] [--json]``: who changed which configuration, when, and what."""

from __future__ import annotations

import argparse
import getpass
import json
from typing import Any

from airflow_failnotify.core.audit import AuditEntry
from airflow_failnotify.store import Actor, get_store

MAX_ROWS = 10_000


def cli_actor(source: str) -> Actor:
    """Changes made through the ``failnotify`` command: ``cli:<os user>``."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name here (e.g. a container user without a passwd entry)
        user = "unknown"
    return Actor(name=f"cli:{user}", source=source)


def register(subparsers: argparse._SubParsersAction) -> None:
    audit = subparsers.add_parser("audit", help="the audit trail of configuration changes")
    actions = audit.add_subparsers(dest="audit_command", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser(
        "list",
        help="every configuration change, newest first: who, when, what changed (before -> after)",
    )
    listing.add_argument("--integration", default=None, metavar="DAG_ID", help="only this integration")
    listing.add_argument(
        "--limit", type=int, default=MAX_ROWS, help=f"at most this many (default {MAX_ROWS})"
    )
    listing.add_argument("--json", action="store_true", help="print JSON (one object per change)")
    listing.set_defaults(func=_list)


def entry_to_dict(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.occurred_at.isoformat(),
        "actor": entry.actor,
        "source": entry.source,
        "action": entry.action,
        "integration": entry.integration,
        "changes": [{"field": c.field, "before": c.before, "after": c.after} for c in entry.changes],
    }


def _list(args: argparse.Namespace) -> int:
    entries, total = get_store().list_audit(integration=args.integration, limit=max(1, args.limit))
    if args.json:
        print(json.dumps([entry_to_dict(e) for e in entries], indent=2, default=str))
        return 0
    if not entries:
        print("no configuration change recorded" + (f" for {args.integration}" if args.integration else ""))
    for entry in entries:
        what = entry.integration or "(settings)"
        when = entry.occurred_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        print(f"{when}  {entry.actor} ({entry.source})  {entry.action} {what}")
        for change in entry.changes:
            print(f"    {change.field}: {change.before!r} -> {change.after!r}")
    if total > len(entries):
        print(f"... {total - len(entries)} older change(s) not shown (raise --limit)")
    return 0
