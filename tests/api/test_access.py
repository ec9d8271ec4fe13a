"""Every route of the API's OpenAPI schema refuses anonymous, expired, forged and CSRF-less requests,
and a Viewer changes nothing. The routes come from the schema, so a new route cannot be forgotten."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.api.conftest import VALID_BODY, ApiClient
from tests.views.conftest import register_bulk, register_valid_form

# Values for the path parameters of every route.
PATH_VALUES = {"dag_id": "sync_a", "outbox_id": "1"}
WRITE_METHODS = {"post", "put", "patch", "delete"}
# Bodies good enough to pass validation, so a refusal can only come from authentication/authorization.
BODIES = {
    ("put", "/integrations/{dag_id}"): VALID_BODY,
    ("post", "/integrations/{dag_id}/test"): VALID_BODY,
    ("post", "/bulk"): {"dag_ids": ["sync_c"], "smtp_conn_id": "mail_test", "recipients": "t@example.com"},
    ("put", "/settings"): {"schedule": "0 * * * *"},
}
EXPECTED_ROUTES = {
    ("get", "/session"),
    ("get", "/integrations"),
    ("get", "/integrations/{dag_id}"),
    ("get", "/integrations/{dag_id}/activity"),
    ("put", "/integrations/{dag_id}"),
    ("post", "/integrations/{dag_id}/test"),
    ("delete", "/integrations/{dag_id}"),
    ("post", "/bulk"),
    ("get", "/errors"),
    ("post", "/outbox/{outbox_id}/send"),
    ("post", "/outbox/{outbox_id}/retry"),
    ("get", "/settings"),
    ("put", "/settings"),
    ("get", "/health"),
}


def _routes() -> list[tuple[str, str]]:
    from airflow_failnotify.api.web import create_app

    schema = create_app().openapi()
    return sorted((method, path) for path, item in schema["paths"].items() for method in item)


ROUTES = _routes()
WRITES = [r for r in ROUTES if r[0] in WRITE_METHODS]


def _call(client: ApiClient, method: str, path: str, **kwargs: Any) -> Any:
    url = path.format(**PATH_VALUES)
    body = BODIES.get((method, path))
    return client.request(method.upper(), url, json=body, **kwargs)


def _snapshot(store: Any) -> tuple[Any, ...]:
    from airflow_failnotify.core import schedule

    outbox, _ = store.list_outbox(limit=1000)
    return (
        sorted((r.integration, repr(r)) for r in store.list_registrations()),
        sorted((o.id, o.state.value, o.attempts) for o in outbox),
        store.get_setting(schedule.SETTING_KEY),
    )


def test_the_schema_lists_every_route() -> None:
    assert set(ROUTES) == EXPECTED_ROUTES


def test_the_schema_itself_needs_a_login(api: Callable[[str | None], ApiClient]) -> None:
    assert api(None).get("/openapi.json").status_code == 401
    schema = api("viewer").get("/openapi.json")
    assert schema.status_code == 200
    assert {(m, p) for p, item in schema.json()["paths"].items() for m in item} == EXPECTED_ROUTES


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_anonymous_is_refused(api: Callable[[str | None], ApiClient], method: str, path: str) -> None:
    response = _call(api(None), method, path)
    assert response.status_code == 401, response.text


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_an_expired_token_is_refused(
    api: Callable[[str | None], ApiClient], expired_token: str, method: str, path: str
) -> None:
    response = _call(api(None), method, path, headers={"Authorization": f"Bearer {expired_token}"})
    assert response.status_code == 401, response.text
    assert response.json()["detail"] == "Token Expired"


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_forged_token_is_refused(
    api: Callable[[str | None], ApiClient], forged_token: str, method: str, path: str
) -> None:
    response = _call(api(None), method, path, headers={"Authorization": f"Bearer {forged_token}"})
    assert response.status_code == 403, response.text
    assert response.json()["detail"] == "Invalid JWT token"


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_an_expired_cookie_is_refused(
    cookie_api: Callable[[str], ApiClient], expired_token: str, method: str, path: str
) -> None:
    client = cookie_api("admin")
    client.http.cookies.set("_token", expired_token)
    assert _call(client, method, path).status_code == 401


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_a_viewer_changes_nothing(
    api: Callable[[str | None], ApiClient], fn_store: Any, mail: Any, method: str, path: str
) -> None:
    register_valid_form(fn_store)
    register_bulk(fn_store, "sync_d")
    before = _snapshot(fn_store)
    response = _call(api("viewer"), method, path)
    assert response.status_code == 403, response.text
    assert _snapshot(fn_store) == before


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_a_cookie_write_without_the_csrf_header_is_refused(
    cookie_api: Callable[[str], ApiClient], fn_store: Any, mail: Any, method: str, path: str
) -> None:
    register_valid_form(fn_store)
    before = _snapshot(fn_store)
    response = _call(cookie_api("admin"), method, path)
    assert response.status_code == 403, response.text
    assert "CSRF" in response.json()["detail"]
    assert _snapshot(fn_store) == before


def test_a_cookie_write_with_the_csrf_header_from_the_session_passes(
    cookie_api: Callable[[str], ApiClient], fn_store: Any, mail: Any
) -> None:
    client = cookie_api("admin")
    session = client.get("/session").json()
    headers = {session["csrf_header"]: session["csrf_token"]}
    response = client.put("/integrations/sync_a", json=VALID_BODY, headers=headers)
    assert response.status_code == 200, response.text
    assert fn_store.get_registration("sync_a") is not None


def test_a_cookie_write_from_another_origin_is_refused(
    cookie_api: Callable[[str], ApiClient], fn_store: Any
) -> None:
    client = cookie_api("admin")
    session = client.get("/session").json()
    headers = {session["csrf_header"]: session["csrf_token"], "Origin": "http://evil.example"}
    assert client.put("/integrations/sync_a", json=VALID_BODY, headers=headers).status_code == 403
    assert fn_store.get_registration("sync_a") is None


def test_another_users_csrf_token_does_not_pass(
    cookie_api: Callable[[str], ApiClient], fn_store: Any
) -> None:
    other = cookie_api("op").get("/session").json()
    client = cookie_api("admin")
    response = client.put(
        "/integrations/sync_a", json=VALID_BODY, headers={other["csrf_header"]: other["csrf_token"]}
    )
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["/settings", "/health"])
def test_admin_pages_are_refused_to_a_user(api: Callable[[str | None], ApiClient], path: str) -> None:
    assert api("user").get(path).status_code == 403
    assert api("admin").get(path).status_code == 200


def test_reading_an_integration_needs_dag_read(api: Callable[[str | None], ApiClient]) -> None:
    # nodag reads sync_e only (FAB: a one-DAG role; Simple: no role, nothing).
    assert api("nodag").get("/integrations/sync_a").status_code == 403
    assert api("nodag").get("/integrations/sync_a/activity").status_code == 403
    assert api("viewer").get("/integrations/sync_a").status_code == 200
