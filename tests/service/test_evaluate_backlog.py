"""A pass evaluates its backlog (service/evaluation.py ``evaluate_backlog``): the first batch over every
direction, the later ones over the integrations they name only, with the same outcome."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select

from airflow_failnotify.core import rules
from airflow_failnotify.core.config import parse_registration
from airflow_failnotify.core.model import DagStatus, EventKind
from airflow_failnotify.service.evaluation import evaluate, evaluate_backlog
from airflow_failnotify.store import EventRecord, Store
from airflow_failnotify.store import tables as t
from airflow_failnotify.store.engine import create_store_engine

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
REGISTERED_AT = NOW - timedelta(hours=1)  # sync_c has been quiet past its 30 minutes
BATCH = 4

REGISTRATIONS: list[dict[str, Any]] = [
    {"integration": "sync_a"},  # immediate job failures
    {"integration": "sync_b", "global": {"notify_immediately": False, "failure_count_threshold": 3}},
    {"integration": "sync_c", "global": {"inactivity_minutes": 30}},  # quiet: its mail comes from the sweep
    {"integration": "sync_d", "global": {"inactivity_minutes": 30}},  # paused: no inactivity mail
    {"integration": "sync_e", "global": {"inactivity_minutes": 30}},  # a run in progress is activity
    {"integration": "sync_f", "backward_integration": "sync_f_back", "global": {"inactivity_minutes": 30}},
]
STATUS = {"sync_d": DagStatus(is_paused=True), "sync_e": DagStatus(has_running_run=True)}


def _events() -> list[EventRecord]:
    out = []
    for i, dag_id in enumerate(["sync_a", "sync_b", "sync_f", "sync_f_back"] * 3):
        run_id = f"run_{i}"
        at = NOW - timedelta(minutes=50 - i)
        out.append(EventRecord(kind=EventKind.TASK_FAILED, dag_id=dag_id, run_id=run_id, occurred_at=at,
                               source="task", task_id="load", try_number=1, max_tries=0, error_message="bad"))
        out.append(EventRecord(kind=EventKind.ENTITY_FAILED, dag_id=dag_id, run_id=run_id, occurred_at=at,
                               source="task", task_id="load", entity=f"customer-{i}", try_number=1,
                               max_tries=0, error_message="HTTP 503"))
        out.append(EventRecord(kind=EventKind.RUN_FAILED, dag_id=dag_id, run_id=run_id, occurred_at=at,
                               source="scheduler", error_message="task_failure"))
    return out


def _store(path: Path) -> Store:
    store = Store(create_store_engine(f"sqlite:///{path}", timeout=5))
    store.migrate()
    store.save_registrations([
        replace(parse_registration({"smtp_conn_id": "mail", "recipients": "ops@example.com", **data}),
                registered_at=REGISTERED_AT)
        for data in REGISTRATIONS
    ])
    store.record_events(_events())
    return store


def _contents(store: Store) -> dict[str, Any]:
    """The outbox (with the events each row reports) and the rule state, without row ids."""
    with store.engine.connect() as conn:
        outbox = {row.id: row for row in conn.execute(select(t.outbox))}
        links: dict[str, list[int]] = {}
        for link in conn.execute(select(t.outbox_event)):
            links.setdefault(outbox[link.outbox_id].dedupe_key, []).append(link.event_id)
        rows = sorted(
            (row.dedupe_key, row.kind, row.state, row.payload, sorted(links.get(row.dedupe_key, [])))
            for row in outbox.values()
        )
        states = sorted(tuple(row) for row in conn.execute(select(t.direction_state)))
        unevaluated = conn.execute(select(t.event.c.id).where(t.event.c.evaluated.is_(False))).all()
    return {"outbox": rows, "states": states, "unevaluated": len(unevaluated)}


class Spy:
    """The rules and the status lookup as given, with what each call was given."""

    def __init__(self) -> None:
        self.rules_calls: list[list[str]] = []
        self.lookups = 0

    def rules(self, registrations: Sequence[Any], *args: Any) -> rules.Evaluation:
        self.rules_calls.append(sorted(r.integration for r in registrations))
        return rules.evaluate(registrations, *args)

    def status(self, dag_ids: Sequence[str]) -> Mapping[str, DagStatus]:
        self.lookups += 1
        return {dag_id: STATUS[dag_id] for dag_id in dag_ids if dag_id in STATUS}


def test_the_backlog_in_one_pass_gives_what_one_full_evaluation_per_batch_gives(tmp_path: Path) -> None:
    """Successive full evaluations (every direction each time) against one backlog evaluation (every
    direction once, then only those with new events): the same mails, the same events reported, the
    same rule state. What the later batches skip is what would not have changed."""
    full, backlog = _store(tmp_path / "full.db"), _store(tmp_path / "backlog.db")
    spy = Spy()
    try:
        batches = 0
        while evaluate(full, rules.evaluate, spy.status, now=NOW, batch_size=BATCH).evaluated_events:
            batches += 1
        lookups_of_full, spy.lookups = spy.lookups, 0
        outcome = evaluate_backlog(backlog, spy.rules, spy.status, clock=lambda: NOW, batch_size=BATCH)
        expected, got = _contents(full), _contents(backlog)
    finally:
        full.engine.dispose()
        backlog.engine.dispose()

    assert batches == 9 and lookups_of_full == 10  # 36 events in batches of 4, then an empty one
    assert outcome.evaluated_events == 36 and got["unevaluated"] == 0
    assert got == expected
    kinds = {key.split(":")[0] for key, *_ in got["outbox"]}
    assert {"global_immediate", "global_threshold", "processing", "inactivity"} <= kinds
    assert any(key.startswith("inactivity:sync_c:") for key, *_ in got["outbox"])
    assert not any(key.startswith(("inactivity:sync_d:", "inactivity:sync_e:")) for key, *_ in got["outbox"])
    # Status asked once; the first batch saw every registration, the later ones only those they name.
    assert spy.lookups == 1
    everyone = sorted(r["integration"] for r in REGISTRATIONS)
    assert spy.rules_calls[0] == everyone
    assert len(spy.rules_calls) == 10  # 9 full batches, and the empty one that ends the backlog
    assert all(set(call) < set(everyone) for call in spy.rules_calls[1:])
    assert all("sync_c" not in call for call in spy.rules_calls[1:])


def test_a_pass_evaluates_at_most_max_batches_and_the_next_one_the_rest(store: Store) -> None:
    store.save_registrations([
        parse_registration({"integration": "sync_a", "smtp_conn_id": "mail", "recipients": "ops@example.com"})
    ])
    store.record_events([e for e in _events() if e.dag_id == "sync_a"])  # 9 events
    first = evaluate_backlog(store, rules.evaluate, lambda ids: {}, clock=lambda: NOW, batch_size=2,
                             max_batches=3)
    second = evaluate_backlog(store, rules.evaluate, lambda ids: {}, clock=lambda: NOW, batch_size=2,
                              max_batches=3)
    assert (first.evaluated_events, second.evaluated_events) == (6, 3)
    job_runs = sorted(d.run_id for d in [*first.drafts, *second.drafts] if d.kind.value == "global_immediate")
    assert job_runs == ["run_0", "run_4", "run_8"]  # every failed run once, whichever pass saw it
