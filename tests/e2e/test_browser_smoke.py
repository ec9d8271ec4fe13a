"""Browser smoke test: a real ``airflow api-server``, the Airflow UI login, the plugin from the nav.

Chromium (Debian's, through Playwright) logs in on the UI's own login page (SimpleAuthManager, the
one ``airflow standalone`` uses), opens Plugins -> Failure Notification, and must see the Integrations
page inside the UI's frame: the UI login alone is enough for the /pluginsv2 views.
Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.fixtures.airflow_server import (  # noqa: E402
    AirflowHome,
    ApiServer,
    launch_chromium,
    screenshot,
    ui_login,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

DAGS = '''
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

for name in ("sync_crm_contacts", "sync_erp_orders", "export_billing"):
    with DAG(name, schedule=None, description=f"{name} <i>demo</i>"):
        EmptyOperator(task_id="t")
'''
ADMIN, PASSWORD = "admin", "admin-pw-for-tests"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    home = AirflowHome.create(tmp_path_factory.mktemp("airflow-e2e"), dags={"demo.py": DAGS},
                              users={ADMIN: ("admin", PASSWORD)})
    home.migrate()
    home.reserialize()
    with ApiServer(home) as api_server:
        yield api_server


def test_ui_login_then_plugin_from_the_nav_shows_integrations(server: ApiServer) -> None:
    from playwright.sync_api import expect, sync_playwright

    assert server.startup_seconds is not None and server.startup_seconds < 60
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            ui_login(page, server.base_url, ADMIN, PASSWORD)
            screenshot(page, "00-airflow-home")

            page.get_by_role("button", name="Plugins").click()
            page.get_by_role("menuitem", name="Failure Notification").click()
            page.wait_for_url("**/plugin/failnotify")
            assert page.locator("iframe").get_attribute("src") == "/pluginsv2/failnotify/"

            frame = page.frame_locator("iframe")
            table = frame.locator("#failnotify-integrations")
            expect(table).to_be_visible(timeout=30_000)
            expect(frame.locator("h2.failnotify-title")).to_have_text("Integrations")
            rows = frame.locator("#failnotify-integrations tbody tr")
            expect(rows).to_have_count(3)
            expect(rows.first).to_contain_text("export_billing")
            # Escaped, not rendered: the description shows its markup as text.
            expect(rows.first).to_contain_text("export_billing <i>demo</i>")
            configure = frame.locator("a.failnotify-configure")
            expect(configure.first).to_have_text("Configure Failure Notification")
            screenshot(page, "01-integrations-in-airflow-ui")

            frame.locator("#failnotify-q").fill("erp")
            frame.get_by_role("button", name="Search").click()
            expect(rows).to_have_count(1)
            expect(rows.first).to_contain_text("sync_erp_orders")
            screenshot(page, "02-integrations-search")

            frame.locator("a.failnotify-configure").first.click()
            expect(frame.locator("h2.failnotify-title")).to_contain_text("sync_erp_orders")
            screenshot(page, "03-configure-skeleton")
        finally:
            browser.close()


def test_pluginsv2_without_ui_login_redirects_to_login(server: ApiServer) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.goto(f"{server.base_url}/pluginsv2/failnotify/")
            page.wait_for_url("**/login**")
            assert "/auth/login" in page.url
        finally:
            browser.close()
