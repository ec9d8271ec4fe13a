"""Error Management (plugins/views/errors.py): both error tables, filters, the outbox, Send now and Retry."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.views.conftest import Client, Mail, Page, record_failures, register_bulk, register_valid_form

URL = "/failnotify/errors/"
NOW = datetime.now(timezone.utc)
SINCE = (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")


def events(page: Page) -> list[str]:
    return re.findall(r'<tr data-event-id="\d+" data-integration="(sync_\w)">', page.text)


def event_runs(page: Page) -> list[str]:
    return re.findall(r"<td><small>(\w+)</small></td>", page.text)


def other_errors(page: Page) -> list[str]:
    return re.findall(r'<tr data-error-id="\d+" data-category="(\w+)">', page.text)


def outbox(page: Page) -> list[tuple[str, str]]:
    return re.findall(r'<tr data-outbox-id="(\d+)" data-state="(\w+)">', page.text)


@pytest.fixture
def failures(fn_store: Any) -> None:
    """sync_a (forward + backward), sync_c and sync_d registered; their failures, two other errors."""
    register_valid_form(fn_store)
    register_bulk(fn_store, "sync_c")
    register_bulk(fn_store, "sync_d")
    record_failures(fn_store, NOW)


def errors_page(client: Client, query: str = "") -> Page:
    return client.get(f"{URL}?{query}")


# ----------------------------------------------------------------------------------------------- lists


def test_integration_errors_are_listed_newest_first(admin: Client, failures: None) -> None:
    page = errors_page(admin)
    assert page.status == 200
    assert events(page) == ["sync_c", "sync_d", "sync_d", "sync_d"]
    assert event_runs(page) == ["c_run", "new_run", "new_run", "old_run"]


def test_other_errors_are_listed_newest_first(admin: Client, failures: None) -> None:
    assert other_errors(errors_page(admin)) == ["store", "config"]


def test_each_error_has_an_expandable_detail_with_everything_escaped(admin: Client, failures: None) -> None:
    page = errors_page(admin)
    assert page.text.count("<details") >= 6
    assert "&lt;b&gt;trace&lt;/b&gt;" in page.text
    assert "<b>trace</b>" not in page.text and "<i>briefly</i>" not in page.text


# ----------------------------------------------------------------------------------------------- filters


def test_type_integration_shows_only_the_integration_errors(admin: Client, failures: None) -> None:
    page = errors_page(admin, "type=integration")
    assert 'id="failnotify-events"' in page.text and 'id="failnotify-other-errors"' not in page.text


def test_type_other_shows_only_the_other_errors(admin: Client, failures: None) -> None:
    page = errors_page(admin, "type=other")
    assert 'id="failnotify-other-errors"' in page.text and 'id="failnotify-events"' not in page.text


def test_category_filters_the_other_errors(admin: Client, failures: None) -> None:
    assert other_errors(errors_page(admin, "type=other&category=store")) == ["store"]


def test_integration_filter_shows_that_integrations_errors_only(admin: Client, failures: None) -> None:
    page = errors_page(admin, "integration=sync_c")
    assert events(page) == ["sync_c"] and other_errors(page) == []


def test_since_filter_keeps_newer_errors(admin: Client, failures: None) -> None:
    page = errors_page(admin, f"since={SINCE}")
    assert event_runs(page) == ["c_run", "new_run", "new_run"] and other_errors(page) == ["store"]


def test_until_filter_keeps_older_errors(admin: Client, failures: None) -> None:
    page = errors_page(admin, f"until={SINCE}")
    assert event_runs(page) == ["old_run"] and other_errors(page) == ["config"]


def test_a_bad_date_is_reported_at_its_filter_and_ignored(admin: Client, failures: None) -> None:
    page = errors_page(admin, "since=yesterday")
    assert page.status == 200 and "since" in page.field_errors() and len(events(page)) == 4


def test_pending_notifications_are_listed_with_send_now(admin: Client, failures: None) -> None:
    page = errors_page(admin, "ostate=pending")
    listed = outbox(page)
    assert listed and all(state == "pending" for _, state in listed)
    assert page.text.count("failnotify-send-now") == len(listed) and page.text.count("failnotify-retry") == 0


# ----------------------------------------------------------------------------------------------- Send now


@pytest.fixture
def pending_of_sync_c(fn_store: Any, failures: None) -> int:
    from airflow_failnotify.core.model import OutboxState

    pending, _ = fn_store.list_outbox(state=OutboxState.PENDING, integration="sync_c")
    return int(pending[0].id)


@pytest.fixture
def sent_now(admin: Client, mail: Mail, pending_of_sync_c: int) -> tuple[Page, list[Any]]:
    page = admin.post(f"{URL}outbox/{pending_of_sync_c}/send", {"ostate": "pending"})
    return page, mail.server.wait_for(1)


def test_send_now_goes_back_to_error_management_with_the_filters(sent_now: tuple[Page, Any]) -> None:
    page, _mails = sent_now
    assert page.status == 302 and "/failnotify/errors/" in page.location and "ostate=pending" in page.location


def test_send_now_sends_the_notification_through_the_server(
    sent_now: tuple[Page, list[Any]], fn_store: Any, pending_of_sync_c: int
) -> None:
    _page, mails = sent_now
    assert [sorted(m.rcpt_tos) for m in mails] == [["team@example.com"]]
    assert fn_store.get_outbox_item(pending_of_sync_c).state.value == "sent"


def test_send_now_flashes_that_it_was_sent(admin: Client, sent_now: tuple[Page, Any]) -> None:
    assert "was sent" in errors_page(admin).text


@pytest.mark.parametrize("action", ["send", "retry"])
def test_a_sent_notification_is_never_sent_again(
    admin: Client, mail: Mail, sent_now: tuple[Page, Any], pending_of_sync_c: int, fn_store: Any, action: str
) -> None:
    page = admin.post(f"{URL}outbox/{pending_of_sync_c}/{action}")
    assert page.status == 302
    assert len(mail.server.messages) == 1
    assert fn_store.get_outbox_item(pending_of_sync_c).state.value == "sent"
    assert "never sent again" in errors_page(admin).text


def test_send_now_of_an_unknown_notification_goes_back(admin: Client) -> None:
    assert admin.post(f"{URL}outbox/99999/send").status == 302


# ----------------------------------------------------------------------------------------------- Retry


@pytest.fixture
def failed_notification(fn_store: Any, mail: Mail) -> int:
    """sync_e's notification to a recipient the server refuses (one attempt): failed."""
    from airflow_failnotify.core.config import parse_registration
    from airflow_failnotify.core.model import EventKind, OutboxState
    from airflow_failnotify.service.passes import run_notification_pass
    from airflow_failnotify.store import EventRecord

    mail.server.refuse({"bounce@example.com": "550 5.1.1 no such user"})
    fn_store.save_registration(
        parse_registration(
            {"integration": "sync_e", "smtp_conn_id": "mail_test", "recipients": "bounce@example.com"}
        )
    )
    fn_store.record_events(
        [
            EventRecord(
                kind=EventKind.RUN_FAILED,
                dag_id="sync_e",
                run_id="e_run",
                occurred_at=NOW,
                source="scheduler",
                error_message="e failed",
            )
        ]
    )
    run_notification_pass(trigger="manual", dag_status=lambda ids: {})
    failed, _ = fn_store.list_outbox(state=OutboxState.FAILED, integration="sync_e")
    assert len(failed) == 1
    return int(failed[0].id)


def test_failed_notifications_are_listed_with_retry(admin: Client, failed_notification: int) -> None:
    page = errors_page(admin, "ostate=failed")
    assert page.text.count("failnotify-retry") == 1 and page.text.count("failnotify-send-now") == 0


def test_retry_requeues_a_failed_notification_and_sends_it(
    admin: Client, mail: Mail, failed_notification: int, fn_store: Any
) -> None:
    mail.server.refuse_recipients.clear()  # the recipient is fixed on the server side
    before = len(mail.server.messages)
    page = admin.post(f"{URL}outbox/{failed_notification}/retry")
    assert page.status == 302
    assert [sorted(m.rcpt_tos) for m in mail.server.wait_for(before + 1)[before:]] == [["bounce@example.com"]]
    assert fn_store.get_outbox_item(failed_notification).state.value == "sent"


# ----------------------------------------------------------------------------------------------- readers


def test_a_reader_sees_no_send_now_or_retry(login: Any, failures: None) -> None:
    page = errors_page(login("viewer"))
    assert page.text.count("failnotify-send-now") == 0 and page.text.count("failnotify-retry") == 0


def test_a_user_without_dag_rights_must_choose_an_integration(login: Any, failures: None) -> None:
    page = errors_page(login("nodag"))
    assert page.status == 200
    assert 'id="failnotify-choose"' in page.text and events(page) == []


# ----------------------------------------------------------------------------------------------- what failed


def test_the_try_count_reads_as_in_the_mail(admin: Client, fn_store: Any, failures: None) -> None:
    from airflow_failnotify.core.text import try_label

    (task,) = [e for e in fn_store.list_events(integration="sync_d")[0] if e.task_id == "load"]
    assert try_label(task) == "try 1 of 4"  # what the mail prints: max_tries 3 retries = 4 tries
    chunk = errors_page(admin).between(f'<tr data-event-id="{task.id}"', "</tr>")
    assert '<small class="failnotify-try">try 1 of 4, will be retried</small>' in chunk


def test_a_job_row_lists_its_failed_tasks_with_error_and_log_link(admin: Client, fn_store: Any) -> None:
    from airflow_failnotify.core.model import EventKind
    from airflow_failnotify.store import EventRecord

    register_bulk(fn_store, "sync_d")
    fn_store.record_events(
        [
            EventRecord(
                kind=EventKind.TASK_FAILED,
                dag_id="sync_d",
                run_id="r9",
                occurred_at=NOW,
                source="task",
                task_id="push",
                map_index=2,
                entity="CUST-7",
                try_number=2,
                max_tries=1,
                is_final=True,
                error_message="ValueError: CUST-7 rejected\nTraceback follows",
            ),
            EventRecord(
                kind=EventKind.RUN_FAILED,
                dag_id="sync_d",
                run_id="r9",
                occurred_at=NOW,
                source="scheduler",
                error_message="task_failure",
            ),
            EventRecord(
                kind=EventKind.RUN_FAILED,
                dag_id="sync_d",
                run_id="r10",
                occurred_at=NOW,
                source="scheduler",
                error_message="timed out",
            ),
        ]
    )
    page = errors_page(admin)
    rows = {run: page.between(f"<td><small>{run}</small></td>", "</tr>") for run in ("r9", "r10")}
    job = page.text.split('data-run-tasks="1"', 1)[1].split("</div>", 1)[0]
    assert "<code>push[CUST-7]</code> (try 2 of 2): ValueError: CUST-7 rejected" in job
    assert 'href="/dags/sync_d/runs/r9/tasks/push/mapped/2"' in job
    assert "Traceback follows" not in job
    assert (
        'data-run-tasks="0"' in page.text
        and "no task failed (e.g. a run timeout or a manual mark)" in page.text
    )
    assert rows  # both runs are listed
