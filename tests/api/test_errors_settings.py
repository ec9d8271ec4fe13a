"""Error Management, Send now / Retry, Settings and the detailed health over the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.api.conftest import ApiClient
from tests.views import test_errors as views_errors
from tests.views.conftest import Mail, record_failures, register_bulk, register_valid_form

Api = Callable[[str | None], ApiClient]
NOW = views_errors.NOW
failed_notification = views_errors.failed_notification  # the views' fixture: a failed notification


@pytest.fixture
def failures(fn_store: Any) -> None:
    register_valid_form(fn_store)
    register_bulk(fn_store, "sync_c")
    register_bulk(fn_store, "sync_d")
    record_failures(fn_store, NOW)


def test_errors_are_listed_and_filtered(api: Api, failures: None) -> None:
    client = api("admin")
    everything = client.get("/errors").json()
    assert everything["events_total"] == 4 and everything["errors_total"] == 2
    only_d = client.get("/errors", params={"integration": "sync_d", "type": "integration"}).json()
    assert {e["dag_id"] for e in only_d["events"]} == {"sync_d"} and only_d["errors"] == []
    other = client.get("/errors", params={"type": "other", "category": "store"}).json()
    assert other["events"] == [] and [e["category"] for e in other["errors"]] == ["store"]
    since = (NOW.replace(microsecond=0)).strftime("%Y-%m-%dT%H:%M")
    recent = client.get("/errors", params={"since": since}).json()
    assert recent["events_total"] == 0


def test_a_bad_filter_is_refused_at_its_query_argument(api: Api) -> None:
    response = api("admin").get("/errors", params={"since": "yesterday", "ostate": "bogus"})
    assert response.status_code == 422
    assert {i["path"] for i in response.json()["detail"]} == {"since", "ostate"}


def test_a_user_without_every_dag_must_choose_an_integration(api: Api, failures: None) -> None:
    body = api("nodag").get("/errors").json()
    assert body["must_choose"] and body["events"] == []
    assert api("nodag").get("/errors", params={"integration": "sync_d"}).status_code == 403


def test_send_now_sends_a_pending_notification_once(
    api: Api, failures: None, fn_store: Any, mail: Mail
) -> None:
    pending = api("admin").get("/errors", params={"ostate": "pending"}).json()["outbox"]
    target = next(o for o in pending if o["smtp_conn_id"] == "mail_test")
    before = len(mail.server.messages)
    response = api("admin").post(f"/outbox/{target['id']}/send")
    assert response.status_code == 200 and response.json()["sent"], response.text
    mail.server.wait_for(before + 1)
    again = api("admin").post(f"/outbox/{target['id']}/send")
    assert again.status_code == 409 and "never sent again" in again.json()["detail"]
    assert api("admin").post("/outbox/999999/send").status_code == 404


def test_retry_sends_a_failed_notification(
    api: Api,
    failed_notification: int,
    fn_store: Any,
    mail: Mail,
) -> None:
    mail.server.refuse_recipients.clear()
    before = len(mail.server.messages)
    response = api("admin").post(f"/outbox/{failed_notification}/retry")
    assert response.status_code == 200 and response.json()["state"] == "sent", response.text
    assert len(mail.server.wait_for(before + 1)) == before + 1
    assert api("admin").post(f"/outbox/{failed_notification}/retry").status_code == 409


def test_settings_change_the_schedule(api: Api, fn_store: Any) -> None:
    from airflow_failnotify.core import schedule

    shown = api("admin").get("/settings").json()
    assert shown["effective"] == schedule.DEFAULT_SCHEDULE and shown["next_run"]
    changed = api("admin").put("/settings", json={"schedule": "0 * * * *"})
    assert changed.status_code == 200 and changed.json()["effective"] == "0 * * * *"
    assert fn_store.get_setting(schedule.SETTING_KEY) == "0 * * * *"
    refused = api("admin").put("/settings", json={"schedule": "* * * * *"})
    assert refused.status_code == 422 and refused.json()["detail"][0]["path"] == "schedule"
    assert fn_store.get_setting(schedule.SETTING_KEY) == "0 * * * *"


def test_the_detailed_health_is_served_to_admins(api: Api, fn_store: Any) -> None:
    body = api("admin").get("/health").json()
    assert body["status"] in ("ok", "warn", "bad") and body["checks"]


def test_the_session_says_who_and_what(api: Api) -> None:
    assert api("admin").get("/session").json()["is_admin"] is True
    viewer = api("viewer").get("/session").json()
    assert viewer["username"] == "viewer" and viewer["is_admin"] is False
