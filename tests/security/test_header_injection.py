"""Header injection is impossible: CR/LF in any header-bound value is refused where it comes in
(configuration, connection), and hostile values forced into the store directly (bypassing validation)
still give exactly one Subject line and no extra header at the SMTP server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_failnotify.core.config import ConfigValidationError, parse_registration
from airflow_failnotify.core.model import DirectionSettings, GlobalSettings, Registration
from airflow_failnotify.hooks.smtp_settings import validate_smtp_settings
from airflow_failnotify.service.passes import run_notification_pass
from airflow_failnotify.store import Store
from devtools.smtp_server import DevSmtpServer
from tests.fixtures.soak import Summary
from tests.reliability.helpers import (
    MAIL_HEADERS,
    delivery,
    entity_failed,
    header_lines,
    header_names,
    no_status,
    run_failed,
)

EVIL = "evil@attacker.test"
INJECTIONS = {
    "CRLF": f"\r\nBcc: {EVIL}\r\nX-Injected: yes",
    "LF": f"\nBcc: {EVIL}\nX-Injected: yes",
    "CR": f"\rBcc: {EVIL}\rX-Injected: yes",
    "U+2028": f"\u2028Bcc: {EVIL}\u2028X-Injected: yes",
    "NEL": f"\x85Bcc: {EVIL}\x85X-Injected: yes",
}


def base(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "integration": "sync_x",
        "backward_integration": "sync_x_back",
        "smtp_conn_id": "mail",
        "recipients": ["ops@example.com"],
        "same_for_backward": False,
    }
    data.update(changes)
    return data


@pytest.mark.parametrize("kind", list(INJECTIONS))
def test_every_header_bound_value_is_refused_at_the_entrance(kind: str, summary: Summary) -> None:
    inject = INJECTIONS[kind]
    config_cases = {
        "subject_prefix": base(subject_prefix=f"[Sync]{inject}"),
        "recipients": base(recipients=f"ops@example.com{inject}"),
        "cc": base(cc=f"audit@example.com{inject}"),
        "backward.recipients": base(backward={"recipients": f"b@example.com{inject}"}),
        "backward.subject_prefix": base(backward={"subject_prefix": f"[B]{inject}"}),
        "integration": base(integration=f"sync_x{inject}"),
    }
    refused = []
    for field, data in config_cases.items():
        try:
            parse_registration(data)
        except ConfigValidationError as err:
            if field in {e.path for e in err.errors}:
                refused.append(field)
    conn_cases = {
        "from_email": {"from_email": f"robot@example.com{inject}"},
        "to_email": {"from_email": "robot@example.com", "to_email": f"ops@example.com{inject}"},
    }
    for field, extra in conn_cases.items():
        if field in validate_smtp_settings(host="127.0.0.1", extra=extra):
            refused.append(field)
    everything = [*config_cases, *conn_cases]
    summary.record(
        f"header injection ({kind}) refused at config and connection",
        f"all {len(everything)} header-bound fields refused",
        f"{len(refused)} refused"
        + (f"; accepted: {sorted(set(everything) - set(refused))}" if set(everything) - set(refused) else ""),
        ok=sorted(refused) == sorted(everything),
    )
    assert sorted(refused) == sorted(everything)


def forced_registration(conn_id: str, inject: str) -> Registration:
    """What validation would refuse, written straight through the store API."""
    settings = DirectionSettings(
        smtp_conn_id=conn_id,
        recipients=(f"ops@example.com{inject}",),
        cc=(f"audit@example.com{inject}",),
        subject_prefix=f"[Sync]{inject}",
        global_=GlobalSettings(notify_immediately=True),
    )
    return Registration(integration=f"sync_x{inject}", forward=settings)


@pytest.mark.parametrize("kind", list(INJECTIONS))
def test_hostile_values_forced_through_the_store_still_give_clean_headers(
    kind: str,
    sqlite_store: Store,
    smtp_server: DevSmtpServer,
    smtp_connection: Callable[..., str],
    summary: Summary,
) -> None:
    inject = INJECTIONS[kind]
    conn_id = smtp_connection("mail_basic", server=smtp_server, auth_type="basic")
    registration = forced_registration(conn_id, inject)
    sqlite_store.save_registration(registration)
    dag_id = registration.integration
    sqlite_store.record_events(
        [
            run_failed(f"manual__{inject}", dag_id=dag_id, error=f"boom{inject}"),
            entity_failed(f"manual__{inject}", f"ISSUE-1{inject}", dag_id=dag_id, error=f"bad{inject}"),
        ]
    )
    result = run_notification_pass(trigger="cli", store=sqlite_store, dag_status=no_status)
    counts = delivery(sqlite_store, smtp_server)
    problems = []
    for received in smtp_server.messages:
        raw = received.raw
        if len(header_lines(raw, "Subject")) != 1:
            problems.append(f"{len(header_lines(raw, 'Subject'))} Subject lines")
        names = {n.lower() for n in header_names(raw)}
        if names - MAIL_HEADERS:
            problems.append(f"extra headers {sorted(names - MAIL_HEADERS)}")
        if "bcc" in names or "x-injected" in names:
            problems.append("injected header present")
        if any(c in received.subject for c in "\r\n\x85\u2028"):
            problems.append("line break in the Subject")
        if EVIL in received.rcpt_tos:
            problems.append(f"{EVIL} became an envelope recipient")
    summary.record(
        f"header injection ({kind}) forced through the store (prefix, to, cc, DAG id, run, entity)",
        "mails sent; 1 Subject line; no extra header; attacker not a recipient",
        f"{result.sent} sent ({counts.received} received); " + ("; ".join(problems) or "clean"),
        ok=not problems and result.sent == 2,
    )
    assert result.sent == 2 and counts.exactly_once, (result, counts)
    assert not problems, problems
