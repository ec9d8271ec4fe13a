"""``failnotify install-dag``: the one step that adds the notification DAG to an existing Airflow."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from airflow_failnotify.constants import NOTIFICATION_DAG_FILE as DAG_FILE
from airflow_failnotify.constants import NOTIFICATION_DAG_FILE_NAME as DAG_FILE_NAME
from airflow_failnotify.constants import NOTIFICATION_DAG_ID


def register(subparsers: argparse._SubParsersAction) -> None:
    install = subparsers.add_parser("install-dag", help="write the Post Failure Notification DAG file")
    install.add_argument("--dags-folder", help="default: Airflow's [core] dags_folder")
    install.add_argument("--force", action="store_true", help="overwrite a different file of that name")
    install.set_defaults(func=_install)


def _dags_folder() -> Path:
    from airflow.configuration import conf

    return Path(conf.get("core", "dags_folder")).expanduser()


def _install(args: argparse.Namespace) -> int:
    folder = Path(args.dags_folder).expanduser() if args.dags_folder else _dags_folder()
    target = folder / DAG_FILE_NAME
    if target.exists() and target.read_text(encoding="utf-8") != DAG_FILE and not args.force:
        print(f"failnotify: {target} exists and differs; use --force to overwrite", file=sys.stderr)
        return 1
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(DAG_FILE, encoding="utf-8")
    print(
        f"wrote {target}; the DAG {NOTIFICATION_DAG_ID} appears at the next parse (unpaused)"
    )
    return 0
