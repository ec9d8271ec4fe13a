"""Every form path of the failnotify views, in-process with the FAB app's test client.

As in test_auth_bridge.py, Airflow reads its configuration once per process, so each auth manager
runs in its own child process: this file, executed as a script, builds
``airflow.providers.fab.www.app.create_app(enable_plugins=True)`` on a throwaway AIRFLOW_HOME with a
migrated failnotify store, starts a real :class:`DevSmtpServer`, drives ``app.test_client()`` with
``_token`` cookies from the auth manager's ``generate_jwt(user)`` and prints one JSON object of
observations. The tests below assert on them, one behaviour per test, under both auth managers.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a script by the fixture below
    sys.path.insert(0, str(REPO_ROOT))

from tests.fixtures.airflow_server import FAB_AUTH_MANAGER, SIMPLE_AUTH_MANAGER, AirflowHome  # noqa: E402

DAGS_SOURCE = """
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

for name in ("sync_a", "sync_b", "sync_c", "sync_d", "sync_e"):
    with DAG(name, schedule=None, description=f"{name} demo"):
        EmptyOperator(task_id="t")

with DAG("failnotify_post_failure_notification", schedule=None):
    EmptyOperator(task_id="t")
"""
USERS = {"admin": ("admin", "pw"), "op": ("op", "pw"), "user": ("user", "pw"), "viewer": ("viewer", "pw")}
MANAGERS = {"simple": SIMPLE_AUTH_MANAGER, "fab": FAB_AUTH_MANAGER}
DB_CONN_SECRET = "db-conn-secret-Hq7Zp2"

VALID_FORM = {
    "smtp_conn_id": "mail_test",
    "include_error_trace": "no",
    "recipients": "ops@example.com, lead@example.com",
    "cc": "audit@example.com",
    "subject_prefix": "[Sync]",
    "global_enabled": "on",
    "inactivity": "2h",
    "failure_count_threshold": "5",
    "processing_enabled": "on",
    "notify_before_max_retries": "on",
    "backward_integration": "sync_b",
    "b_smtp_conn_id": "mail_test",
    "b_include_error_trace": "yes",
    "b_recipients": "back@example.com",
    "b_cc": "",
    "b_subject_prefix": "[Back]",
    "b_global_enabled": "on",
    "b_inactivity": "",
    "b_notify_immediately": "on",
    "b_failure_count_threshold": "1",
    "b_processing_enabled": "on",
}
# (case, changes to VALID_FORM (None removes the key), the field that must show the message)
INVALID_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("no_server", {"smtp_conn_id": ""}, "smtp_conn_id"),
    ("bad_server_id", {"smtp_conn_id": "bad id!"}, "smtp_conn_id"),
    ("no_recipients", {"recipients": ""}, "recipients"),
    ("bad_recipient", {"recipients": "ops@example.com, not-an-address"}, "recipients"),
    ("bad_cc", {"cc": "audit@"}, "cc"),
    ("prefix_line_break", {"subject_prefix": "[Sync]\r\nBcc: x@evil.test"}, "subject_prefix"),
    ("prefix_too_long", {"subject_prefix": "x" * 150}, "subject_prefix"),
    ("bad_trace_choice", {"include_error_trace": "maybe"}, "include_error_trace"),
    ("bad_inactivity", {"inactivity": "soon"}, "inactivity"),
    ("zero_inactivity", {"inactivity": "0"}, "inactivity"),
    ("threshold_21", {"failure_count_threshold": "21"}, "failure_count_threshold"),
    ("threshold_0", {"failure_count_threshold": "0"}, "failure_count_threshold"),
    ("threshold_text", {"failure_count_threshold": "abc"}, "failure_count_threshold"),
    ("backward_is_itself", {"backward_integration": "sync_c"}, "backward_integration"),
    ("separate_without_backward_dag", {"backward_integration": ""}, "same_for_backward"),
    ("backward_no_recipients", {"b_recipients": ""}, "b_recipients"),
    ("backward_bad_cc", {"b_cc": "x@@y"}, "b_cc"),
    (
        "backward_threshold_99",
        {"b_failure_count_threshold": "99", "b_notify_immediately": None},
        "b_failure_count_threshold",
    ),
    ("backward_bad_inactivity", {"b_inactivity": "-5"}, "b_inactivity"),
    ("backward_dag_taken", {"backward_integration": "sync_a"}, "backward_integration"),
]


# ------------------------------------------------------------------------------------ child process


def _row_facts(listing: str, dag_id: str) -> dict[str, Any]:
    chunk = listing.split(f'data-dag-id="{dag_id}"')[1].split("</tr>")[0]
    return {
        "status": "Registered" if "label-success" in chunk else "Not registered",
        "server": re.findall(r'<td class="failnotify-server">([^<]*)</td>', chunk),
        "directions": re.findall(r'<td class="failnotify-directions">([^<]*)</td>', chunk),
    }


def _scenario() -> dict[str, Any]:  # pragma: no cover - runs in the child process
    import os
    import socket
    from datetime import datetime, timedelta, timezone

    from airflow.api_fastapi.app import create_auth_manager
    from airflow.models import Connection
    from airflow.providers.fab.www.app import create_app
    from airflow.utils.session import create_session
    from flask import session
    from flask_wtf.csrf import generate_csrf

    from airflow_failnotify.core import rules
    from airflow_failnotify.core.config import parse_registration
    from airflow_failnotify.core.model import EventKind, OutboxState
    from airflow_failnotify.store import EventRecord, get_store
    from devtools.smtp_server import DevSmtpServer

    # What `airflow api-server` sets (airflow/api_fastapi/main.py): the Task SDK's BaseHook then reads
    # connections from the metastore too, as it does behind the real UI.
    os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "server"
    obs: dict[str, Any] = {}
    store = get_store()
    store.migrate()

    smtp = DevSmtpServer(refuse_recipients={"bounce@example.com": "550 5.1.1 no such user"})
    smtp.start()
    with socket.socket() as sock:  # a port nothing listens on: "server down"
        sock.bind(("127.0.0.1", 0))
        down_port = sock.getsockname()[1]

    def env_conn(conn_id: str, port: int) -> None:
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
            {
                "conn_type": "failnotify_smtp",
                "host": "127.0.0.1",
                "port": port,
                "extra": {
                    "from_email": "robot@failnotify.test",
                    "security": "none",
                    "auth_type": "none",
                    "timeout": 5,
                },
            }
        )

    env_conn("mail_test", smtp.port)
    env_conn("mail_down", down_port)
    with create_session() as db:
        db.add(
            Connection(
                conn_id="mail_db",
                conn_type="failnotify_smtp",
                host="smtp.db.test",
                login="robot",
                password=DB_CONN_SECRET,
                extra=json.dumps({"from_email": "r@db.test"}),
            )
        )
        db.add(Connection(conn_id="other_http", conn_type="http", host="api.other.test"))

    manager = create_auth_manager()
    app = create_app(enable_plugins=True)
    obs["manager"] = type(manager).__name__
    if obs["manager"] == "SimpleAuthManager":
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

        users: dict[str, Any] = {
            name: SimpleAuthManagerUser(username=name, role=role) for name, (role, _pw) in USERS.items()
        }
        users["nodag"] = SimpleAuthManagerUser(username="nodag", role=None)
    else:
        sm = app.appbuilder.sm
        with app.app_context():
            roles = {"admin": "Admin", "op": "Op", "user": "User", "viewer": "Viewer"}
            users = {}
            for name, role in roles.items():
                users[name] = sm.find_user(username=name) or sm.add_user(
                    name, name, name, f"{name}@example.com", sm.find_role(role), password="pw"
                )
            one = sm.add_role("one_dag_reader")
            sm.add_permission_to_role(one, sm.create_permission("can_read", "DAG:sync_e"))
            users["nodag"] = sm.find_user(username="nodag") or sm.add_user(
                "nodag", "no", "dag", "nodag@example.com", one, password="pw"
            )
            users = {name: sm.find_user(username=name) for name in users}
    tokens = {name: manager.generate_jwt(user) for name, user in users.items()}
    secret = "0123456789abcdef0123456789abcdef01234567"

    def client(name: str | None) -> tuple[Any, str]:
        """A test client logged in as ``name`` and a valid CSRF token for its session."""
        c = app.test_client()
        if name:
            c.set_cookie("_token", tokens[name])
        with c.session_transaction() as sess:
            sess["csrf_token"] = secret
        with app.test_request_context():
            session["csrf_token"] = secret
            token = generate_csrf()
        return c, token

    def text(response: Any) -> str:
        return str(response.get_data(as_text=True))

    def field_errors(html: str) -> dict[str, str]:
        return dict(re.findall(r'id="error-([\w]+)" data-field="[\w]+">([^<]*)<', html))

    def input_value(html: str, name: str) -> str | None:
        found = re.search(rf'name="{name}"[^>]*?\svalue="([^"]*)"', html)
        return found.group(1) if found else None

    admin, admin_csrf = client("admin")

    # --- Configure: GET of a new integration --------------------------------------------------
    page = admin.get("/failnotify/configure/sync_a")
    html = text(page)
    obs["new_form_status"] = page.status_code
    obs["new_form"] = {
        "not_registered": "Not registered" in html,
        "servers": re.findall(r'<option value="(mail_[\w]+)"', html),
        "db_host_shown": "mail_db (smtp.db.test)" in html,
        "other_type_hidden": "other_http" not in html,
        "secret_absent": DB_CONN_SECRET not in html,
        "create_link": bool(re.search(r'href="/connections" target="_top"', html)),
        "trace_yes_default": bool(re.search(r'<option value="yes" selected>Yes</option>', html)),
        "checked": sorted(re.findall(r'name="(\w+)"[^>]*?\schecked', html)),
        "threshold_group": 'id="threshold-group"' in html,
        "backward_hidden": bool(
            re.search(r'id="failnotify-backward" class="failnotify-backward" hidden', html)
        ),
        "backward_choices": re.findall(r'<option value="(sync_\w)"', html),
        "buttons": re.findall(r'name="action" value="(\w+)"', html),
        "js": "failnotify.js" in html,
    }

    def post_form(c: Any, token: str, dag_id: str, form: dict[str, Any], action: str = "save") -> Any:
        data = {k: v for k, v in form.items() if v is not None}
        data.update(csrf_token=token, action=action)
        return c.post(f"/failnotify/configure/{dag_id}", data=data)

    # --- Configure: valid save ----------------------------------------------------------------
    saved = post_form(admin, admin_csrf, "sync_a", VALID_FORM)
    obs["save_status"] = [saved.status_code, saved.headers.get("Location")]
    reg = store.get_registration("sync_a")
    obs["saved"] = (
        None
        if reg is None
        else {
            "server": reg.forward.smtp_conn_id,
            "recipients": list(reg.forward.recipients),
            "cc": list(reg.forward.cc),
            "prefix": reg.forward.subject_prefix,
            "trace": reg.forward.include_error_trace,
            "global": [
                reg.forward.global_.enabled,
                reg.forward.global_.inactivity_minutes,
                reg.forward.global_.notify_immediately,
                reg.forward.global_.failure_count_threshold,
            ],
            "processing": [reg.forward.processing.enabled, reg.forward.processing.notify_before_max_retries],
            "backward_dag": reg.backward_integration,
            "same": reg.same_for_backward,
            "backward_recipients": list(reg.backward.recipients) if reg.backward else None,
            "backward_prefix": reg.backward.subject_prefix if reg.backward else None,
            "backward_immediate": reg.backward.global_.notify_immediately if reg.backward else None,
        }
    )
    after = text(admin.get("/failnotify/configure/sync_a"))
    obs["after_save"] = {
        "flash": "was saved" in after,
        "registered": "Registered" in after and "forward and backward" in after,
        "update_button": ">Update</button>" in after,
        "unregister_button": 'id="failnotify-unregister"' in after,
        "inactivity_shown": input_value(after, "inactivity"),
        "threshold_shown": input_value(after, "failure_count_threshold"),
        "backward_visible": not re.search(
            r'id="failnotify-backward" class="failnotify-backward" hidden', after
        ),
    }

    # --- Configure: each invalid field (nothing stored, message at the field, values kept) ---
    invalid: dict[str, Any] = {}
    for case, changes, expected in INVALID_CASES:
        form = {**VALID_FORM, **changes}
        response = post_form(admin, admin_csrf, "sync_c", form)
        body = text(response)
        invalid[case] = {
            "status": response.status_code,
            "errors": field_errors(body),
            "expected": expected,
            "stored": store.get_registration("sync_c") is not None,
            "kept_recipients": input_value(body, "recipients") == VALID_FORM["recipients"]
            or "recipients" in changes,
            "nothing_saved_banner": "Nothing was saved" in body,
        }
    obs["invalid"] = invalid
    # An invalid update leaves the stored registration as it was.
    before = store.get_registration("sync_a")
    bad_update = post_form(admin, admin_csrf, "sync_a", {**VALID_FORM, "recipients": "nope", "cc": ""})
    obs["invalid_update"] = [bad_update.status_code, store.get_registration("sync_a") == before]
    # Escaping: a hostile value comes back escaped in the re-rendered form.
    hostile = text(
        post_form(admin, admin_csrf, "sync_c", {**VALID_FORM, "recipients": '"><script>x()</script>'})
    )
    obs["hostile_escaped"] = "<script>x()" not in hostile and "&lt;script&gt;x()" in hostile

    # --- Test button --------------------------------------------------------------------------
    n_before = len(smtp.messages)
    tested = post_form(admin, admin_csrf, "sync_c", {**VALID_FORM, "backward_integration": "sync_d"}, "test")
    body = text(tested)
    new = smtp.messages[n_before:]
    obs["test_ok"] = {
        "status": tested.status_code,
        "results": re.findall(r'data-ok="(yes|no)"', body),
        "rcpts": sorted(sorted(m.rcpt_tos) for m in new),
        "subjects": sorted(str(m.message["Subject"]) for m in new),
        "not_stored": store.get_registration("sync_c") is None,
        "form_kept": input_value(body, "subject_prefix") == "[Sync]",
    }
    down = post_form(
        admin,
        admin_csrf,
        "sync_c",
        {**VALID_FORM, "smtp_conn_id": "mail_down", "same_for_backward": "on"},
        "test",
    )
    body = text(down)
    obs["test_down"] = {
        "status": down.status_code,
        "results": re.findall(r'data-ok="(yes|no)"', body),
        "reason": re.findall(r"<strong>Test \(forward\):</strong> ([^<]*)<", body),
    }
    missing = post_form(
        admin,
        admin_csrf,
        "sync_c",
        {**VALID_FORM, "smtp_conn_id": "mail_db", "same_for_backward": "on"},
        "test",
    )
    body = text(missing)
    obs["test_db_conn"] = {
        "results": re.findall(r'data-ok="(yes|no)"', body),
        "secret_absent": DB_CONN_SECRET not in body,
        "reason": re.findall(r"<strong>Test \(forward\):</strong> ([^<]*)<", body),
    }
    invalid_test = post_form(admin, admin_csrf, "sync_c", {**VALID_FORM, "recipients": ""}, "test")
    obs["test_invalid"] = [
        invalid_test.status_code,
        "recipients" in field_errors(text(invalid_test)),
        len(smtp.messages) - n_before,
    ]

    # --- Bulk ------------------------------------------------------------------------------------
    bulk_page = admin.get("/failnotify/bulk/?dag_id=sync_c&dag_id=sync_d&dag_id=sync_a&dag_id=sync_b")
    body = text(bulk_page)
    obs["bulk_form"] = {
        "status": bulk_page.status_code,
        "ok": re.findall(r"<li>(sync_\w)</li>", body.split('id="failnotify-bulk-ok"')[1].split("</ul>")[0]),
        "skip": re.findall(
            r"<li>(sync_\w): ([^<]*)</li>", body.split('id="failnotify-bulk-skip"')[1].split("</ul>")[0]
        ),
    }
    bulk_data = {
        "csrf_token": admin_csrf,
        "dag_id": ["sync_c", "sync_d", "sync_a", "sync_b"],
        "smtp_conn_id": "mail_test",
        "recipients": "team@example.com",
        "cc": "",
        "subject_prefix": "[B]",
    }
    bad_bulk = admin.post("/failnotify/bulk/", data={**bulk_data, "recipients": "team@"})
    obs["bulk_invalid"] = [
        bad_bulk.status_code,
        field_errors(text(bad_bulk)),
        store.get_registration("sync_c") is None,
    ]
    bad_bulk2 = admin.post("/failnotify/bulk/", data={**bulk_data, "smtp_conn_id": ""})
    obs["bulk_invalid_server"] = [bad_bulk2.status_code, sorted(field_errors(text(bad_bulk2)))]
    none_selected = admin.post("/failnotify/bulk/", data={**bulk_data, "dag_id": []})
    obs["bulk_none_selected"] = [none_selected.status_code, "Select one or more" in text(none_selected)]
    done = admin.post("/failnotify/bulk/", data=bulk_data)
    body = text(done)
    obs["bulk_result"] = {
        "status": done.status_code,
        "configured": re.findall(r'<li data-dag-id="(sync_\w)"><a', body),
        "skipped": re.findall(r'<li data-dag-id="(sync_\w)">\1: <span class="failnotify-why">([^<]*)<', body),
    }
    stored_c = store.get_registration("sync_c")
    obs["bulk_stored"] = (
        None
        if stored_c is None
        else {
            "server": stored_c.forward.smtp_conn_id,
            "recipients": list(stored_c.forward.recipients),
            "prefix": stored_c.forward.subject_prefix,
            "global": stored_c.forward.global_.enabled,
            "processing": stored_c.forward.processing.enabled,
            "same": stored_c.same_for_backward,
            "a_unchanged": store.get_registration("sync_a") == before,
        }
    )
    listing = text(admin.get("/failnotify/"))
    obs["list_after_bulk"] = {
        "rows": {dag: _row_facts(listing, dag) for dag in ("sync_a", "sync_c", "sync_e")},
        "checkboxes": re.findall(r'name="dag_id" value="(sync_\w)"', listing),
        "configure_selected": 'id="failnotify-configure-selected"' in listing,
        "tabs": re.findall(r'<li role="presentation" class="[^"]*"><a href="([^"]+)">', listing),
    }

    # --- Events, errors and the outbox --------------------------------------------------------
    now = datetime.now(timezone.utc)
    store.record_events(
        [
            EventRecord(
                kind=EventKind.RUN_FAILED,
                dag_id="sync_d",
                run_id="old_run",
                occurred_at=now - timedelta(days=3),
                source="scheduler",
                error_message="old failure",
            ),
            EventRecord(
                kind=EventKind.TASK_FAILED,
                dag_id="sync_d",
                run_id="new_run",
                occurred_at=now - timedelta(hours=1),
                source="task",
                task_id="load",
                try_number=1,
                max_tries=3,
                is_final=False,
                error_message="ValueError: <b>bad</b> record",
                traceback='File "sync.py", line 7\n<b>trace</b>',
            ),
            EventRecord(
                kind=EventKind.RUN_FAILED,
                dag_id="sync_d",
                run_id="new_run",
                occurred_at=now - timedelta(minutes=30),
                source="scheduler",
                error_message="run failed",
            ),
            EventRecord(
                kind=EventKind.RUN_FAILED,
                dag_id="sync_c",
                run_id="c_run",
                occurred_at=now - timedelta(minutes=10),
                source="scheduler",
                error_message="c failed",
            ),
        ]
    )
    store.log_error("config", "old configuration problem", integration="sync_d", now=now - timedelta(days=5))
    store.log_error("store", "store was away <i>briefly</i>", now=now - timedelta(minutes=5))
    store.evaluate(rules.evaluate, lambda ids: {}, now=now)
    counts = store.failure_counts_by_day(["sync_d"], days=14)
    obs["spark_counts"] = counts["sync_d"]
    listing = text(admin.get("/failnotify/"))
    row_d = listing.split('data-dag-id="sync_d"')[1].split("</tr>")[0]
    obs["sparkline"] = {
        "svg": '<svg class="failnotify-sparkline"' in row_d,
        "title": re.findall(r"<title>([^<]*)</title>", row_d),
        "bars": row_d.count("<rect "),
    }

    def errors_page(c: Any, query: str) -> dict[str, Any]:
        response = c.get(f"/failnotify/errors/?{query}")
        body = text(response)
        return {
            "status": response.status_code,
            "events": re.findall(r'<tr data-event-id="\d+" data-integration="(sync_\w)">', body),
            "event_runs": re.findall(r"<td><small>(\w+)</small></td>", body),
            "other": re.findall(r'<tr data-error-id="\d+" data-category="(\w+)">', body),
            "outbox": re.findall(r'<tr data-outbox-id="(\d+)" data-state="(\w+)">', body),
            "send_now": body.count("failnotify-send-now"),
            "retry": body.count("failnotify-retry"),
            "details": body.count("<details"),
            "escaped": "&lt;b&gt;trace&lt;/b&gt;" in body
            and "<b>trace</b>" not in body
            and "<i>briefly</i>" not in body,
            "has_events_table": 'id="failnotify-events"' in body,
            "has_other_table": 'id="failnotify-other-errors"' in body,
            "filter_errors": field_errors(body),
            "must_choose": 'id="failnotify-choose"' in body,
        }

    since = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    obs["errors_all"] = errors_page(admin, "")
    obs["errors_integration"] = errors_page(admin, "type=integration")
    obs["errors_other"] = errors_page(admin, "type=other")
    obs["errors_by_integration"] = errors_page(admin, "integration=sync_c")
    obs["errors_since"] = errors_page(admin, f"since={since}")
    obs["errors_until"] = errors_page(admin, f"until={since}")
    obs["errors_category"] = errors_page(admin, "type=other&category=store")
    obs["errors_bad_since"] = errors_page(admin, "since=yesterday")
    obs["errors_pending"] = errors_page(admin, "ostate=pending")

    # Send now on a pending notification: sent through the real server, exactly once.
    pending, _ = store.list_outbox(state=OutboxState.PENDING, integration="sync_c")
    target = pending[0].id
    n_before = len(smtp.messages)
    sent = admin.post(
        f"/failnotify/errors/outbox/{target}/send", data={"csrf_token": admin_csrf, "ostate": "pending"}
    )
    item = store.get_outbox_item(target)
    obs["send_now"] = {
        "status": [sent.status_code, sent.headers.get("Location")],
        "state": item.state.value if item else None,
        "mails": [sorted(m.rcpt_tos) for m in smtp.messages[n_before:]],
    }
    page = admin.get("/failnotify/errors/")
    obs["send_now_flash"] = "was sent" in text(page)
    again = admin.post(f"/failnotify/errors/outbox/{target}/send", data={"csrf_token": admin_csrf})
    resend = admin.post(f"/failnotify/errors/outbox/{target}/retry", data={"csrf_token": admin_csrf})
    flashes = text(admin.get("/failnotify/errors/"))
    obs["no_resend"] = {
        "statuses": [again.status_code, resend.status_code],
        "state": store.get_outbox_item(target).state.value,  # type: ignore[union-attr]
        "mails": len(smtp.messages) - n_before - 1,
        "explained": "never sent again" in flashes,
    }

    # A failed notification: every recipient refused (permanent), max_attempts=1 in this process.
    store.save_registration(
        parse_registration(
            {"integration": "sync_e", "smtp_conn_id": "mail_test", "recipients": "bounce@example.com"}
        )
    )
    store.record_events(
        [
            EventRecord(
                kind=EventKind.RUN_FAILED,
                dag_id="sync_e",
                run_id="e_run",
                occurred_at=now,
                source="scheduler",
                error_message="e failed",
            )
        ]
    )
    from airflow_failnotify.service.passes import run_notification_pass

    run_notification_pass(trigger="manual", dag_status=lambda ids: {})
    failed, _ = store.list_outbox(state=OutboxState.FAILED, integration="sync_e")
    obs["failed_made"] = len(failed)
    failed_id = failed[0].id if failed else -1
    page = errors_page(admin, "ostate=failed")
    obs["errors_failed"] = page
    # The recipient is fixed on the server side; Retry requeues and sends it.
    smtp.refuse_recipients.clear()
    n_before = len(smtp.messages)
    retried = admin.post(f"/failnotify/errors/outbox/{failed_id}/retry", data={"csrf_token": admin_csrf})
    obs["retry"] = {
        "status": retried.status_code,
        "state": store.get_outbox_item(failed_id).state.value,  # type: ignore[union-attr]
        "mails": [sorted(m.rcpt_tos) for m in smtp.messages[n_before:]],
    }
    obs["unknown_outbox"] = admin.post(
        "/failnotify/errors/outbox/99999/send", data={"csrf_token": admin_csrf}
    ).status_code

    # --- Settings --------------------------------------------------------------------------------
    from airflow_failnotify.core import schedule
    from airflow_failnotify.dags.notification_dag import current_schedule

    page = admin.get("/failnotify/settings/")
    body = text(page)
    obs["settings_page"] = {
        "status": page.status_code,
        "effective": re.findall(r'id="failnotify-effective">([^<]*)<code>([^<]*)</code>', body),
        "source": re.findall(r'id="failnotify-source">([^<]*)<', body),
        "last_run": "never" not in body.split('id="failnotify-last-run">')[1].split("</td>")[0],
        "next_run": re.findall(r'id="failnotify-next-run">([^<]*)<', body),
        "options": len(re.findall(r'<option value="[^"]+"', body)),
    }
    changed = admin.post("/failnotify/settings/", data={"csrf_token": admin_csrf, "schedule": "*/5 * * * *"})
    obs["settings_save"] = [
        changed.status_code,
        store.get_setting(schedule.SETTING_KEY),
        list(current_schedule()),
    ]
    body = text(admin.get("/failnotify/settings/"))
    obs["settings_after"] = {
        "source": re.findall(r'id="failnotify-source">([^<]*)<', body),
        "flash": "Every 5 minutes" in body,
    }
    bad = admin.post("/failnotify/settings/", data={"csrf_token": admin_csrf, "schedule": "* * * * *"})
    obs["settings_bad"] = [
        bad.status_code,
        "error-schedule" in text(bad),
        store.get_setting(schedule.SETTING_KEY),
    ]
    cleared = admin.post("/failnotify/settings/", data={"csrf_token": admin_csrf, "schedule": ""})
    obs["settings_cleared"] = [
        cleared.status_code,
        store.get_setting(schedule.SETTING_KEY),
        list(current_schedule()),
    ]

    # --- Unregister with confirmation ---------------------------------------------------------
    confirm = admin.get("/failnotify/configure/sync_a/unregister")
    body = text(confirm)
    no_confirm = admin.post("/failnotify/configure/sync_a/unregister", data={"csrf_token": admin_csrf})
    still = store.get_registration("sync_a") is not None
    yes = admin.post(
        "/failnotify/configure/sync_a/unregister", data={"csrf_token": admin_csrf, "confirm": "yes"}
    )
    obs["unregister"] = {
        "confirm_page": [
            confirm.status_code,
            'id="failnotify-unregister-yes"' in body,
            'name="confirm" value="yes"' in body,
        ],
        "without_confirm": [no_confirm.status_code, still],
        "with_confirm": [
            yes.status_code,
            yes.headers.get("Location"),
            store.get_registration("sync_a") is None,
        ],
        "again": admin.get("/failnotify/configure/sync_a/unregister").status_code,
    }

    # --- Anonymous: every view and action ------------------------------------------------------
    gets = [
        "/failnotify/",
        "/failnotify/configure/sync_c",
        "/failnotify/configure/sync_c/unregister",
        "/failnotify/bulk/?dag_id=sync_e",
        "/failnotify/errors/",
        "/failnotify/settings/",
    ]
    posts = [
        "/failnotify/configure/sync_c",
        "/failnotify/configure/sync_c/unregister",
        "/failnotify/bulk/",
        f"/failnotify/errors/outbox/{target}/send",
        f"/failnotify/errors/outbox/{failed_id}/retry",
        "/failnotify/settings/",
    ]
    anon, anon_csrf = client(None)
    obs["anon_get"] = {
        url: [r.status_code, "/login" in (r.headers.get("Location") or "")]
        for url in gets
        for r in [anon.get(url)]
    }
    obs["anon_post"] = {
        url: anon.post(url, data={"csrf_token": anon_csrf, "confirm": "yes"}).status_code for url in posts
    }
    obs["anon_post_no_csrf"] = {url: app.test_client().post(url, data={}).status_code for url in posts}

    # --- Forbidden ----------------------------------------------------------------------------
    matrix: dict[str, dict[str, int]] = {}
    for name in ("op", "user", "viewer", "nodag"):
        c, token = client(name)
        row = {f"GET {url}": c.get(url).status_code for url in gets}
        row["GET /failnotify/errors/?integration=sync_c"] = c.get(
            "/failnotify/errors/?integration=sync_c"
        ).status_code
        for url in posts:
            row[f"POST {url}"] = c.post(
                url,
                data={
                    "csrf_token": token,
                    **VALID_FORM,
                    "backward_integration": "",
                    "same_for_backward": "on",
                    "dag_id": "sync_e",
                    "schedule": "0 * * * *",
                },
            ).status_code
        matrix[name] = row
    obs["matrix"] = matrix
    obs["after_matrix"] = {
        "sync_c_recipients": list(store.get_registration("sync_c").forward.recipients),  # type: ignore[union-attr]
        "schedule": store.get_setting(schedule.SETTING_KEY),
    }
    viewer, _ = client("viewer")
    body = text(viewer.get("/failnotify/configure/sync_c"))
    obs["viewer_form"] = {
        "readonly": 'id="failnotify-readonly"' in body,
        "csrf": 'name="csrf_token"' in body,
        "disabled": "<fieldset disabled>" in body,
        "buttons": 'name="action"' in body,
    }
    obs["viewer_no_admin_actions"] = errors_page(viewer, "")
    obs["viewer_tabs"] = re.findall(
        r'<a href="([^"]+)">',
        text(viewer.get("/failnotify/")).split('id="failnotify-tabs"')[1].split("</ul>")[0],
    )
    nodag, _ = client("nodag")
    obs["nodag_errors"] = errors_page(nodag, "")

    smtp.stop()
    return obs


# ------------------------------------------------------------------------------------ parent fixtures


@pytest.fixture(scope="module")
def migrated_home(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    home = AirflowHome.create(
        tmp_path_factory.mktemp("airflow-views-template"), dags={"integrations.py": DAGS_SOURCE}, users=USERS
    )
    home.migrate()
    home.reserialize()
    return home


@pytest.fixture(scope="module", params=sorted(MANAGERS))
def obs(
    request: pytest.FixtureRequest, migrated_home: AirflowHome, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    path = tmp_path_factory.mktemp(f"airflow-views-{request.param}")
    home = migrated_home.clone(path, auth_manager=MANAGERS[request.param])
    env = home.env()
    env["AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN"] = f"sqlite:///{path / 'failnotify.db'}"
    env["AIRFLOW__FAILNOTIFY__MAX_ATTEMPTS"] = "1"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, __file__],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("FAILNOTIFY-OBS ")]
    assert result.returncode == 0 and lines, (
        f"child failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
    )
    data: dict[str, Any] = json.loads(lines[-1].removeprefix("FAILNOTIFY-OBS "))
    data["child_seconds"] = round(time.monotonic() - started, 2)
    return data


# ------------------------------------------------------------------------------------ tests: configure


def test_new_form_has_every_seed_field_with_defaults_and_no_secret(obs: dict[str, Any]) -> None:
    assert obs["new_form_status"] == 200
    form = obs["new_form"]
    assert form["not_registered"]
    # Connections of our type only (metastore and AIRFLOW_CONN_*), id and host, never a secret.
    assert set(form["servers"]) == {"mail_db", "mail_down", "mail_test"}
    assert form["db_host_shown"] and form["other_type_hidden"] and form["secret_absent"]
    assert form["create_link"]
    assert form["trace_yes_default"]
    assert set(form["checked"]) >= {
        "global_enabled",
        "notify_immediately",
        "processing_enabled",
        "same_for_backward",
        "b_global_enabled",
    }
    assert "notify_before_max_retries" not in form["checked"]
    assert form["threshold_group"] and form["backward_hidden"] and form["js"]
    assert form["backward_choices"] == ["sync_b", "sync_c", "sync_d", "sync_e"]
    assert form["buttons"] == ["save", "test"]


def test_valid_save_is_stored_and_shown_as_registered(obs: dict[str, Any]) -> None:
    status, location = obs["save_status"]
    assert status == 302 and location.endswith("/failnotify/configure/sync_a")
    assert obs["saved"] == {
        "server": "mail_test",
        "recipients": ["ops@example.com", "lead@example.com"],
        "cc": ["audit@example.com"],
        "prefix": "[Sync]",
        "trace": False,
        "global": [True, 120, False, 5],
        "processing": [True, True],
        "backward_dag": "sync_b",
        "same": False,
        "backward_recipients": ["back@example.com"],
        "backward_prefix": "[Back]",
        "backward_immediate": True,
    }
    assert obs["after_save"] == {
        "flash": True,
        "registered": True,
        "update_button": True,
        "unregister_button": True,
        "inactivity_shown": "2h",
        "threshold_shown": "5",
        "backward_visible": True,
    }


@pytest.mark.parametrize("case", [case for case, _, _ in INVALID_CASES])
def test_each_invalid_field_is_refused_at_the_field_and_nothing_is_saved(
    obs: dict[str, Any], case: str
) -> None:
    result = obs["invalid"][case]
    assert result["status"] == 422
    assert result["expected"] in result["errors"], result["errors"]
    assert result["errors"][result["expected"]].strip()
    assert not result["stored"]
    assert result["nothing_saved_banner"] and result["kept_recipients"]


def test_invalid_update_keeps_the_stored_registration(obs: dict[str, Any]) -> None:
    assert obs["invalid_update"] == [422, True]


def test_user_values_are_escaped_when_the_form_comes_back(obs: dict[str, Any]) -> None:
    assert obs["hostile_escaped"]


# ------------------------------------------------------------------------------------ tests: Test button


def test_test_button_sends_to_recipients_and_cc_of_each_direction_without_saving(obs: dict[str, Any]) -> None:
    result = obs["test_ok"]
    assert result["status"] == 200 and result["results"] == ["yes", "yes"]
    assert result["rcpts"] == [
        ["audit@example.com", "lead@example.com", "ops@example.com"],
        ["back@example.com"],
    ]
    assert result["subjects"] == [
        "[Back] Test notification: sync_c (backward)",
        "[Sync] Test notification: sync_c (forward)",
    ]
    assert result["not_stored"] and result["form_kept"]


def test_test_button_shows_the_exact_reason_when_the_server_is_down(obs: dict[str, Any]) -> None:
    assert obs["test_down"]["status"] == 200 and obs["test_down"]["results"] == ["no"]
    (reason,) = obs["test_down"]["reason"]
    assert reason.startswith("Not sent:") and "127.0.0.1" in reason


def test_test_button_never_shows_a_connection_secret(obs: dict[str, Any]) -> None:
    assert obs["test_db_conn"]["results"] == ["no"]
    assert obs["test_db_conn"]["secret_absent"]
    assert "smtp.db.test" in obs["test_db_conn"]["reason"][0]


def test_test_with_invalid_form_sends_nothing(obs: dict[str, Any]) -> None:
    assert obs["test_invalid"] == [422, True, 2]  # the 2 mails are the earlier successful test


# ------------------------------------------------------------------------------------ tests: bulk


def test_bulk_form_previews_who_is_configured_and_who_is_skipped(obs: dict[str, Any]) -> None:
    assert obs["bulk_form"]["status"] == 200
    assert obs["bulk_form"]["ok"] == ["sync_c", "sync_d"]
    assert obs["bulk_form"]["skip"] == [
        ["sync_a", "already configured"],
        ["sync_b", "already the backward DAG of sync_a"],
    ]


def test_bulk_invalid_input_is_refused_at_the_field(obs: dict[str, Any]) -> None:
    status, errors, nothing = obs["bulk_invalid"]
    assert status == 422 and "recipients" in errors and nothing
    assert obs["bulk_invalid_server"] == [422, ["smtp_conn_id"]]
    assert obs["bulk_none_selected"] == [422, True]


def test_bulk_configures_only_new_ones_and_says_why_others_were_skipped(obs: dict[str, Any]) -> None:
    result = obs["bulk_result"]
    assert result["status"] == 200
    assert result["configured"] == ["sync_c", "sync_d"]
    assert result["skipped"] == [
        ["sync_a", "already configured"],
        ["sync_b", "already the backward DAG of sync_a"],
    ]
    assert obs["bulk_stored"] == {
        "server": "mail_test",
        "recipients": ["team@example.com"],
        "prefix": "[B]",
        "global": True,
        "processing": True,
        "same": True,
        "a_unchanged": True,
    }


def test_integrations_list_shows_registration_directions_server_and_bulk_controls(
    obs: dict[str, Any],
) -> None:
    rows = obs["list_after_bulk"]["rows"]
    assert rows["sync_a"] == {
        "status": "Registered",
        "server": ["mail_test"],
        "directions": ["forward, backward"],
    }
    assert rows["sync_c"] == {"status": "Registered", "server": ["mail_test"], "directions": ["forward"]}
    assert rows["sync_e"] == {"status": "Not registered", "server": [""], "directions": [""]}
    assert obs["list_after_bulk"]["checkboxes"] == ["sync_a", "sync_b", "sync_c", "sync_d", "sync_e"]
    assert obs["list_after_bulk"]["configure_selected"]
    assert obs["list_after_bulk"]["tabs"] == ["/failnotify/", "/failnotify/errors/", "/failnotify/settings/"]


def test_sparkline_of_recent_failures(obs: dict[str, Any]) -> None:
    assert sum(obs["spark_counts"]) == 3 and len(obs["spark_counts"]) == 14
    assert obs["sparkline"]["svg"] and obs["sparkline"]["bars"] == 14
    assert obs["sparkline"]["title"][0].startswith("3 failures in the last 14 days")


# ------------------------------------------------------------------------------------ tests: Error Management


def test_error_management_lists_both_types_newest_first_with_expandable_detail(obs: dict[str, Any]) -> None:
    page = obs["errors_all"]
    assert page["status"] == 200
    assert page["events"] == ["sync_c", "sync_d", "sync_d", "sync_d"]
    assert page["event_runs"] == ["c_run", "new_run", "new_run", "old_run"]
    assert page["other"] == ["store", "config"]
    assert page["details"] >= 6 and page["escaped"]


def test_error_management_filters_by_type(obs: dict[str, Any]) -> None:
    assert obs["errors_integration"]["has_events_table"] and not obs["errors_integration"]["has_other_table"]
    assert obs["errors_other"]["has_other_table"] and not obs["errors_other"]["has_events_table"]
    assert obs["errors_category"]["other"] == ["store"]


def test_error_management_filters_by_integration_and_time(obs: dict[str, Any]) -> None:
    assert obs["errors_by_integration"]["events"] == ["sync_c"]
    assert obs["errors_by_integration"]["other"] == []
    assert obs["errors_since"]["event_runs"] == ["c_run", "new_run", "new_run"]
    assert obs["errors_since"]["other"] == ["store"]
    assert obs["errors_until"]["event_runs"] == ["old_run"] and obs["errors_until"]["other"] == ["config"]
    bad = obs["errors_bad_since"]
    assert bad["status"] == 200 and "since" in bad["filter_errors"] and len(bad["events"]) == 4


def test_outbox_is_listed_with_send_now_on_pending(obs: dict[str, Any]) -> None:
    pending = obs["errors_pending"]
    assert pending["outbox"] and all(state == "pending" for _, state in pending["outbox"])
    assert pending["send_now"] == len(pending["outbox"]) and pending["retry"] == 0


def test_send_now_sends_a_pending_notification_once(obs: dict[str, Any]) -> None:
    status, location = obs["send_now"]["status"]
    assert status == 302 and "/failnotify/errors/" in location and "ostate=pending" in location
    assert obs["send_now"]["state"] == "sent"
    assert obs["send_now"]["mails"] == [["team@example.com"]]
    assert obs["send_now_flash"]


def test_a_sent_notification_is_never_sent_again(obs: dict[str, Any]) -> None:
    assert obs["no_resend"] == {"statuses": [302, 302], "state": "sent", "mails": 0, "explained": True}


def test_retry_requeues_a_failed_notification_and_sends_it(obs: dict[str, Any]) -> None:
    assert obs["failed_made"] == 1
    assert obs["errors_failed"]["retry"] == 1 and obs["errors_failed"]["send_now"] == 0
    assert obs["retry"] == {"status": 302, "state": "sent", "mails": [["bounce@example.com"]]}
    assert obs["unknown_outbox"] == 302


# ------------------------------------------------------------------------------------ tests: settings


def test_settings_shows_effective_schedule_last_and_next_run(obs: dict[str, Any]) -> None:
    page = obs["settings_page"]
    assert page["status"] == 200
    assert page["effective"] == [["Every 30 minutes (default) ", "*/30 * * * *"]]
    assert page["source"] == ["default"]
    assert page["last_run"]
    (next_run,) = page["next_run"]
    assert next_run.endswith(":00:00 UTC") or next_run.endswith(":30:00 UTC")
    assert page["options"] == 9


def test_settings_change_is_stored_and_read_by_the_dag(obs: dict[str, Any]) -> None:
    assert obs["settings_save"] == [302, "*/5 * * * *", ["*/5 * * * *", "settings view"]]
    assert obs["settings_after"] == {"source": ["settings view"], "flash": True}
    assert obs["settings_bad"] == [422, True, "*/5 * * * *"]
    status, stored, (cron, _source) = obs["settings_cleared"]
    assert (status, stored, cron) == (302, None, "*/30 * * * *")


# ------------------------------------------------------------------------------------ tests: unregister


def test_unregister_needs_confirmation_then_removes_the_registration(obs: dict[str, Any]) -> None:
    result = obs["unregister"]
    assert result["confirm_page"] == [200, True, True]
    assert result["without_confirm"] == [302, True]
    status, location, gone = result["with_confirm"]
    assert status == 302 and location.endswith("/failnotify/") and gone
    assert result["again"] == 302  # not registered any more: back to the form


# ------------------------------------------------------------------------------------ tests: security


def test_anonymous_is_sent_to_login_on_every_view(obs: dict[str, Any]) -> None:
    assert all(result == [302, True] for result in obs["anon_get"].values()), obs["anon_get"]


def test_anonymous_post_is_refused_on_every_action(obs: dict[str, Any]) -> None:
    assert set(obs["anon_post"].values()) == {401}, obs["anon_post"]
    assert set(obs["anon_post_no_csrf"].values()) == {400}, obs["anon_post_no_csrf"]


def _expected_matrix(manager: str) -> dict[str, dict[str, int]]:
    ok_get = {
        "GET /failnotify/": 200,
        "GET /failnotify/configure/sync_c": 200,
        "GET /failnotify/errors/": 200,
        "GET /failnotify/errors/?integration=sync_c": 200,
    }
    edit = {
        "GET /failnotify/configure/sync_c/unregister": 200,
        "GET /failnotify/bulk/?dag_id=sync_e": 200,
        "POST /failnotify/configure/sync_c": 302,
        "POST /failnotify/configure/sync_c/unregister": 302,
        "POST /failnotify/bulk/": 200,
    }
    no_edit = {key: 403 for key in edit}
    admin_only = {"GET /failnotify/settings/": 403, "POST /failnotify/settings/": 403}
    outbox = {
        key: 403
        for key in ("POST /failnotify/errors/outbox/{t}/send", "POST /failnotify/errors/outbox/{f}/retry")
    }
    nodag = {
        **no_edit,
        **admin_only,
        **outbox,
        "GET /failnotify/": 200,
        "GET /failnotify/errors/": 200,
        "GET /failnotify/configure/sync_c": 403,
        "GET /failnotify/errors/?integration=sync_c": 403,
    }
    if manager == "FabAuthManager":  # a role with read access to sync_e only: it may not edit
        nodag["GET /failnotify/bulk/?dag_id=sync_e"] = 403
    return {
        "op": {
            **ok_get,
            **edit,
            "GET /failnotify/settings/": 200,
            "POST /failnotify/settings/": 302,
            "POST /failnotify/errors/outbox/{t}/send": 302,
            "POST /failnotify/errors/outbox/{f}/retry": 302,
        },
        "user": {**ok_get, **edit, **admin_only, **outbox},
        "viewer": {**ok_get, **no_edit, **admin_only, **outbox},
        "nodag": nodag,
    }


def test_authorization_matrix_403_without_rights_on_every_view_and_action(obs: dict[str, Any]) -> None:
    expected = _expected_matrix(obs["manager"])
    for name, row in obs["matrix"].items():
        normalised = {
            re.sub(
                r"outbox/\d+/send", "outbox/{t}/send", re.sub(r"outbox/-?\d+/retry", "outbox/{f}/retry", k)
            ): v
            for k, v in row.items()
        }
        assert normalised == expected[name], name


def test_forbidden_changes_changed_nothing(obs: dict[str, Any]) -> None:
    # Only "op" and "user" (DAG edit) could save; their post had the valid form's recipients.
    assert obs["after_matrix"]["sync_c_recipients"] == ["ops@example.com", "lead@example.com"]
    assert obs["after_matrix"]["schedule"] == "0 * * * *"  # set by "op" (admin level) only


def test_reader_sees_a_read_only_form_and_no_admin_actions(obs: dict[str, Any]) -> None:
    assert obs["viewer_form"] == {"readonly": True, "csrf": False, "disabled": True, "buttons": False}
    assert obs["viewer_no_admin_actions"]["send_now"] == 0 and obs["viewer_no_admin_actions"]["retry"] == 0
    assert obs["viewer_tabs"] == ["/failnotify/", "/failnotify/errors/"]  # no Settings tab


def test_user_without_dag_rights_must_choose_an_integration_in_error_management(obs: dict[str, Any]) -> None:
    assert obs["nodag_errors"]["status"] == 200
    assert obs["nodag_errors"]["must_choose"] and obs["nodag_errors"]["events"] == []


def test_child_process_is_fast(obs: dict[str, Any]) -> None:
    assert obs["child_seconds"] < 90


if __name__ == "__main__":  # the child process
    print("FAILNOTIFY-OBS " + json.dumps(_scenario(), default=str), flush=True)
