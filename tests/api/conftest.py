"""In-process fixtures for the JSON API tests, under both auth managers.

The Airflow metadata DB, the DAGs, the users and their JWTs come from the views' fixtures
(tests/views/conftest.py: ``views_airflow``, ``views_app`` parametrized ``simple`` / ``fab``), so the
two UIs are tested against the same world. The API app is mounted at its real prefix on a bare
FastAPI app, as Airflow's api-server mounts it; requests go through Starlette's TestClient.

- ``api(name)`` -> an :class:`ApiClient` sending ``Authorization: Bearer <JWT of name>``
  (``api(None)`` is anonymous); ``cookie_api(name)`` sends the UI's ``_token`` cookie instead.
- ``expired_token`` / ``forged_token``: a JWT of the admin past its expiry / signed with another key.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from tests.views import conftest as views_conftest
from tests.views.conftest import ViewsApp

# The fixtures shared with the views' tests (same Airflow world, same users and tokens).
views_airflow = views_conftest.views_airflow
views_app = views_conftest.views_app
fn_store = views_conftest.fn_store
mail = views_conftest.mail

URL_PREFIX = "/failnotify/api"


@dataclass
class ApiClient:
    http: Any
    headers: dict[str, str]

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.http.request(method, f"{URL_PREFIX}{path}", headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("PUT", path, json=json, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


@pytest.fixture(scope="package")
def api_app(views_app: ViewsApp) -> Any:
    from fastapi import FastAPI

    from airflow_failnotify.api.web import create_app

    root = FastAPI()
    root.mount(URL_PREFIX, create_app())
    return root


@pytest.fixture
def api(api_app: Any, views_app: ViewsApp, fn_store: Any) -> Iterator[Callable[[str | None], ApiClient]]:
    from fastapi.testclient import TestClient

    with TestClient(api_app) as http:

        def make(name: str | None) -> ApiClient:
            headers = {"Authorization": f"Bearer {views_app.tokens[name]}"} if name else {}
            return ApiClient(http, headers)

        yield make


@pytest.fixture
def cookie_api(api_app: Any, views_app: ViewsApp, fn_store: Any) -> Iterator[Callable[[str], ApiClient]]:
    from fastapi.testclient import TestClient

    clients: list[Any] = []

    def make(name: str) -> ApiClient:
        http = TestClient(api_app)
        http.cookies.set("_token", views_app.tokens[name])
        clients.append(http)
        return ApiClient(http, {})

    yield make
    for http in clients:
        http.close()


def _resigned(token: str, *, key: str, changes: Mapping[str, Any]) -> str:
    import jwt

    header = jwt.get_unverified_header(token)
    claims = {**jwt.decode(token, options={"verify_signature": False}), **changes}
    return jwt.encode(
        claims,
        key,
        algorithm=header["alg"],
        headers={k: v for k, v in header.items() if k not in ("alg", "typ")},
    )


@pytest.fixture
def expired_token(views_app: ViewsApp) -> str:
    now = int(time.time())
    return _resigned(
        views_app.tokens["admin"],
        key=os.environ["AIRFLOW__API_AUTH__JWT_SECRET"],
        changes={"iat": now - 7200, "nbf": now - 7200, "exp": now - 3600},
    )


@pytest.fixture
def forged_token(views_app: ViewsApp) -> str:
    return _resigned(views_app.tokens["admin"], key="not-the-secret-" + "z" * 64, changes={})


# A registration in the documented shape (README, "Configuration as code"): forward sync_a, backward sync_b.
VALID_BODY: dict[str, Any] = {
    "smtp_conn_id": "mail_test",
    "include_error_trace": False,
    "recipients": "ops@example.com, lead@example.com",
    "cc": "audit@example.com",
    "subject_prefix": "[Sync]",
    "global": {
        "enabled": True,
        "inactivity_minutes": "2h",
        "notify_immediately": False,
        "failure_count_threshold": 5,
    },
    "processing": {"enabled": True, "notify_before_max_retries": True},
    "backward_integration": "sync_b",
    "same_for_backward": False,
    "backward": {
        "smtp_conn_id": "mail_test",
        "include_error_trace": True,
        "recipients": "back@example.com",
        "subject_prefix": "[Back]",
        "global": {"enabled": True, "notify_immediately": True, "failure_count_threshold": 1},
        "processing": {"enabled": True},
    },
}
