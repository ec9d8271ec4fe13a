"""``failnotify db migrate|check``."""

from __future__ import annotations

import argparse

from airflow_failnotify.store import get_store


def register(subparsers: argparse._SubParsersAction) -> None:
    db = subparsers.add_parser("db", help="create, upgrade or check the failnotify store")
    actions = db.add_subparsers(dest="db_command", metavar="ACTION")
    actions.required = True
    migrate = actions.add_parser("migrate", help="create or upgrade the store's tables (idempotent)")
    migrate.set_defaults(func=_migrate)
    check = actions.add_parser("check", help="exit 2 unless the store is migrated to this version")
    check.set_defaults(func=_check)


def _migrate(args: argparse.Namespace) -> int:
    store = get_store()
    before, after = store.migrate()
    if before == after:
        print(f"failnotify store {store.url_for_display} is up to date (revision {after})")
    else:
        print(
            f"failnotify store {store.url_for_display} migrated from {before or 'empty'} to revision {after}"
        )
    return 0


def _check(args: argparse.Namespace) -> int:
    store = get_store()
    store.check_ready()
    print(f"failnotify store {store.url_for_display} is ready")
    return 0
