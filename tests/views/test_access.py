"""Who may do what on every view and action (plugins/views/*, through plugins/auth.py), per auth manager.

One test per (auth manager, user, request). The store holds sync_c registered (so its Unregister page
exists); outbox ids need not exist: an admin-level user is answered with a redirect and a message, the
others are refused before the id is looked up.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.views.conftest import VALID_FORM, Client, ViewsApp, register_bulk

GETS = [
    "/failnotify/",
    "/failnotify/configure/sync_c",
    "/failnotify/configure/sync_c/unregister",
    "/failnotify/bulk/?dag_id=sync_e",
    "/failnotify/errors/",
    "/failnotify/settings/",
]
POSTS = [
    "/failnotify/configure/sync_c",
    "/failnotify/configure/sync_c/unregister",
    "/failnotify/bulk/",
    "/failnotify/errors/outbox/1/send",
    "/failnotify/errors/outbox/2/retry",
    "/failnotify/settings/",
]
# What every user posts: a valid single-direction form, a bulk selection and a schedule.
POST_DATA = {
    **VALID_FORM,
    "backward_integration": "",
    "same_for_backward": "on",
    "dag_id": "sync_e",
    "schedule": "0 * * * *",
}

OK_GET = {
    "GET /failnotify/": 200,
    "GET /failnotify/configure/sync_c": 200,
    "GET /failnotify/errors/": 200,
    "GET /failnotify/errors/?integration=sync_c": 200,
}
EDIT = {
    "GET /failnotify/configure/sync_c/unregister": 200,
    "GET /failnotify/bulk/?dag_id=sync_e": 200,
    "POST /failnotify/configure/sync_c": 302,
    "POST /failnotify/configure/sync_c/unregister": 302,
    "POST /failnotify/bulk/": 200,
}
NO_EDIT = dict.fromkeys(EDIT, 403)
ADMIN_ONLY = {"GET /failnotify/settings/": 403, "POST /failnotify/settings/": 403}
OUTBOX = {"POST /failnotify/errors/outbox/1/send": 403, "POST /failnotify/errors/outbox/2/retry": 403}
EXPECTED: dict[str, dict[str, int]] = {
    "op": {
        **OK_GET,
        **EDIT,
        "GET /failnotify/settings/": 200,
        "POST /failnotify/settings/": 302,
        "POST /failnotify/errors/outbox/1/send": 302,
        "POST /failnotify/errors/outbox/2/retry": 302,
    },
    "user": {**OK_GET, **EDIT, **ADMIN_ONLY, **OUTBOX},
    "viewer": {**OK_GET, **NO_EDIT, **ADMIN_ONLY, **OUTBOX},
    # Simple: no role at all; FAB: a role that may read sync_e only. Neither may edit anything.
    "nodag": {
        **NO_EDIT,
        **ADMIN_ONLY,
        **OUTBOX,
        "GET /failnotify/": 200,
        "GET /failnotify/errors/": 200,
        "GET /failnotify/configure/sync_c": 403,
        "GET /failnotify/errors/?integration=sync_c": 403,
    },
}
MATRIX = [(user, request) for user, row in EXPECTED.items() for request in row]


@pytest.fixture
def sync_c_registered(fn_store: Any) -> Any:
    return register_bulk(fn_store, "sync_c")


def _call(client: Client, request: str) -> int:
    method, url = request.split(" ", 1)
    return client.get(url).status if method == "GET" else client.post(url, POST_DATA).status


@pytest.mark.parametrize(("user", "request_line"), MATRIX, ids=[f"{u}-{r}" for u, r in MATRIX])
def test_authorization_matrix(login: Any, sync_c_registered: Any, user: str, request_line: str) -> None:
    assert _call(login(user), request_line) == EXPECTED[user][request_line]


@pytest.mark.parametrize("url", GETS)
def test_anonymous_get_is_sent_to_the_login(login: Any, url: str) -> None:
    page = login(None).get(url)
    assert page.status == 302 and "/login" in page.location


@pytest.mark.parametrize("url", POSTS)
def test_anonymous_post_with_a_csrf_token_is_401(login: Any, url: str) -> None:
    assert login(None).post(url, {"confirm": "yes"}).status == 401


@pytest.mark.parametrize("url", POSTS)
def test_anonymous_post_without_a_csrf_token_is_400(login: Any, url: str) -> None:
    assert login(None).post(url, {}, csrf=False).status == 400


@pytest.mark.parametrize("user", ["viewer", "nodag"])
def test_a_refused_configure_post_changes_nothing(
    login: Any, sync_c_registered: Any, fn_store: Any, user: str
) -> None:
    before = fn_store.get_registration("sync_c")
    login(user).post("/failnotify/configure/sync_c", {**POST_DATA, "recipients": "changed@example.com"})
    assert fn_store.get_registration("sync_c") == before


@pytest.mark.parametrize("user", ["user", "viewer", "nodag"])
def test_a_refused_settings_post_changes_nothing(login: Any, fn_store: Any, user: str) -> None:
    from airflow_failnotify.core import schedule

    login(user).post("/failnotify/settings/", POST_DATA)
    assert fn_store.get_setting(schedule.SETTING_KEY) is None


@pytest.mark.parametrize("user", ["op", "user"])
def test_an_editors_configure_post_is_saved(
    login: Any, sync_c_registered: Any, fn_store: Any, user: str
) -> None:
    login(user).post("/failnotify/configure/sync_c", POST_DATA)
    assert list(fn_store.get_registration("sync_c").forward.recipients) == [
        "ops@example.com",
        "lead@example.com",
    ]


def test_an_admin_level_settings_post_is_saved(login: Any, fn_store: Any) -> None:
    from airflow_failnotify.core import schedule

    login("op").post("/failnotify/settings/", POST_DATA)
    assert fn_store.get_setting(schedule.SETTING_KEY) == "0 * * * *"


def test_a_reader_sees_a_read_only_form(login: Any, sync_c_registered: Any) -> None:
    page = login("viewer").get("/failnotify/configure/sync_c")
    assert 'id="failnotify-readonly"' in page.text and "<fieldset disabled>" in page.text
    assert 'name="csrf_token"' not in page.text and 'name="action"' not in page.text


def test_a_reader_has_no_settings_tab(login: Any, views_app: ViewsApp) -> None:
    page = login("viewer").get("/failnotify/")
    assert re.findall(r'<a href="([^"]+)">', page.between('id="failnotify-tabs"', "</ul>")) == [
        "/failnotify/",
        "/failnotify/errors/",
    ]
