"""Store outages seen by a pass: kept in a local file while the store is down, reported once it is back.

The file lives in its own folder (``<spool_dir>/outages/``), which the capture spool's replay
never reads. Reporting holds an exclusive lock on the file, writes every entry to Error
Management in one transaction and only then empties the file: an outage is reported once, and
a report that fails (the store went away again) stays for the next pass.
"""

from __future__ import annotations

import fcntl
import json
import logging
from datetime import datetime
from pathlib import Path

from airflow_failnotify import settings as failnotify_settings
from airflow_failnotify.exceptions import FailnotifyError
from airflow_failnotify.store import Store, utcnow

log = logging.getLogger(__name__)

OUTAGES_FOLDER = "outages"
STORE_ERRORS_FILE = "store-errors.jsonl"


def outages_file() -> Path:
    return failnotify_settings.spool_dir() / OUTAGES_FOLDER / STORE_ERRORS_FILE


def remember_store_error(reason: str, *, now: datetime | None = None) -> None:
    path = outages_file()
    entry = json.dumps({"at": (now or utcnow()).isoformat(), "reason": reason})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.write(entry + "\n")
            handle.flush()
    except OSError as err:
        log.warning("failnotify: could not keep the store error for later (%s): %s", err, reason)


def report_remembered_store_errors(store: Store) -> int:
    """Put the store outages seen by earlier passes into Error Management (category store)."""
    path = outages_file()
    if not path.exists():
        return 0
    with path.open("r+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # another pass is reporting them now
        entries = []
        for line in handle.read().splitlines():
            try:
                data = json.loads(line)
                entries.append((datetime.fromisoformat(data["at"]), str(data["reason"])))
            except (ValueError, KeyError, TypeError):
                log.warning("failnotify: skipping an unreadable line in %s", path)
        try:
            store.log_errors("store", entries)
        except FailnotifyError as err:
            log.warning(
                "failnotify: %d store outage(s) stay in %s for the next pass: %s", len(entries), path, err
            )
            return 0
        handle.seek(0)
        handle.truncate()
    return len(entries)
