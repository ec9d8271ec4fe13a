"""One notification pass: evaluate the rules, then deliver the outbox.

The pass is the same code whether the DAG, the CLI (``failnotify run``) or the Send now
button runs it; only the way it learns the DAGs' paused/running status differs (the Task
SDK inside a task, Airflow's own database elsewhere).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from email.message import Message
from typing import Any

from airflow_failnotify import settings as failnotify_settings
from airflow_failnotify.core import delivery, rules
from airflow_failnotify.core.emails import render_notification, to_mime_message
from airflow_failnotify.exceptions import StoreNotReadyError, StoreUnavailableError
from airflow_failnotify.lookups.dags import DagStatusProvider, dag_status_from_metadata_db
from airflow_failnotify.store import OutboxItem, Store, get_store, utcnow, worker_name

log = logging.getLogger(__name__)


@dataclass
class PassSummary:
    """What one pass did; ``failnotify run --json`` prints it."""

    pass_id: int
    trigger: str
    evaluated_events: int = 0
    due: int = 0
    sent: int = 0
    pending: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    outbox: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def open_smtp(conn_id: str) -> Iterator[delivery.MailServer]:
    from airflow_failnotify.hooks.smtp import FailnotifySmtpHook

    hook = FailnotifySmtpHook(conn_id)
    with hook:
        yield hook


class _Renderer:
    """Renders outbox items, reading each connection's sender once per pass."""

    def __init__(self, base_url: str | None) -> None:
        self.base_url = base_url
        self._senders: dict[str, str] = {}

    def sender(self, conn_id: str) -> str:
        if conn_id not in self._senders:
            from airflow_failnotify.hooks.smtp import FailnotifySmtpHook

            self._senders[conn_id] = FailnotifySmtpHook(conn_id).settings.from_email
        return self._senders[conn_id]

    def __call__(self, item: OutboxItem) -> Message:
        # The Message-ID comes from the dedupe key, as the outbox row's does: a re-send threads.
        rendered = render_notification(item.draft, item.settings, dag_id=item.dag_id, base_url=self.base_url)
        return to_mime_message(rendered, sender=self.sender(item.smtp_conn_id))


def run_notification_pass(
    *,
    trigger: str,
    dag_status: DagStatusProvider = dag_status_from_metadata_db,
    store: Store | None = None,
    open_server: delivery.OpenServer = open_smtp,
    only_ids: Sequence[int] | None = None,
    evaluate: bool = True,
    now: datetime | None = None,
) -> PassSummary:
    """Evaluate the rules, then deliver every due notification; raises only when the store is unusable."""
    store = store or get_store()
    try:
        return _run_pass(
            store,
            trigger=trigger,
            dag_status=dag_status,
            open_server=open_server,
            only_ids=only_ids,
            evaluate=evaluate,
            now=now,
        )
    except (StoreUnavailableError, StoreNotReadyError) as err:
        # The store cannot take the error row now; the next pass that reaches it logs it.
        remember_store_error(f"notification pass ({trigger}) could not run: {err}")
        raise


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


def _run_pass(
    store: Store,
    *,
    trigger: str,
    dag_status: DagStatusProvider,
    open_server: delivery.OpenServer,
    only_ids: Sequence[int] | None,
    evaluate: bool,
    now: datetime | None,
) -> PassSummary:
    store.check_ready()
    report_remembered_store_errors(store)
    config = failnotify_settings.DeliverySettings.load()
    if config.base_url is None:
        log.warning(
            "failnotify: neither [failnotify] base_url nor [api] base_url is set; "
            "links in the emails will point at localhost"
        )
    pass_id = store.start_pass(trigger, now=now)
    summary = PassSummary(pass_id=pass_id, trigger=trigger)
    if evaluate:
        outcome = store.evaluate(rules.evaluate, dag_status, now=now or utcnow())
        summary.evaluated_events = outcome.evaluated_events
        summary.due = len(outcome.outbox_ids)
    report = delivery.deliver(
        store,
        open_server,
        _Renderer(config.base_url),
        worker=worker_name(),
        max_attempts=config.max_attempts,
        lease_seconds=config.lease_seconds,
        pass_id=pass_id,
        only_ids=only_ids,
    )
    summary.sent, summary.pending, summary.failed = report.sent, report.pending, report.failed
    summary.errors = report.errors
    summary.outbox = store.outbox_counts()
    store.finish_pass(pass_id, summary.to_dict())
    log.info(
        "failnotify pass %s (%s): %s new event(s), %s due, %s sent, %s pending, %s failed",
        pass_id,
        trigger,
        summary.evaluated_events,
        summary.due,
        summary.sent,
        summary.pending,
        summary.failed,
    )
    return summary
