"""Shared helpers of the reliability and security cases: registrations, events, delivery accounting.

Events are recorded through the store's capture API (what the listener and record_entity_failure call);
passes are the real run_notification_pass against the real DevSmtpServer.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow_failnotify.core.config import parse_registration
from airflow_failnotify.core.model import EventKind, OutboxState
from airflow_failnotify.store import EventRecord, Store
from devtools.smtp_server import DevSmtpServer
from tests.fixtures.airflow_env import REPO_ROOT

NOW = datetime.now(timezone.utc)


def no_status(dag_ids: object) -> dict[str, object]:
    return {}


# The fault and delivery cases count one mail per notification: noise control off (it has its own tests).
ONE_MAIL_PER_NOTIFICATION: dict[str, object] = {
    "coalesce": False,
    "group_wait_seconds": 0,
    "repeat_interval_minutes": 0,
}


def register(store: Store, conn_id: str, integration: str = "sync_jira", **overrides: Any) -> None:
    data: dict[str, Any] = {
        "integration": integration,
        "smtp_conn_id": conn_id,
        "recipients": "ops@example.com",
        "subject_prefix": "[Sync]",
        "noise": ONE_MAIL_PER_NOTIFICATION,
    }
    data.update(overrides)
    store.save_registration(parse_registration(data))


def run_failed(
    run_id: str, at: datetime | None = None, dag_id: str = "sync_jira", error: str = ""
) -> EventRecord:
    return EventRecord(
        kind=EventKind.RUN_FAILED,
        dag_id=dag_id,
        run_id=run_id,
        occurred_at=at or NOW,
        source="scheduler",
        error_message=error or "task failed",
    )


def run_failures(count: int, dag_id: str = "sync_jira", prefix: str = "r") -> list[EventRecord]:
    return [run_failed(f"{prefix}{i:04d}", NOW + timedelta(seconds=i), dag_id) for i in range(count)]


def task_failed(
    run_id: str,
    task_id: str = "load",
    *,
    dag_id: str = "sync_jira",
    map_index: int = -1,
    error: str = "ValueError: bad record",
    traceback: str | None = None,
    at: datetime | None = None,
) -> EventRecord:
    return EventRecord(
        kind=EventKind.TASK_FAILED,
        dag_id=dag_id,
        run_id=run_id,
        occurred_at=at or NOW,
        source="task",
        task_id=task_id,
        map_index=map_index,
        try_number=1,
        max_tries=1,
        is_final=True,
        error_message=error,
        traceback=traceback if traceback is not None else f"Traceback (most recent call last):\n{error}\n",
    )


def entity_failed(
    run_id: str,
    entity: str,
    *,
    dag_id: str = "sync_jira",
    task_id: str = "sync_batch",
    error: str = "ValueError: bad record",
    traceback: str = "",
    at: datetime | None = None,
) -> EventRecord:
    return EventRecord(
        kind=EventKind.ENTITY_FAILED,
        dag_id=dag_id,
        run_id=run_id,
        occurred_at=at or NOW,
        source="task",
        task_id=task_id,
        entity=entity,
        try_number=0,
        max_tries=0,
        is_final=True,
        error_message=error,
        traceback=traceback,
    )


@dataclass(frozen=True)
class Delivery:
    """Exactly-once accounting: the outbox against what the SMTP server received."""

    due: int  # outbox rows (every notification the rules made due), closed ones excluded
    sent: int  # outbox rows marked sent
    pending: int
    failed: int
    received: int  # messages the server accepted
    unique: int  # distinct Message-IDs among them
    duplicates: int  # received - unique
    lost: int  # due notifications whose mail (the Message-ID that carried them) never arrived
    strangers: int  # received Message-IDs that carried no outbox row
    mails: int = 0  # distinct mails the rows went out in (one mail may carry several rows)

    @property
    def exactly_once(self) -> bool:
        return (
            self.due == self.sent
            and self.unique == self.received == self.mails
            and self.duplicates == self.lost == self.strangers == 0
        )

    def __str__(self) -> str:
        return (
            f"due {self.due} sent {self.sent} received {self.received} dup {self.duplicates} "
            f"lost {self.lost} pending {self.pending} failed {self.failed}"
        )


def all_outbox(store: Store) -> list[Any]:
    items, total = store.list_outbox(limit=1_000_000)
    assert len(items) == total
    return items


def message_ids(server: DevSmtpServer) -> list[str]:
    return [str(m.message["Message-ID"]) for m in list(server.messages)]


def delivery(store: Store, server: DevSmtpServer) -> Delivery:
    items = [i for i in all_outbox(store) if i.state is not OutboxState.CLOSED]
    received = Counter(message_ids(server))
    # Each row counts through the mail that carried it (noise control sends several rows in one).
    carriers = {i.id: i.sent_message_id or i.message_id for i in items}
    due_ids = set(carriers.values())
    return Delivery(
        due=len(items),
        sent=sum(i.state is OutboxState.SENT for i in items),
        pending=sum(i.state in (OutboxState.PENDING, OutboxState.SENDING) for i in items),
        failed=sum(i.state is OutboxState.FAILED for i in items),
        received=sum(received.values()),
        unique=len(received),
        duplicates=sum(received.values()) - len(received),
        lost=sum(1 for carrier in carriers.values() if carrier not in received),
        strangers=len(set(received) - due_ids),
        mails=len(due_ids),
    )


def error_rows(store: Store, category: str | None = None) -> list[Any]:
    rows, _ = store.list_errors(category=category, limit=100_000)
    return rows


def failnotify_cli(
    *argv: str, env: Mapping[str, str], timeout: float = 120, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m airflow_failnotify ARGV`` in a subprocess (the real entry point, real exit code)."""
    return subprocess.run(
        [sys.executable, "-m", "airflow_failnotify", *argv],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        check=False,
    )


def header_lines(raw: bytes, name: str) -> list[bytes]:
    """The raw top-level header lines called ``name`` (case-insensitive), before the first blank line."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    wanted = name.lower().encode() + b":"
    return [line for line in head.splitlines() if line.lower().startswith(wanted)]


def header_names(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    return [
        line.split(b":", 1)[0].decode("ascii", "replace")
        for line in head.splitlines()
        if line and not line[:1].isspace()
    ]


def short(values: Sequence[object], limit: int = 3) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f" (+{len(values) - limit})" if len(values) > limit else "")


# Every header a notification may carry at the server (aiosmtpd adds the X-Peer/X-Mail* ones); anything
# else in a received message means a value broke out of its header.
MAIL_HEADERS = frozenset(
    {
        "subject",
        "from",
        "to",
        "cc",
        "date",
        "message-id",
        "auto-submitted",
        "x-auto-response-suppress",
        "in-reply-to",  # threads: a later mail of an episode answers its first
        "references",
        "list-id",
        "x-failnotify-kind",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "x-peer",
        "x-mailfrom",
        "x-rcptto",
    }
)


# A pass in its own process, killed -9 at the worst moment: the SMTP server has just accepted a mail (the
# first one it accepted), the store has not marked it sent, the host journal has nothing.
_KILLED_AFTER_THE_FIRST_ACCEPT = """
import os, signal, sys
from contextlib import contextmanager
from datetime import datetime

from airflow_failnotify.channels.email import open_email_transport
from airflow_failnotify.service.passes import run_notification_pass
from airflow_failnotify.store import Store
from airflow_failnotify.store.engine import create_store_engine

store = Store(create_store_engine(sys.argv[1], timeout=10))
at = datetime.fromisoformat(sys.argv[2])


@contextmanager
def killed_after_the_first_accept(conn_id):
    with open_email_transport(conn_id) as transport:
        class Killed:
            def send(self, notification):
                transport.send(notification)
                os.kill(os.getpid(), signal.SIGKILL)
        yield Killed()


run_notification_pass(trigger="cli", store=store, dag_status=lambda ids: {}, clock=lambda: at,
                      open_transport=killed_after_the_first_accept)
"""


def pass_killed_after_the_first_accept(store: Store, at: datetime, workdir: Path) -> None:
    """A pass at ``at`` in a process of its own, killed -9 right after the server accepts its first mail
    (a mail the server refused does not count); asserts it died so."""
    script = workdir / "killed_pass.py"
    script.write_text(_KILLED_AFTER_THE_FIRST_ACCEPT, encoding="utf-8")
    url = store.engine.url.render_as_string(hide_password=False)
    killed = subprocess.run([sys.executable, str(script), url, at.isoformat()], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
