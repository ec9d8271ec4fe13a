"""The auth bridge and the Integrations view, in-process with the FAB app's test client.

Airflow reads its configuration (auth manager, AIRFLOW_HOME) once per process, so each auth manager
runs in its own child process: this file, executed as a script with the manager's name, builds
``airflow.providers.fab.www.app.create_app(enable_plugins=True)``, drives ``app.test_client()`` with
``_token`` cookies from the auth manager's ``generate_jwt(user)`` and prints one JSON object of
observations. The tests below assert on those observations, one behaviour per test.
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

N_SYNC_DAGS = 30
DAGS_SOURCE = f'''
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

for i in range({N_SYNC_DAGS}):
    with DAG(f"sync_crm_{{i:02d}}", schedule=None, description=f"CRM sync {{i}}"):
        EmptyOperator(task_id="t")

with DAG("billing_export", schedule=None, description="<script>alert('x')</script> & co"):
    EmptyOperator(task_id="t")

with DAG("failnotify_post_failure_notification", schedule=None):
    EmptyOperator(task_id="t")
'''
# username -> (Simple role, password); FAB users are created in the child with matching FAB roles.
USERS = {"admin": ("admin", "pw"), "op": ("op", "pw"), "user": ("user", "pw"), "viewer": ("viewer", "pw")}

MANAGERS = {"simple": SIMPLE_AUTH_MANAGER, "fab": FAB_AUTH_MANAGER}


# ------------------------------------------------------------------------------------ child process


def _scenario() -> dict[str, Any]:  # pragma: no cover - runs in the child process
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.providers.fab.www.app import create_app
    from flask import g

    from airflow_failnotify.plugins import auth
    from airflow_failnotify.store import get_store

    get_store().migrate()  # the views read registrations from the failnotify store
    obs: dict[str, Any] = {}
    started = time.monotonic()
    manager = create_auth_manager()
    app = create_app(enable_plugins=True)
    obs["build_seconds"] = round(time.monotonic() - started, 2)
    obs["manager"] = type(manager).__name__

    if obs["manager"] == "SimpleAuthManager":
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

        users: dict[str, Any] = {name: SimpleAuthManagerUser(username=name, role=role)
                                 for name, (role, _pw) in USERS.items()}
        # A user the auth manager gives no right at all (no role).
        users["nodag"] = SimpleAuthManagerUser(username="nodag", role=None)
    else:
        sm = app.appbuilder.sm
        with app.app_context():
            roles = {"admin": "Admin", "op": "Op", "user": "User", "viewer": "Viewer"}
            users = {}
            for name, role in roles.items():
                users[name] = sm.find_user(username=name) or sm.add_user(
                    name, name, name, f"{name}@example.com", sm.find_role(role), password="pw")
            # Read access to one DAG only (FAB per-DAG permission).
            one = sm.add_role("one_dag_reader")
            for action, resource in (("can_read", "DAG:sync_crm_00"),):
                perm = sm.create_permission(action, resource)
                sm.add_permission_to_role(one, perm)
            users["nodag"] = sm.find_user(username="nodag") or sm.add_user(
                "nodag", "no", "dag", "nodag@example.com", one, password="pw")
            users = {name: sm.find_user(username=name) for name in users}
    tokens = {name: manager.generate_jwt(user) for name, user in users.items()}

    def client(name: str | None) -> Any:
        c = app.test_client()
        if name:
            c.set_cookie("_token", tokens[name])
        return c

    def page(name: str | None, url: str) -> Any:
        return client(name).get(url)

    anon = page(None, "/failnotify/")
    obs["anon_get"] = [anon.status_code, anon.headers.get("Location")]
    anon_post = client(None).post("/failnotify/configure/sync_crm_00", data={})
    obs["anon_post"] = anon_post.status_code
    bad = app.test_client()
    bad.set_cookie("_token", "not-a-jwt")
    obs["garbage_token"] = bad.get("/failnotify/").status_code
    forged = app.test_client()
    forged.set_cookie("_token", tokens["admin"][:-4] + "AAAA")
    obs["forged_token"] = forged.get("/failnotify/").status_code
    expired_token = manager.generate_jwt(users["admin"], expiration_time_in_seconds=-60)
    expired = app.test_client()
    expired.set_cookie("_token", expired_token)
    obs["expired_token"] = expired.get("/failnotify/").status_code

    admin_list = page("admin", "/failnotify/")
    html = admin_list.get_data(as_text=True)
    obs["admin_list"] = admin_list.status_code
    obs["admin_list_dags"] = re.findall(r'data-dag-id="([^"]+)"', html)
    obs["admin_list_total"] = re.findall(r'id="failnotify-total">(\d+)', html)
    obs["admin_list_page"] = re.findall(r'id="failnotify-page">([^<]+)<', html)
    obs["raw_script_in_page"] = "<script>alert(" in html
    obs["escaped_script_in_page"] = "&lt;script&gt;alert(" in html
    obs["set_cookies"] = admin_list.headers.getlist("Set-Cookie")
    obs["base_layout"] = "navbar" in html and "failnotify.css" in html

    page2 = page("admin", "/failnotify/?page=2").get_data(as_text=True)
    obs["admin_page2_dags"] = re.findall(r'data-dag-id="([^"]+)"', page2)
    search = page("admin", "/failnotify/?q=BILLING").get_data(as_text=True)
    obs["search_dags"] = re.findall(r'data-dag-id="([^"]+)"', search)
    xss = page("admin", "/failnotify/?q=%3Cimg%20src%3Dx%3E").get_data(as_text=True)
    obs["search_echo_escaped"] = "&lt;img src=x&gt;" in xss and "<img src=x>" not in xss
    like = page("admin", "/failnotify/?q=%25").get_data(as_text=True)
    obs["search_percent_literal"] = re.findall(r'data-dag-id="([^"]+)"', like)

    obs["nodag_list_dags"] = re.findall(r'data-dag-id="([^"]+)"',
                                        page("nodag", "/failnotify/?size=100").get_data(as_text=True))
    obs["nodag_list_status"] = page("nodag", "/failnotify/").status_code
    obs["nodag_other_dag"] = page("nodag", "/failnotify/configure/sync_crm_01").status_code
    obs["nodag_other_dag_body"] = "Forbidden" in page("nodag", "/failnotify/configure/sync_crm_01").get_data(
        as_text=True)
    obs["nodag_own_dag"] = page("nodag", "/failnotify/configure/sync_crm_00").status_code
    obs["viewer_dag_page"] = page("viewer", "/failnotify/configure/sync_crm_01").status_code
    obs["admin_dag_page"] = page("admin", "/failnotify/configure/sync_crm_01").status_code

    # CSRF: a POST without the token is refused; with the token from the form it goes through.
    editor = client("admin")
    form = editor.get("/failnotify/configure/sync_crm_01").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    obs["form_has_csrf"] = bool(csrf)
    obs["post_without_csrf"] = editor.post("/failnotify/configure/sync_crm_01", data={}).status_code
    obs["post_bad_csrf"] = editor.post("/failnotify/configure/sync_crm_01",
                                       data={"csrf_token": "nope"}).status_code
    obs["post_with_csrf"] = editor.post("/failnotify/configure/sync_crm_01",
                                        data={"csrf_token": csrf.group(1) if csrf else ""}).status_code
    viewer = client("viewer")
    vform = viewer.get("/failnotify/configure/sync_crm_01").get_data(as_text=True)
    obs["viewer_sees_form"] = 'name="csrf_token"' in vform
    # The viewer never gets a form, so give its session a CSRF secret and sign a valid token for it.
    from flask import session
    from flask_wtf.csrf import generate_csrf

    with viewer.session_transaction() as sess:
        sess["csrf_token"] = "0123456789abcdef0123456789abcdef01234567"
    with app.test_request_context():
        session["csrf_token"] = "0123456789abcdef0123456789abcdef01234567"
        viewer_token = generate_csrf()
    obs["viewer_post_with_csrf"] = viewer.post("/failnotify/configure/sync_crm_01",
                                               data={"csrf_token": viewer_token}).status_code

    admin_levels = {}
    for name in ("admin", "op", "user", "viewer", "nodag"):
        with app.test_request_context("/failnotify/"):
            g.failnotify_user = users[name]
            admin_levels[name] = auth.is_admin()
    obs["is_admin"] = admin_levels
    obs["rules"] = sorted(
        f"{','.join(sorted(r.methods - {'HEAD', 'OPTIONS'}))} {r.rule}"
        for r in app.url_map.iter_rules() if r.endpoint.startswith(("IntegrationsView.", "ConfigureView."))
    )
    return obs


# ------------------------------------------------------------------------------------ parent fixtures


@pytest.fixture(scope="module")
def migrated_home(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    home = AirflowHome.create(tmp_path_factory.mktemp("airflow-template"),
                              dags={"integrations.py": DAGS_SOURCE}, users=USERS)
    home.migrate()
    home.reserialize()
    return home


@pytest.fixture(scope="module", params=sorted(MANAGERS))
def obs(request: pytest.FixtureRequest, migrated_home: AirflowHome,
        tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = migrated_home.clone(tmp_path_factory.mktemp(f"airflow-{request.param}"),
                               auth_manager=MANAGERS[request.param])
    started = time.monotonic()
    env = home.env()
    env["AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN"] = f"sqlite:///{home.path / 'failnotify.db'}"
    result = subprocess.run([sys.executable, __file__], env=env, cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=240, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("FAILNOTIFY-OBS ")]
    assert result.returncode == 0 and lines, (
        f"child failed:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
    )
    data: dict[str, Any] = json.loads(lines[-1].removeprefix("FAILNOTIFY-OBS "))
    data["child_seconds"] = round(time.monotonic() - started, 2)
    return data


# ------------------------------------------------------------------------------------ tests


def test_app_builds_with_the_plugin_in_seconds(obs: dict[str, Any]) -> None:
    assert obs["build_seconds"] < 15
    assert obs["rules"] == ["GET /failnotify/", "GET /failnotify/configure/<string:dag_id>",
                            "GET /failnotify/configure/<string:dag_id>/unregister",
                            "POST /failnotify/configure/<string:dag_id>",
                            "POST /failnotify/configure/<string:dag_id>/silence",
                            "POST /failnotify/configure/<string:dag_id>/unregister",
                            "POST /failnotify/configure/<string:dag_id>/unsilence"]


def test_anonymous_get_is_redirected_to_the_airflow_login(obs: dict[str, Any]) -> None:
    status, location = obs["anon_get"]
    assert status == 302
    assert "/auth/login" in location and "next=" in location


def test_anonymous_post_is_refused_not_500(obs: dict[str, Any]) -> None:
    # CSRFProtect runs before the bridge (app-level hook first), so no token -> 400; with one -> 401.
    assert obs["anon_post"] in (400, 401)


@pytest.mark.parametrize("case", ["garbage_token", "forged_token", "expired_token"])
def test_invalid_tokens_are_treated_as_anonymous(obs: dict[str, Any], case: str) -> None:
    assert obs[case] == 302


def test_admin_sees_the_integrations_list_in_airflow_layout(obs: dict[str, Any]) -> None:
    assert obs["admin_list"] == 200
    assert obs["base_layout"]
    assert obs["admin_list_total"] == [str(N_SYNC_DAGS + 1)]
    assert obs["admin_list_page"] == ["Page 1 of 2"]
    assert obs["admin_list_dags"][:2] == ["billing_export", "sync_crm_00"]
    assert len(obs["admin_list_dags"]) == 25
    assert "failnotify_post_failure_notification" not in obs["admin_list_dags"]


def test_paging_and_search(obs: dict[str, Any]) -> None:
    assert obs["admin_page2_dags"] == [f"sync_crm_{i:02d}" for i in range(24, N_SYNC_DAGS)]
    assert obs["search_dags"] == ["billing_export"]
    assert obs["search_percent_literal"] == []


def test_everything_is_escaped(obs: dict[str, Any]) -> None:
    assert not obs["raw_script_in_page"]
    assert obs["escaped_script_in_page"]
    assert obs["search_echo_escaped"]


def test_pluginsv2_app_uses_its_own_session_cookie(obs: dict[str, Any]) -> None:
    assert obs["set_cookies"], "expected the session cookie to be set"
    assert all(cookie.startswith("failnotify_pluginsv2_session=") for cookie in obs["set_cookies"])


def test_user_without_dag_access_gets_403_on_that_dag(obs: dict[str, Any]) -> None:
    assert obs["nodag_other_dag"] == 403
    assert obs["nodag_other_dag_body"]


def test_dag_list_is_filtered_by_the_auth_manager(obs: dict[str, Any]) -> None:
    if obs["manager"] == "FabAuthManager":
        # FAB: a role with read access to one DAG sees that DAG only, and may open it.
        assert obs["nodag_list_dags"] == ["sync_crm_00"]
        assert obs["nodag_own_dag"] == 200
    else:
        # SimpleAuthManager: a user without a role sees nothing and may open nothing.
        assert obs["nodag_list_dags"] == []
        assert obs["nodag_list_status"] == 200
        assert obs["nodag_own_dag"] == 403
    assert obs["viewer_dag_page"] == 200
    assert obs["admin_dag_page"] == 200


def test_post_without_csrf_token_is_refused(obs: dict[str, Any]) -> None:
    assert obs["form_has_csrf"]
    assert obs["post_without_csrf"] == 400
    assert obs["post_bad_csrf"] == 400
    assert obs["post_with_csrf"] == 422  # past CSRF and authorization; an empty form is refused


def test_change_needs_dag_edit_right(obs: dict[str, Any]) -> None:
    assert not obs["viewer_sees_form"]
    assert obs["viewer_post_with_csrf"] == 403


def test_admin_level_is_op_or_admin_under_both_managers(obs: dict[str, Any]) -> None:
    assert obs["is_admin"] == {"admin": True, "op": True, "user": False, "viewer": False, "nodag": False}


# ------------------------------------------------------------------------------------ plugin registration

PLUGIN_PROBE = """
import json, sys
from airflow_failnotify.plugins import plugin as fn_plugin
if sys.argv[1] == "naive":  # what a plugins-folder file without the guard would do
    fn_plugin.installed_through_entry_point = lambda: False
from airflow import plugins_manager
plugins, errors = plugins_manager._get_plugins()
print("FAILNOTIFY-OBS " + json.dumps({
    "failnotify": [str(p.source) for p in plugins if p.name == "failnotify"],
    "errors": errors,
    "nav": [v["url_route"] for part in plugins_manager._get_ui_plugins() for v in part
            if v.get("destination", "nav") == "nav"],
}))
"""


def _load_plugins(home: AirflowHome, mode: str) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-c", PLUGIN_PROBE, mode], env=home.env(), cwd=home.path,
                            capture_output=True, text=True, timeout=120, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("FAILNOTIFY-OBS ")]
    assert result.returncode == 0 and lines, f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return dict(json.loads(lines[-1].removeprefix("FAILNOTIFY-OBS ")))


def test_plugins_folder_file_does_not_register_the_plugin_twice(migrated_home: AirflowHome) -> None:
    plugin_file = migrated_home.path / "plugins" / "failnotify_plugin.py"
    plugin_file.write_text((REPO_ROOT / "plugins" / "failnotify_plugin.py").read_text(encoding="utf-8"))
    try:
        loaded = _load_plugins(migrated_home, "guarded")
        # Installed with pip (this venv): the entry point registers it, the folder file stays silent.
        assert len(loaded["failnotify"]) == 1
        assert loaded["failnotify"][0].startswith("airflow-failnotify==")  # EntryPointSource
        assert loaded["errors"] == {}
        assert loaded["nav"].count("failnotify") == 1
        # Without the guard Airflow keeps the folder copy and reports the entry point as an import error.
        naive = _load_plugins(migrated_home, "naive")
        assert naive["failnotify"] == ["$PLUGINS_FOLDER/failnotify_plugin.py"]
        assert any("already registered" in message for message in naive["errors"].values())
    finally:
        plugin_file.unlink()


if __name__ == "__main__":  # the child process
    print("FAILNOTIFY-OBS " + json.dumps(_scenario()), flush=True)
