"""Configure selected (plugins/views/bulk.py): preview, refusals, and only new integrations configured."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.views.conftest import BULK_FORM, Client, Page, register_valid_form

URL = "/failnotify/bulk/"
SELECTED = ["sync_c", "sync_d", "sync_a", "sync_b"]
SKIPPED = [("sync_a", "already configured"), ("sync_b", "already the backward DAG of sync_a")]


@pytest.fixture
def sync_a_registered(fn_store: Any) -> Any:
    """sync_a registered with backward DAG sync_b (what a valid Configure save stores)."""
    return register_valid_form(fn_store)


def post_bulk(client: Client, **changes: Any) -> Page:
    return client.post(URL, {"dag_id": SELECTED, **BULK_FORM, **changes})


def test_bulk_form_previews_who_will_be_configured(admin: Client, sync_a_registered: Any) -> None:
    page = admin.get(URL + "?" + "&".join(f"dag_id={d}" for d in SELECTED))
    assert page.status == 200
    assert re.findall(r"<li>(sync_\w)</li>", page.between('id="failnotify-bulk-ok"', "</ul>")) == [
        "sync_c",
        "sync_d",
    ]


def test_bulk_form_previews_who_is_skipped_and_why(admin: Client, sync_a_registered: Any) -> None:
    page = admin.get(URL + "?" + "&".join(f"dag_id={d}" for d in SELECTED))
    skipped = re.findall(r"<li>(sync_\w): ([^<]*)</li>", page.between('id="failnotify-bulk-skip"', "</ul>"))
    assert skipped == SKIPPED


def test_bulk_with_a_bad_recipient_is_refused_at_the_field_and_stores_nothing(
    admin: Client, sync_a_registered: Any, fn_store: Any
) -> None:
    page = post_bulk(admin, recipients="team@")
    assert page.status == 422 and "recipients" in page.field_errors()
    assert fn_store.get_registration("sync_c") is None


def test_bulk_without_a_server_is_refused_at_the_server_field(admin: Client, sync_a_registered: Any) -> None:
    page = post_bulk(admin, smtp_conn_id="")
    assert page.status == 422 and sorted(page.field_errors()) == ["smtp_conn_id"]


def test_bulk_without_a_selection_is_refused(admin: Client) -> None:
    page = admin.post(URL, {**BULK_FORM, "dag_id": []})
    assert page.status == 422 and "Select one or more" in page.text


@pytest.fixture
def bulk_result(admin: Client, sync_a_registered: Any) -> Page:
    return post_bulk(admin)


def test_bulk_configures_only_the_new_integrations(bulk_result: Page) -> None:
    assert bulk_result.status == 200
    assert re.findall(r'<li data-dag-id="(sync_\w)"><a', bulk_result.text) == ["sync_c", "sync_d"]


def test_bulk_result_says_why_the_others_were_skipped(bulk_result: Page) -> None:
    found = re.findall(
        r'<li data-dag-id="(sync_\w)">\1: <span class="failnotify-why">([^<]*)<', bulk_result.text
    )
    assert found == SKIPPED


def test_bulk_stores_the_common_settings_with_the_seed_defaults(bulk_result: Page, fn_store: Any) -> None:
    stored = fn_store.get_registration("sync_c")
    assert {
        "server": stored.forward.smtp_conn_id,
        "recipients": list(stored.forward.recipients),
        "prefix": stored.forward.subject_prefix,
        "global": stored.forward.global_.enabled,
        "processing": stored.forward.processing.enabled,
        "same": stored.same_for_backward,
    } == {
        "server": "mail_test",
        "recipients": ["team@example.com"],
        "prefix": "[B]",
        "global": True,
        "processing": True,
        "same": True,
    }


def test_bulk_leaves_an_existing_registration_unchanged(
    admin: Client, sync_a_registered: Any, fn_store: Any
) -> None:
    before = fn_store.get_registration("sync_a")
    post_bulk(admin)
    assert fn_store.get_registration("sync_a") == before
