"""``failnotify run`` (one notification pass) and ``failnotify evaluate`` (the rules only)."""

from __future__ import annotations

import argparse
import json

from airflow_failnotify.core import rules
from airflow_failnotify.core.emails import subject_for


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run",
        help="one notification pass: evaluate the rules, then send every due notification",
        description="Exit 0 when the pass ran (even if some sends failed and stay pending); "
        "exit 2 when it could not run (store unreachable or not migrated).",
    )
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument("--no-evaluate", action="store_true", help="only deliver what is already due")
    run.set_defaults(func=_run)

    evaluate = subparsers.add_parser(
        "evaluate", help="run the rules over the new events, as a pass does, and print what became due"
    )
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.set_defaults(func=_evaluate)


def _run(args: argparse.Namespace) -> int:
    from airflow_failnotify.service.passes import run_notification_pass

    summary = run_notification_pass(trigger="cli", evaluate=not args.no_evaluate)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2, default=str))
        return 0
    print(
        f"pass {summary.pass_id}: {summary.evaluated_events} new event(s) evaluated, {summary.due} due, "
        f"{summary.sent} sent, {summary.pending} pending, {summary.failed} failed"
    )
    for error in summary.errors:
        print(f"  error: {error['server']}: {error['reason']}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from airflow_failnotify.lookups.dags import dag_status_from_metadata_db
    from airflow_failnotify.service.evaluation import evaluate_backlog
    from airflow_failnotify.store import get_store, utcnow

    store = get_store()
    # What a pass evaluates: the whole backlog (up to its bound), not one batch.
    outcome = evaluate_backlog(store, rules.evaluate, dag_status_from_metadata_db, clock=utcnow)
    due = []
    for draft in outcome.drafts:
        registration = store.get_registration(draft.integration)
        subject = ""
        if registration is not None and draft.direction in registration.directions():
            subject = subject_for(
                draft, registration.settings_for(draft.direction), registration.dag_id_for(draft.direction)
            )
        due.append(
            {
                "kind": draft.kind.value,
                "integration": draft.integration,
                "direction": draft.direction.value,
                "events": len(draft.events),
                "subject": subject,
            }
        )
    if args.json:
        print(json.dumps({"evaluated_events": outcome.evaluated_events, "due": due}, indent=2))
        return 0
    print(f"{outcome.evaluated_events} new event(s) evaluated, {len(due)} notification(s) due")
    for item in due:
        print(f"  {item['kind']}: {item['subject']}")
    return 0
