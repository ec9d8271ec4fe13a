"""Integrations (plugins/views/integrations.py): the DAG list with registration, server, sparkline."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest

from tests.views.conftest import Client, Page, record_failures, register_bulk, register_valid_form

URL = "/failnotify/"


def row(page: Page, dag_id: str) -> str:
    return page.between(f'data-dag-id="{dag_id}"', "</tr>")


def cells(chunk: str, name: str) -> list[str]:
    return re.findall(rf'<td class="failnotify-{name}">([^<]*)</td>', chunk)


@pytest.fixture
def listing(admin: Client, fn_store: Any, mail: Any) -> Page:
    """sync_a registered forward + backward (sync_b), sync_c by bulk, the others not registered."""
    register_valid_form(fn_store)
    register_bulk(fn_store, "sync_c")
    return admin.get(URL)


def test_a_registration_with_a_backward_dag_is_listed_with_both_directions(listing: Page) -> None:
    chunk = row(listing, "sync_a")
    assert "label-success" in chunk  # "Registered"
    assert cells(chunk, "server") == ["mail_test"] and cells(chunk, "directions") == ["forward, backward"]


def test_a_forward_only_registration_is_listed_with_its_server(listing: Page) -> None:
    chunk = row(listing, "sync_c")
    assert "label-success" in chunk
    assert cells(chunk, "server") == ["mail_test"] and cells(chunk, "directions") == ["forward"]


def test_an_unregistered_dag_is_listed_as_not_registered(listing: Page) -> None:
    chunk = row(listing, "sync_e")
    assert "label-success" not in chunk
    assert cells(chunk, "server") == [""] and cells(chunk, "directions") == [""]


def test_every_dag_has_a_checkbox_for_configure_selected(listing: Page) -> None:
    assert re.findall(r'name="dag_id" value="(sync_\w)"', listing.text) == list(
        ("sync_a", "sync_b", "sync_c", "sync_d", "sync_e")
    )
    assert 'id="failnotify-configure-selected"' in listing.text


def test_an_admin_sees_the_three_tabs(listing: Page) -> None:
    tabs = re.findall(r'<li role="presentation" class="[^"]*"><a href="([^"]+)">', listing.text)
    assert tabs == ["/failnotify/", "/failnotify/errors/", "/failnotify/settings/"]


@pytest.fixture
def failures_of_sync_d(fn_store: Any) -> Any:
    """sync_d registered with three failures in the last 14 days (one task, two runs)."""
    register_bulk(fn_store, "sync_d")
    return record_failures(fn_store, datetime.now(timezone.utc), only="sync_d")


def test_failures_per_day_are_counted_over_14_days(fn_store: Any, failures_of_sync_d: Any) -> None:
    counts = fn_store.failure_counts_by_day(["sync_d"], days=14)["sync_d"]
    assert len(counts) == 14 and sum(counts) == 3


def test_a_registered_dag_shows_a_sparkline_of_its_recent_failures(
    admin: Client, failures_of_sync_d: Any
) -> None:
    chunk = row(admin.get(URL), "sync_d")
    assert '<svg class="failnotify-sparkline"' in chunk and chunk.count("<rect ") == 14
    title = re.findall(r"<title>([^<]*)</title>", chunk)[0]
    assert title.startswith("2 failed runs in the last 14 days")
    assert "0 entity failures" in title  # the one task failure will be retried: not an entity failure


def test_the_app_builds_with_the_plugin_in_seconds(views_app: Any) -> None:
    assert views_app.build_seconds < 15


def test_a_missing_connection_and_a_dag_airflow_does_not_know_are_flagged(
    admin: Client, fn_store: Any, mail: Any
) -> None:
    from airflow_failnotify.service.health import clear_cache

    register_bulk(fn_store, "sync_c", smtp_conn_id="no_such_smtp")
    register_bulk(fn_store, "sync_deleted")
    clear_cache()
    page = admin.get(URL)
    assert "Registered, flagged" in row(page, "sync_c")
    flagged = page.between('id="failnotify-flagged"', "</table>")
    assert 'data-flag="connection_missing" data-integration="sync_c"' in flagged
    assert 'data-flag="dag_missing" data-integration="sync_deleted"' in flagged
    assert "DAG sync_deleted not found in Airflow" in flagged
    banner = page.between('id="failnotify-health"', "</div>")
    assert "registrations: 2 flagged" in banner


def test_the_charts_figure_is_the_number_of_failed_runs(admin: Client, fn_store: Any) -> None:
    from airflow_failnotify.core.model import EventKind
    from airflow_failnotify.store import EventRecord

    register_bulk(fn_store, "sync_d")
    now = datetime.now(timezone.utc)
    records = []
    for run in ("r1", "r2", "r3"):  # three failed runs, each with two final task failures and a retried try
        records.append(
            EventRecord(
                kind=EventKind.RUN_FAILED,
                dag_id="sync_d",
                run_id=run,
                occurred_at=now,
                source="scheduler",
                error_message="task_failure",
            )
        )
        for task, final in (("extract", True), ("load", True), ("load", False)):
            records.append(
                EventRecord(
                    kind=EventKind.TASK_FAILED,
                    dag_id="sync_d",
                    run_id=run,
                    occurred_at=now,
                    source="task",
                    task_id=task,
                    try_number=1 if not final else 2,
                    max_tries=1,
                    is_final=final,
                    error_message="boom",
                )
            )
    fn_store.record_events(records)
    chunk = row(admin.get(URL), "sync_d")
    assert re.findall(r'<span class="failnotify-spark-total" title="failed runs">(\d+)</span>', chunk) == [
        "3"
    ]
    assert "6 entity failures" in chunk


def test_a_backward_dag_is_listed_as_covered_with_a_link_to_its_integration(listing: Page) -> None:
    chunk = row(listing, "sync_b")
    assert "Covered" in chunk and "Not registered" not in chunk
    assert re.search(r'backward of <a href="[^"]*/configure/sync_a">sync_a</a>', chunk)
    assert cells(chunk, "directions") == ["backward"] and cells(chunk, "server") == ["mail_test"]


def test_both_servers_are_shown_when_the_directions_differ(admin: Client, fn_store: Any) -> None:
    from airflow_failnotify.core.config import parse_registration
    from airflow_failnotify.plugins import forms
    from tests.views.conftest import VALID_FORM

    form = {**VALID_FORM, "b_smtp_conn_id": "mail_other"}
    fn_store.save_registration(
        parse_registration(forms.registration_dict(forms.values_from_post("sync_a", form)))
    )
    chunk = row(admin.get(URL), "sync_a")
    assert cells(chunk, "server") == ["mail_test (forward), mail_other (backward)"]


def test_the_last_notification_sent_is_listed(admin: Client, fn_store: Any, mail: Any) -> None:
    from airflow_failnotify.service.passes import run_notification_pass

    register_bulk(fn_store, "sync_d", smtp_conn_id="mail_test")
    assert cells(row(admin.get(URL), "sync_d"), "last-sent") == ["never"]
    record_failures(fn_store, datetime.now(timezone.utc), only="sync_d")
    run_notification_pass(trigger="manual", dag_status=lambda ids: {})
    (sent,) = cells(row(admin.get(URL), "sync_d"), "last-sent")
    assert sent.endswith(" UTC") and sent.startswith(str(datetime.now(timezone.utc).year))
