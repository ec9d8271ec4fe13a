"""Evaluation: run the rules over the new events and write what is due to the outbox.

The DAGs' status is asked once, before the store's evaluation transaction starts, so no
network call happens while its lock is held. A pass evaluates its whole backlog
(:func:`evaluate_backlog`): every direction in the first batch, then only the directions with new events.

Job failures (immediate and threshold) carry the failed task instances of each run they report,
read here, in the evaluation's transaction, and kept in the outbox payload (a re-send says the same).
Why then and not when the mail is rendered: a run fails only after its failed tasks' processes
have exited (their own events are written by then), and the scheduler records the failed task
instances no task reported (killed hard) in the same transaction as the run's own event
(listeners/reconcile.py); a run with none reads "no task failed (e.g. a run timeout or a manual
mark)". Reading at render time would not be truer: the rows are those of the same table, and the
payload keeps every send of one notification identical.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from airflow_failnotify.core.coverage import drop_reported
from airflow_failnotify.core.emails import message_id_for
from airflow_failnotify.core.model import NotificationDraft, NotificationKind, OutboxState, Registration
from airflow_failnotify.core.rules import RulesFn
from airflow_failnotify.store.evaluation import EvaluationUnit
from airflow_failnotify.store.records import ALL_INTEGRATIONS
from airflow_failnotify.store.store import Store

#: Job failures list the failed task instances of each run they report.
JOB_KINDS = (NotificationKind.GLOBAL_IMMEDIATE, NotificationKind.GLOBAL_THRESHOLD)

DagStatusLookup = Callable[[Sequence[str]], Mapping[str, Any]]

#: New events per evaluation (a processing mail lists at most a batch's failures of a direction).
DEFAULT_BATCH = 5000
#: Batches one pass evaluates at most: a backlog beyond that waits for the next pass.
MAX_BATCHES = 40


@dataclass(frozen=True)
class EvaluationOutcome:
    evaluated_events: int
    outbox_ids: list[int]
    drafts: list[NotificationDraft]


def evaluate(
    store: Store,
    rules_fn: RulesFn,
    dag_status: DagStatusLookup,
    *,
    now: datetime,
    batch_size: int = DEFAULT_BATCH,
) -> EvaluationOutcome:
    """One evaluation: at most ``batch_size`` new events; a crash halfway writes nothing."""
    return _evaluate_batch(store, rules_fn, _status_of_registered(store, dag_status), now, batch_size)


def evaluate_backlog(
    store: Store,
    rules_fn: RulesFn,
    dag_status: DagStatusLookup,
    *,
    clock: Callable[[], datetime],
    batch_size: int = DEFAULT_BATCH,
    max_batches: int = MAX_BATCHES,
) -> EvaluationOutcome:
    """A pass's evaluation: one over every direction, then, while full batches come, the rest of the
    backlog (at most ``max_batches`` batches in all), each batch over the integrations it names only.

    The rules over a direction without new events depend only on the time and the DAG's status
    (inactivity, pause tracking): the first batch applied them, and the later ones of the same pass
    would find nothing more, so they skip those directions and cost the same whatever the number of
    integrations. Each batch is its own transaction, as a pass of one batch is; the DAGs' status is
    looked up once, before the first (a DAG registered meanwhile counts as neither paused nor running
    until the next pass).
    """
    status = _status_of_registered(store, dag_status)
    outcomes = [_evaluate_batch(store, rules_fn, status, clock(), batch_size)]
    while outcomes[-1].evaluated_events >= batch_size and len(outcomes) < max_batches:
        outcomes.append(_evaluate_batch(store, rules_fn, status, clock(), batch_size, only_touched=True))
    return EvaluationOutcome(
        evaluated_events=sum(o.evaluated_events for o in outcomes),
        outbox_ids=[i for o in outcomes for i in o.outbox_ids],
        drafts=[d for o in outcomes for d in o.drafts],
    )


def _status_of_registered(store: Store, dag_status: DagStatusLookup) -> dict[str, Any]:
    # Asked before the evaluation's transaction starts: no network call while its lock is held.
    dag_ids = sorted(store.registered_dag_ids())
    return dict(dag_status(dag_ids)) if dag_ids else {}


def _evaluate_batch(
    store: Store,
    rules_fn: RulesFn,
    status: Mapping[str, Any],
    now: datetime,
    batch_size: int,
    *,
    only_touched: bool = False,
) -> EvaluationOutcome:
    with store.evaluation(batch_size=batch_size, only_touched=only_touched) as unit:
        result = rules_fn(unit.registrations, unit.states, unit.events, status, now)
        by_name = {r.integration: r for r in unit.registrations}
        # One read of what the drafts' writes ask (covered events, existing keys, failed tasks).
        job_runs = [(e.dag_id, e.run_id) for d in result.drafts if d.kind in JOB_KINDS for e in d.events]
        unit.read_ahead(result.drafts, job_runs)
        written = [kept for kept in (_write(unit, by_name, draft, now) for draft in result.drafts) if kept]
        # The rules return the state of every registered direction they were given and nothing else:
        # what they leave out (an unregistered integration, a removed backward DAG) is forgotten.
        registered = {(r.integration, d) for r in unit.registrations for d in r.directions()}
        unit.finish({key: state for key, state in result.states.items() if key in registered}, now=now)
    return EvaluationOutcome(evaluated_events=len(unit.events), outbox_ids=list(unit.written), drafts=written)


def _write(
    unit: EvaluationUnit, by_name: Mapping[str, Registration], draft: NotificationDraft, now: datetime
) -> NotificationDraft | None:
    """The draft as written to the outbox (what it reports, its failed tasks); None when not written."""
    registration = by_name.get(draft.integration)
    if registration is None:
        return None
    kept = drop_reported(draft, unit.covered_event_ids(draft.kind, (e.id for e in draft.events)))
    if kept is None:
        return None
    if kept.kind in JOB_KINDS and kept.events:
        kept = replace(
            kept, failed_tasks=tuple(unit.task_failures_of_runs((e.dag_id, e.run_id) for e in kept.events))
        )
    settings = registration.settings_for(kept.direction)
    directions = registration.directions()
    dag_id = (
        registration.dag_id_for(kept.direction) if kept.direction in directions else registration.integration
    )
    # The Message-ID comes from the dedupe key, so a re-send of the same notification threads.
    message_id = message_id_for(kept.dedupe_key)
    held_until = silenced_until(unit.active_silences(now), kept.integration)
    state = OutboxState.PENDING if held_until is None else OutboxState.SILENCED
    added = unit.add_notification(
        kept, settings, dag_id, message_id=message_id, now=now, state=state, hold_until=held_until
    )
    return kept if added else None


def silenced_until(silences: Mapping[str, datetime], integration: str) -> datetime | None:
    """When the silences in force let ``integration``'s notifications go (its own or that of all, the
    later); None when it is not silenced: the notification is written pending."""
    ends = [silences[key] for key in (integration, ALL_INTEGRATIONS) if key in silences]
    return max(ends) if ends else None
