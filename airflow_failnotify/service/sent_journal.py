"""The sent journal: "the server accepted this mail" facts the store could not take yet, on this host.

One JSON line per fact in ``<spool_dir>/sent-journal/<host>.jsonl`` (a folder the capture spool's
replay never reads), fsync'd before delivery moves on. Every pass on this host flushes it before
it claims anything, so a mail whose "sent" mark failed is never claimed and sent again here; a
pass on another host can only take it after its lease ends (the store keeps the durable record;
the journal only bridges a store hiccup).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from datetime import datetime
from pathlib import Path

from airflow_failnotify import settings as failnotify_settings
from airflow_failnotify.core.outbox import Outbox, SentFact

log = logging.getLogger(__name__)

JOURNAL_FOLDER = "sent-journal"


def journal_path() -> Path:
    host = socket.gethostname().replace(os.sep, "_") or "host"
    return failnotify_settings.spool_dir() / JOURNAL_FOLDER / f"{host}.jsonl"


class FileJournal:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or journal_path()

    def keep(self, fact: SentFact) -> None:
        line = json.dumps(
            {
                "id": fact.outbox_id,
                "token": fact.claim_token,
                "at": fact.at.isoformat(),
                "note": fact.note,
                "message_id": fact.message_id,
            }
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def flush(self, outbox: Outbox) -> int:
        """Tell the store every kept fact (all or nothing per call); the file is emptied only then."""
        if not self.path.exists():
            return 0
        with self.path.open("r+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            facts = [_fact(line) for line in handle.read().splitlines() if line.strip()]
            confirmed = 0
            for fact in facts:
                if fact is None:
                    continue
                if outbox.mark_sent(
                    fact.outbox_id, fact.claim_token, now=fact.at, note=fact.note, message_id=fact.message_id
                ):
                    confirmed += 1
                else:
                    log.warning(
                        "failnotify: notification %s was sent (journal), but another pass claimed it since",
                        fact.outbox_id,
                    )
            handle.seek(0)
            handle.truncate()
            os.fsync(handle.fileno())
        if facts:
            log.info("failnotify: %d sent mark(s) from the journal reached the store", confirmed)
        return confirmed


def _fact(line: str) -> SentFact | None:
    try:
        data = json.loads(line)
        return SentFact(
            int(data["id"]), str(data["token"]), datetime.fromisoformat(data["at"]), data.get("note")
        )
    except (ValueError, KeyError, TypeError):
        log.warning("failnotify: skipping an unreadable line of the sent journal")
        return None
