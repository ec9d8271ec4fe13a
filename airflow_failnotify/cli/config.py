"""``failnotify config list|unregister|export|import``: the notification configuration as code."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from airflow_failnotify.cli.audit import cli_actor
from airflow_failnotify.core.config import ConfigValidationError, parse_document
from airflow_failnotify.core.config_export import document_to_dict
from airflow_failnotify.core.model import Registration
from airflow_failnotify.store import get_store


def register(subparsers: argparse._SubParsersAction) -> None:
    config = subparsers.add_parser(
        "config", help="list, import, export or unregister notification configuration"
    )
    actions = config.add_subparsers(dest="config_command", metavar="ACTION")
    actions.required = True

    listing = actions.add_parser("list", help="one line per registered integration")
    listing.set_defaults(func=_list)

    unregister = actions.add_parser("unregister", help="stop notifications for an integration")
    unregister.add_argument("dag_id", help="the integration's (forward) DAG id")
    unregister.set_defaults(func=_unregister)

    export = actions.add_parser(
        "export", help="print the configuration as YAML (connection ids, never secrets)"
    )
    export.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    export.set_defaults(func=_export)

    load = actions.add_parser("import", help="add or update registrations from a YAML or JSON file")
    load.add_argument("file", help="the file ('-' reads standard input)")
    load.add_argument("--dry-run", action="store_true", help="print what would change, write nothing")
    load.add_argument("--replace", action="store_true", help="unregister every integration not in the file")
    load.set_defaults(func=_import)


def _describe(reg: Registration) -> str:
    directions = "forward+backward" if reg.backward_integration else "forward"
    settings = reg.forward
    kinds = []
    if settings.global_.enabled:
        kinds.append(
            "global:immediate"
            if settings.global_.notify_immediately
            else f"global:threshold={settings.global_.failure_count_threshold}"
        )
        if settings.global_.inactivity_minutes:
            kinds.append(f"inactivity={settings.global_.inactivity_minutes}m")
    if settings.processing.enabled:
        kinds.append("processing" + ("+retries" if settings.processing.notify_before_max_retries else ""))
    backward = f" backward={reg.backward_integration}" if reg.backward_integration else ""
    return (
        f"{reg.integration}{backward} [{directions}] server={settings.smtp_conn_id} "
        f"to={','.join(settings.recipients)} {' '.join(kinds) or 'nothing enabled'}"
    )


def _list(args: argparse.Namespace) -> int:
    registrations = get_store().list_registrations()
    if not registrations:
        print("no integration is registered for failure notification")
    from airflow_failnotify.service.health import flags_for

    flags = flags_for([reg.integration for reg in registrations]) if registrations else {}
    for reg in registrations:
        problems = flags.get(reg.integration, [])
        suffix = "".join(f" FLAGGED({f.direction}): {f.label}" for f in problems)
        print(_describe(reg) + suffix)
    return 0


def _unregister(args: argparse.Namespace) -> int:
    if get_store().unregister(args.dag_id, actor=cli_actor("cli")):
        print(f"unregistered {args.dag_id}")
        return 0
    print(f"failnotify: {args.dag_id} is not registered", file=sys.stderr)
    return 1


def _export(args: argparse.Namespace) -> int:
    document = document_to_dict(get_store().list_registrations())
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), end="")
    return 0


def load_document(path: str) -> Any:
    """Read YAML or JSON (JSON is YAML); errors name the file and the line."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML or JSON: {err}") from err


def unknown_connections(registrations: list[Registration]) -> list[str]:
    """Connection ids Airflow cannot resolve now: a warning only (they may live in a secrets backend)."""
    try:
        from airflow.sdk import BaseHook
    except ImportError:  # pragma: no cover
        return []
    missing = []
    ids = sorted({s.smtp_conn_id for r in registrations for s in filter(None, (r.forward, r.backward))})
    for conn_id in ids:
        try:
            BaseHook.get_connection(conn_id)
        except Exception:
            missing.append(conn_id)
    return missing


def _import(args: argparse.Namespace) -> int:
    try:
        registrations = parse_document(load_document(args.file))
    except (OSError, ValueError) as err:
        if isinstance(err, ConfigValidationError):
            print(
                f"failnotify: {args.file}: {len(err.errors)} error(s), nothing was written:", file=sys.stderr
            )
            for error in err.errors:
                print(f"  {error}", file=sys.stderr)
        else:
            print(f"failnotify: {err}", file=sys.stderr)
        return 2
    for conn_id in unknown_connections(registrations):
        print(
            f"warning: connection {conn_id!r} is not known to Airflow here (fine if it lives in a secrets "
            "backend; otherwise create it before the first notification)",
            file=sys.stderr,
        )
    try:
        plan = get_store().save_registrations(
            registrations, replace_all=args.replace, dry_run=args.dry_run, actor=cli_actor("import")
        )
    except ConfigValidationError as err:
        print(f"failnotify: {args.file}: nothing was written:", file=sys.stderr)
        for error in err.errors:
            print(f"  {error}", file=sys.stderr)
        return 2
    verb = "would" if args.dry_run else "did"
    for label, names in (("add", plan.added), ("update", plan.updated), ("unregister", plan.removed)):
        for name in names:
            print(f"{verb} {label} {name}")
    print(
        f"{'dry run: ' if args.dry_run else ''}{len(plan.added)} added, {len(plan.updated)} updated, "
        f"{len(plan.unchanged)} unchanged, {len(plan.removed)} unregistered"
    )
    return 0
