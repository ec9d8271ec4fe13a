"""One notification pass: evaluate the rules, then deliver the outbox.

The pass is the same code whether the DAG, the CLI (``failnotify run``) or the Send now
button runs it; only the way it learns the DAGs' paused/running status differs (the Task
SDK inside a task, Airflow's own database elsewhere).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from airflow_failnotify import settings as failnotify_settings
from airflow_failnotify.channels import open_transport as open_channel_transport
from airflow_failnotify.core import delivery, rules
from airflow_failnotify.core.outbox import Clock, OpenTransport, SentJournal
from airflow_failnotify.core.storm import recipient_key
from airflow_failnotify.exceptions import StoreNotReadyError, StoreUnavailableError
from airflow_failnotify.lookups.dags import DagStatusProvider, dag_status_from_metadata_db
from airflow_failnotify.service.evaluation import evaluate_backlog
from airflow_failnotify.service.rendering import MailRenderer, render_message
from airflow_failnotify.service.sent_journal import FileJournal
from airflow_failnotify.service.silences import release_expired
from airflow_failnotify.service.store_errors import remember_store_error, report_remembered_store_errors
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
    unconfirmed: int = 0  # sent; the store took the "sent" mark later, from the journal
    held: int = 0  # held back by the repeat interval, for the next mail of their episode
    storm_held: int = 0  # held by the storm cap, for its digest when the recipient set's window ends
    errors: list[dict[str, Any]] = field(default_factory=list)
    outbox: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_notification_pass(
    *,
    trigger: str,
    dag_status: DagStatusProvider = dag_status_from_metadata_db,
    store: Store | None = None,
    open_transport: OpenTransport = open_channel_transport,
    only_ids: Sequence[int] | None = None,
    evaluate: bool = True,
    clock: Clock = utcnow,
    journal: SentJournal | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PassSummary:
    """Evaluate the rules, then deliver every due notification; raises only when the store is unusable."""
    store = store or get_store()
    try:
        return _run_pass(
            store,
            trigger=trigger,
            dag_status=dag_status,
            open_transport=open_transport,
            only_ids=only_ids,
            evaluate=evaluate,
            clock=clock,
            journal=journal or FileJournal(),
            sleep=sleep,
        )
    except (StoreUnavailableError, StoreNotReadyError) as err:
        # The store cannot take the error row now; the next pass that reaches it logs it.
        remember_store_error(f"notification pass ({trigger}) could not run: {err}")
        raise


def _run_pass(
    store: Store,
    *,
    trigger: str,
    dag_status: DagStatusProvider,
    open_transport: OpenTransport,
    only_ids: Sequence[int] | None,
    evaluate: bool,
    clock: Clock,
    journal: SentJournal,
    sleep: Callable[[float], None],
) -> PassSummary:
    store.check_ready()
    report_remembered_store_errors(store)
    release_expired(store, clock())
    config = failnotify_settings.DeliverySettings.load()
    if config.base_url is None:
        log.warning(
            "failnotify: neither [failnotify] base_url nor [api] base_url is set; "
            "links in the emails will point at localhost"
        )
    pass_id = store.start_pass(trigger, now=clock())
    summary = PassSummary(pass_id=pass_id, trigger=trigger)
    if evaluate:
        _evaluate(store, summary, dag_status, clock)
        wait = group_wait(store) if trigger == IMMEDIATE else 0
        if wait and summary.due:
            # Noise control's group wait: a run's failures arrive seconds apart (the task's, then the
            # run's); wait for the rest so they go out in one mail.
            sleep(wait)
            _evaluate(store, summary, dag_status, clock)
    report = delivery.deliver(
        store,
        open_transport,
        MailRenderer(config.base_url, storm=config.storm_cap),
        policy=config.retry_policy,
        journal=journal,
        worker=worker_name(),
        clock=clock,
        refresh=CurrentConfiguration(store),
        pass_id=pass_id,
        only_ids=only_ids,
        # "Send now" (only_ids) is a person's explicit request: the storm cap does not hold it.
        storm=config.storm_cap if only_ids is None else None,
        peers=RecipientSets(store),
    )
    summary.sent, summary.pending, summary.failed = report.sent, report.pending, report.failed
    summary.held, summary.storm_held = report.held, report.storm_held
    summary.unconfirmed, summary.errors = report.unconfirmed, report.errors
    for reason in report.store_errors:
        remember_store_error(f"notification pass {pass_id} ({trigger}): {reason}", now=clock())
    _finish(store, summary, clock)
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


IMMEDIATE = "immediate"  # the trigger name of passes the immediate path starts (the operator's)


def _evaluate(store: Store, summary: PassSummary, dag_status: DagStatusProvider, clock: Clock) -> None:
    outcome = evaluate_backlog(store, rules.evaluate, dag_status, clock=clock)
    summary.evaluated_events += outcome.evaluated_events
    summary.due += len(outcome.outbox_ids)


def group_wait(store: Store) -> float:
    """The longest group wait of the directions that coalesce (0: no wait)."""
    waits = [
        reg.settings_for(direction).noise.group_wait_seconds
        for reg in store.list_registrations()
        for direction in reg.directions()
        if reg.settings_for(direction).noise.coalesce
    ]
    return float(max(waits, default=0))


def _finish(store: Store, summary: PassSummary, clock: Clock) -> None:
    """Record the pass; a store that fails now does not undo what was sent (the outage is kept)."""
    try:
        summary.outbox = store.outbox_counts()
        store.finish_pass(summary.pass_id, summary.to_dict(), now=clock())
    except (StoreUnavailableError, StoreNotReadyError) as err:
        remember_store_error(f"notification pass {summary.pass_id} could not be recorded: {err}", now=clock())


class CurrentConfiguration:
    """Rows as configured now: a queued mail goes through the integration's current server and
    to its current recipients, not those of the moment it was written."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __call__(self, rows: Sequence[OutboxItem]) -> Sequence[OutboxItem]:
        names = {row.integration for row in rows}
        registrations = {r.integration: r for r in self._store.registrations_of(names)}
        current = []
        for row in rows:
            registration = registrations.get(row.integration)
            if registration is None:
                current.append(row)  # unregistered meanwhile: closed by the unregister, kept as written
                continue
            settings = registration.settings_for(row.direction)
            current.append(replace(row, smtp_conn_id=settings.smtp_conn_id, settings=settings))
        return current


class RecipientSets:
    """The storm cap's peers: which integration-directions, as configured now, mail one recipient set
    (read once per pass, when the cap first counts)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._by_key: dict[str, list[tuple[str, str]]] | None = None

    def __call__(self, key: str) -> list[tuple[str, str]]:
        if self._by_key is None:
            by_key: dict[str, list[tuple[str, str]]] = {}
            for registration in self._store.list_registrations():
                for direction in registration.directions():
                    settings = registration.settings_for(direction)
                    by_key.setdefault(recipient_key(settings), []).append(
                        (registration.integration, direction.value)
                    )
            self._by_key = by_key
        return self._by_key.get(key, [])


__all__ = ["CurrentConfiguration", "PassSummary", "RecipientSets", "render_message", "run_notification_pass"]
