"""Integrations and Configure over the API: the same validation, field paths and store as the forms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.api.conftest import VALID_BODY, ApiClient
from tests.views.conftest import Mail, register_bulk, register_valid_form

Api = Callable[[str | None], ApiClient]


def _paths(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {item["path"]: item["msg"] for item in response.json()["detail"]}


def test_the_list_shows_every_readable_dag_with_its_status(api: Api, fn_store: Any) -> None:
    register_valid_form(fn_store)  # sync_a, backward sync_b
    body = api("viewer").get("/integrations").json()
    rows = {r["dag_id"]: r for r in body["rows"]}
    assert sorted(rows) == ["sync_a", "sync_b", "sync_c", "sync_d", "sync_e"]
    assert rows["sync_a"]["registered"] and rows["sync_a"]["directions"] == ["forward", "backward"]
    assert rows["sync_b"]["backward_of"] == "sync_a" and not rows["sync_b"]["registered"]
    assert rows["sync_a"]["email_server"] == "mail_test"
    assert rows["sync_a"]["dag_url"] == "/dags/sync_a"
    assert not rows["sync_a"]["can_edit"]  # a Viewer
    assert api("admin").get("/integrations").json()["rows"][0]["can_edit"]


def test_the_list_searches_and_pages(api: Api) -> None:
    body = api("admin").get("/integrations", params={"q": "sync_c"}).json()
    assert [r["dag_id"] for r in body["rows"]] == ["sync_c"] and body["total"] == 1
    page = api("admin").get("/integrations", params={"page": 99, "size": 25}).json()
    assert page["page"] == page["pages"] == 1


def test_a_new_integration_gets_the_seed_defaults(api: Api) -> None:
    body = api("admin").get("/integrations/sync_c").json()
    assert body["registered"] is False and body["can_edit"] is True
    reg = body["registration"]
    assert reg["include_error_trace"] is True and reg["global"]["enabled"] and reg["processing"]["enabled"]
    assert "mail_test" in [s["conn_id"] for s in body["email_servers"]] or body["email_servers"] is not None
    assert "sync_c" not in body["backward_choices"]


def test_bad_input_is_refused_at_its_field(api: Api, fn_store: Any) -> None:
    bad = {
        **VALID_BODY,
        "recipients": "not-an-address",
        "global": {**VALID_BODY["global"], "failure_count_threshold": 0},
        "backward": {**VALID_BODY["backward"], "recipients": ""},
    }
    errors = _paths(api("admin").put("/integrations/sync_a", json=bad))
    assert {"recipients", "global.failure_count_threshold", "backward.recipients"} <= set(errors)
    assert fn_store.get_registration("sync_a") is None


def test_a_backward_dag_already_used_is_refused_at_the_field(api: Api, fn_store: Any) -> None:
    register_bulk(fn_store, "sync_c")
    errors = _paths(
        api("admin").put("/integrations/sync_a", json={**VALID_BODY, "backward_integration": "sync_c"})
    )
    assert "backward_integration" in errors


def test_save_then_update(api: Api, fn_store: Any) -> None:
    first = api("admin").put("/integrations/sync_a", json=VALID_BODY)
    assert first.status_code == 200 and first.json()["created"] is True
    changed = {**VALID_BODY, "subject_prefix": "[Changed]"}
    second = api("admin").put("/integrations/sync_a", json=changed)
    assert second.status_code == 200 and second.json()["created"] is False
    stored = fn_store.get_registration("sync_a")
    assert stored.forward.subject_prefix == "[Changed]" and stored.backward_integration == "sync_b"
    got = api("viewer").get("/integrations/sync_a").json()
    assert got["registered"] and got["registration"]["subject_prefix"] == "[Changed]"
    assert got["registration"]["backward"]["subject_prefix"] == "[Back]"


def test_test_mail_arrives_and_nothing_is_saved(api: Api, fn_store: Any, mail: Mail) -> None:
    before = len(mail.server.messages)
    response = api("admin").post("/integrations/sync_a/test", json=VALID_BODY)
    assert response.status_code == 200 and response.json()["ok"], response.text
    received = mail.server.wait_for(before + 2)[before:]
    # forward (to + cc) and backward (its own recipients; cc inherited from forward)
    assert {r for m in received for r in m.rcpt_tos} == {
        "ops@example.com",
        "lead@example.com",
        "audit@example.com",
        "back@example.com",
    }
    assert fn_store.get_registration("sync_a") is None


def test_a_test_to_a_server_that_is_down_says_so(api: Api, mail: Mail) -> None:
    body = {
        **VALID_BODY,
        "smtp_conn_id": "mail_down",
        "backward_integration": None,
        "same_for_backward": True,
    }
    body.pop("backward")
    response = api("admin").post("/integrations/sync_a/test", json=body)
    assert response.status_code == 200 and response.json()["ok"] is False


def test_unregister(api: Api, fn_store: Any) -> None:
    register_valid_form(fn_store)
    assert api("admin").delete("/integrations/sync_a").status_code == 200
    assert fn_store.get_registration("sync_a") is None
    assert api("admin").delete("/integrations/sync_a").status_code == 404


def test_bulk_configures_only_new_integrations(api: Api, fn_store: Any) -> None:
    register_bulk(fn_store, "sync_d")
    body = {
        "dag_ids": ["sync_c", "sync_d", "sync_e"],
        "smtp_conn_id": "mail_test",
        "recipients": "team@example.com",
        "subject_prefix": "[B]",
    }
    response = api("admin").post("/bulk", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "configured": ["sync_c", "sync_e"],
        "skipped": {"sync_d": "already configured"},
    }


def test_bulk_refuses_bad_shared_fields_at_the_field(api: Api, fn_store: Any) -> None:
    errors = _paths(api("admin").post("/bulk", json={"dag_ids": [], "smtp_conn_id": "", "recipients": "x"}))
    assert {"dag_ids", "recipients", "smtp_conn_id"} <= set(errors)
    assert fn_store.list_registrations() == []


def test_the_dag_tab_activity_lists_that_dags_notifications_and_errors(api: Api, fn_store: Any) -> None:
    from datetime import datetime, timezone

    from tests.views.conftest import record_failures

    register_bulk(fn_store, "sync_c")
    register_bulk(fn_store, "sync_d")
    record_failures(fn_store, datetime.now(timezone.utc))
    body = api("viewer").get("/integrations/sync_d/activity").json()
    assert body["events_total"] == 3 and {e["dag_id"] for e in body["events"]} == {"sync_d"}
    assert body["outbox"] and {o["integration"] for o in body["outbox"]} == {"sync_d"}
    task = next(e for e in body["events"] if e["task_id"])
    assert task["task_url"] == "/dags/sync_d/runs/new_run/tasks/load"
