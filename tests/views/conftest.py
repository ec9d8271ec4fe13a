"""In-process fixtures for the view tests: the FAB app of Airflow 3 with the plugin, per auth manager.

- ``views_airflow`` (package): this session's AIRFLOW_HOME (made by the root conftest) migrated with
  ``airflow db migrate``, the DAGs of :data:`DAGS_SOURCE` serialized with ``airflow dags reserialize``
  and two connections in Airflow's metadata database (``mail_db`` with a password, ``other_http``).
- ``views_app`` (package, parametrized ``simple`` / ``fab``): the auth manager and
  ``airflow.providers.fab.www.app.create_app(enable_plugins=True)``, users with known rights and their
  ``_token`` JWTs (``generate_jwt(user)``). Airflow reads the auth manager from its configuration on
  every ``create_auth_manager()`` call, so both managers run in this one process, one after the other.
- ``fn_store`` (function): a fresh migrated SQLite store (``sqlite_store`` of tests/fixtures) that the
  views use too (``[failnotify] sql_alchemy_conn`` points at it).
- ``mail`` (function): the real SMTP server (``smtp_server`` of tests/fixtures, AUTH required) behind
  the ``mail_test`` connection, and ``mail_down`` (a port nothing listens on).
- ``login`` (function): ``login("admin")`` -> a :class:`Client` with a valid CSRF token;
  ``login(None)`` is anonymous.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.airflow_server import FAB_AUTH_MANAGER, SIMPLE_AUTH_MANAGER, free_port

VENV_BIN = Path(sys.executable).parent
DAG_IDS = ("sync_a", "sync_b", "sync_c", "sync_d", "sync_e")
DAGS_SOURCE = f"""
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

for name in {DAG_IDS!r}:
    with DAG(name, schedule=None, description=f"{{name}} demo"):
        EmptyOperator(task_id="t")

with DAG("failnotify_post_failure_notification", schedule=None):
    EmptyOperator(task_id="t")
"""
# username -> Simple role (the FAB users get the FAB role of the same meaning).
SIMPLE_ROLES = {"admin": "admin", "op": "op", "user": "user", "viewer": "viewer"}
FAB_ROLES = {"admin": "Admin", "op": "Op", "user": "User", "viewer": "Viewer"}
MANAGERS = {"simple": SIMPLE_AUTH_MANAGER, "fab": FAB_AUTH_MANAGER}
DB_CONN_SECRET = "db-conn-secret-Hq7Zp2"
CSRF_SECRET = "0123456789abcdef0123456789abcdef01234567"
APP_ENV = {
    "AIRFLOW__API__SECRET_KEY": "failnotify-test-secret-key-" + "x" * 40,
    "AIRFLOW__API_AUTH__JWT_SECRET": "failnotify-test-jwt-secret-" + "y" * 64,
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{n}:{r}" for n, r in SIMPLE_ROLES.items()),
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    # One attempt per notification: a refused recipient makes a failed notification at once.
    "AIRFLOW__FAILNOTIFY__MAX_ATTEMPTS": "1",
    # What `airflow api-server` sets (airflow/api_fastapi/main.py): the Task SDK's BaseHook then reads
    # connections from the metastore too, as it does behind the real UI.
    "_AIRFLOW_PROCESS_CONTEXT": "server",
}


def _airflow(*args: str, env: Mapping[str, str]) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "airflow"), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"airflow {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )


def _add_metastore_connections() -> None:
    from airflow.models import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as db:
        db.execute(delete(Connection).where(Connection.conn_id.in_(["mail_db", "other_http"])))
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


@pytest.fixture(scope="package")
def views_airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This session's Airflow metadata DB, migrated, with the DAGs and connections the views list."""
    dags = tmp_path_factory.mktemp("views-dags")
    (dags / "integrations.py").write_text(DAGS_SOURCE, encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {**APP_ENV, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}.items():
            mp.setenv(name, value)
        child_env = {k: v for k, v in os.environ.items() if k != "_AIRFLOW_PROCESS_CONTEXT"}
        _airflow("db", "migrate", env=child_env)
        _airflow("dags", "reserialize", env=child_env)
        _add_metastore_connections()
        yield dags


@dataclass
class ViewsApp:
    """The /pluginsv2 Flask app under one auth manager, its users' JWTs and how long it took to build."""

    manager_name: str
    app: Any
    manager: Any
    tokens: dict[str, str]
    users: dict[str, Any]
    build_seconds: float

    @property
    def is_fab(self) -> bool:
        return self.manager_name == "fab"


def _simple_users() -> dict[str, Any]:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    users: dict[str, Any] = {
        name: SimpleAuthManagerUser(username=name, role=role) for name, role in SIMPLE_ROLES.items()
    }
    users["nodag"] = SimpleAuthManagerUser(username="nodag", role=None)  # no right at all
    return users


def _fab_users(app: Any) -> dict[str, Any]:
    sm = app.appbuilder.sm
    with app.app_context():
        for name, role in FAB_ROLES.items():
            if sm.find_user(username=name) is None:
                sm.add_user(name, name, name, f"{name}@example.com", sm.find_role(role), password="pw")
        one = sm.find_role("one_dag_reader") or sm.add_role("one_dag_reader")
        sm.add_permission_to_role(one, sm.create_permission("can_read", "DAG:sync_e"))  # read one DAG only
        if sm.find_user(username="nodag") is None:
            sm.add_user("nodag", "no", "dag", "nodag@example.com", one, password="pw")
        return {name: sm.find_user(username=name) for name in (*FAB_ROLES, "nodag")}


@pytest.fixture(scope="package", params=sorted(MANAGERS))
def views_app(request: pytest.FixtureRequest, views_airflow: Path) -> Iterator[ViewsApp]:
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.providers.fab.www.app import create_app

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__CORE__AUTH_MANAGER", MANAGERS[request.param])
        started = time.monotonic()
        manager = create_auth_manager()
        app = create_app(enable_plugins=True)
        build_seconds = time.monotonic() - started
        users = _fab_users(app) if request.param == "fab" else _simple_users()
        tokens = {name: manager.generate_jwt(user) for name, user in users.items()}
        yield ViewsApp(request.param, app, manager, tokens, users, build_seconds)


@pytest.fixture
def fn_store(sqlite_store: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh migrated store, the one the views (and the service they call) use for this test."""
    from airflow_failnotify.store import get_store
    from airflow_failnotify.store.store import reset_stores

    url = sqlite_store.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", url)
    store = get_store()
    yield store
    reset_stores()


@dataclass
class Mail:
    server: Any
    down_port: int

    def received_since(self, count: int) -> list[Any]:
        return list(self.server.messages[count:])


@pytest.fixture
def mail(smtp_server: Any, smtp_connection: Callable[..., str]) -> Mail:
    """``mail_test`` -> the real SMTP server (AUTH LOGIN/PLAIN); ``mail_down`` -> nothing listening."""
    smtp_connection("mail_test", server=smtp_server, auth_type="basic", timeout=5)
    down_port = free_port()
    smtp_connection("mail_down", host="127.0.0.1", port=down_port, security="none", timeout=5)
    return Mail(smtp_server, down_port)


# ----------------------------------------------------------------------------------------------- client


@dataclass
class Page:
    """A response, with the few ways the tests read the HTML."""

    status: int
    text: str
    location: str = ""
    headers: Any = None

    def field_errors(self) -> dict[str, str]:
        return dict(re.findall(r'id="error-([\w]+)" data-field="[\w]+">([^<]*)<', self.text))

    def input_value(self, name: str) -> str | None:
        found = re.search(rf'name="{name}"[^>]*?\svalue="([^"]*)"', self.text)
        return found.group(1) if found else None

    def between(self, start: str, end: str) -> str:
        return self.text.split(start, 1)[1].split(end, 1)[0]


@dataclass
class Client:
    """A Flask test client of the app, logged in through a ``_token`` cookie (or anonymous)."""

    http: Any
    csrf: str
    posted: list[str] = field(default_factory=list)

    @staticmethod
    def _page(response: Any) -> Page:
        return Page(
            response.status_code,
            response.get_data(as_text=True),
            response.headers.get("Location") or "",
            response.headers,
        )

    def get(self, url: str) -> Page:
        return self._page(self.http.get(url))

    def post(self, url: str, data: Mapping[str, Any] | None = None, *, csrf: bool = True) -> Page:
        form = {k: v for k, v in (data or {}).items() if v is not None}
        if csrf:
            form["csrf_token"] = self.csrf
        return self._page(self.http.post(url, data=form))


@pytest.fixture
def login(views_app: ViewsApp, fn_store: Any) -> Callable[[str | None], Client]:
    from flask import session
    from flask_wtf.csrf import generate_csrf

    app = views_app.app

    def make(name: str | None) -> Client:
        http = app.test_client()
        if name:
            http.set_cookie("_token", views_app.tokens[name])
        with http.session_transaction() as sess:
            sess["csrf_token"] = CSRF_SECRET
        with app.test_request_context():
            session["csrf_token"] = CSRF_SECRET
            token = generate_csrf()
        return Client(http, token)

    return make


@pytest.fixture
def admin(login: Callable[[str | None], Client]) -> Client:
    return login("admin")


# ----------------------------------------------------------------------------------------------- data

VALID_FORM: dict[str, Any] = {
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
# What the bulk form posts for sync_c and sync_d (and the registration it makes).
BULK_FORM: dict[str, Any] = {
    "smtp_conn_id": "mail_test",
    "recipients": "team@example.com",
    "cc": "",
    "subject_prefix": "[B]",
}


def register_valid_form(store: Any, dag_id: str = "sync_a") -> Any:
    """Store what a valid Save of :data:`VALID_FORM` stores (sync_a: forward + backward sync_b)."""
    from airflow_failnotify.core.config import parse_registration
    from airflow_failnotify.plugins import forms

    registration = parse_registration(forms.registration_dict(forms.values_from_post(dag_id, VALID_FORM)))
    store.save_registration(registration)
    return registration


def register_bulk(store: Any, dag_id: str, **changes: Any) -> Any:
    """Store what the bulk form stores for ``dag_id`` (one direction, same for backward)."""
    from airflow_failnotify.core.config import bulk_registration

    registration = bulk_registration(dag_id, **{**BULK_FORM, **changes})
    store.save_registration(registration)
    return registration


# ----------------------------------------------------------------------------------------------- secrets


class VaultLikeBackend:
    """A secrets backend the forms cannot list (like Vault): it only answers for ids it is asked."""

    CONNECTIONS = {
        "mail_vault": json.dumps(
            {
                "conn_type": "failnotify_smtp",
                "host": "vault.example.test",
                "extra": {"from_email": "v@x.test"},
            }
        )
    }

    def __new__(cls, **kwargs: Any) -> Any:  # a real BaseSecretsBackend subclass, built on first use
        from airflow.secrets.base_secrets import BaseSecretsBackend

        class _Backend(BaseSecretsBackend):
            def get_conn_value(self, conn_id: str, team_name: str | None = None) -> str | None:
                return cls.CONNECTIONS.get(conn_id)

        return _Backend(**kwargs)


@pytest.fixture
def vault_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``[secrets] backend`` = :class:`VaultLikeBackend` for one test."""
    from airflow.sdk.configuration import clear_secrets_backends_cache

    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", f"{__name__}.VaultLikeBackend")
    clear_secrets_backends_cache()
    yield
    monkeypatch.delenv("AIRFLOW__SECRETS__BACKEND")
    clear_secrets_backends_cache()


def record_failures(store: Any, now: datetime, *, only: str | None = None) -> None:
    """Failures of sync_d (3 days, 1 hour and 30 minutes ago) and sync_c (10 minutes ago), two other
    errors (config, 5 days ago, of sync_d; store, 5 minutes ago), then one evaluation (notifications)."""
    from airflow_failnotify.core import rules
    from airflow_failnotify.core.model import EventKind
    from airflow_failnotify.service.evaluation import evaluate
    from airflow_failnotify.store import EventRecord

    def run_failed(dag_id: str, run_id: str, ago: timedelta, message: str) -> Any:
        return EventRecord(
            kind=EventKind.RUN_FAILED,
            dag_id=dag_id,
            run_id=run_id,
            occurred_at=now - ago,
            source="scheduler",
            error_message=message,
        )

    events = [
        run_failed("sync_d", "old_run", timedelta(days=3), "old failure"),
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
        run_failed("sync_d", "new_run", timedelta(minutes=30), "run failed"),
        run_failed("sync_c", "c_run", timedelta(minutes=10), "c failed"),
    ]
    store.record_events([e for e in events if only is None or e.dag_id == only])
    if only is None:
        store.log_error(
            "config", "old configuration problem", integration="sync_d", now=now - timedelta(days=5)
        )
        store.log_error("store", "store was away <i>briefly</i>", now=now - timedelta(minutes=5))
    evaluate(store, rules.evaluate, lambda ids: {}, now=now)
