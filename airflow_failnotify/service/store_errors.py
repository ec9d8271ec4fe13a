"""Store outages seen by a pass: kept in a local file while the store is down, reported once it is back."""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime

from airflow_failnotify import settings as failnotify_settings
from airflow_failnotify.store import Store, utcnow

log = logging.getLogger(__name__)

STORE_ERRORS_FILE = "store-errors.jsonl"


def remember_store_error(reason: str) -> None:
    try:
        folder = failnotify_settings.spool_dir()
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / STORE_ERRORS_FILE).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"at": utcnow().isoformat(), "reason": reason}) + "\n")
    except OSError as err:
        log.warning("failnotify: could not keep the store error for later (%s): %s", err, reason)


def report_remembered_store_errors(store: Store) -> None:
    """Put the store outages seen by earlier passes into Error Management (category store)."""
    path = failnotify_settings.spool_dir() / STORE_ERRORS_FILE
    if not path.exists():
        return
    claimed = path.with_name(f"{path.name}.{os.getpid()}")
    try:
        path.rename(claimed)  # one process reports each outage
    except OSError:
        return
    for line in claimed.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
            store.log_error("store", entry["reason"], now=datetime.fromisoformat(entry["at"]))
        except (ValueError, KeyError):
            continue
    claimed.unlink()
