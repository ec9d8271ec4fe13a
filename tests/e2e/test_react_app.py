"""The React app in the Airflow 3 UI, in Chromium against a real ``airflow api-server``.

Under the SimpleAuthManager in light mode: the whole seed workflow in the app (configure with bad input
refused at the field, Test with the mail arriving, Save, Update, the DAG tab, a DAG link landing on the
DAG's page, bulk, Error Management filters, Send now, Retry, the schedule, Unregister), with no console
error and no deprecation banner; then every page in dark mode. Screenshots of every page, light and
dark, go to test-artifacts/screenshots/react-*.png. One api-server for the module; the steps run in
one test because each builds on the last (a failure names the step in its message).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from airflow_failnotify.api.web import BUNDLE_DIR, BUNDLE_FILE  # noqa: E402
from airflow_failnotify.store import Store  # noqa: E402
from airflow_failnotify.store.engine import create_store_engine  # noqa: E402
from devtools.smtp_server import DevSmtpServer  # noqa: E402
from tests.fixtures.airflow_server import AirflowHome, ApiServer, launch_chromium, screenshot, ui_login  # noqa: E402
from tests.fixtures.waiting import wait_until  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not (BUNDLE_DIR / BUNDLE_FILE).exists(), reason="the React bundle is not built: make ui"
    ),
]

DAGS = """
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

for name in ("sync_crm_contacts", "sync_erp_orders", "export_billing"):
    with DAG(name, schedule=None, description=f"{name} demo"):
        EmptyOperator(task_id="t")
"""
ADMIN, PASSWORD = "admin", "admin-pw-for-tests"
MAIL_CONN = "mail_test"
BANNER = "FAB view or Flask Blueprint"


@pytest.fixture(scope="module")
def smtp() -> Iterator[DevSmtpServer]:
    with DevSmtpServer() as server:
        yield server


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path_factory.mktemp('failnotify-react') / 'failnotify.db'}"
    store = Store(create_store_engine(url, timeout=5))
    store.migrate()
    yield store
    store.engine.dispose()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, smtp: DevSmtpServer, store: Store
) -> Iterator[ApiServer]:
    mail_conn = {
        "conn_type": "failnotify_smtp",
        "host": smtp.host,
        "port": smtp.port,
        "extra": {
            "from_email": "robot@failnotify.test",
            "security": "none",
            "auth_type": "none",
            "timeout": 10,
        },
    }
    home = AirflowHome.create(
        tmp_path_factory.mktemp("airflow-react"),
        dags={"demo.py": DAGS},
        users={ADMIN: ("admin", PASSWORD)},
        extra_env={
            "AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN": str(store.engine.url),
            "AIRFLOW__FAILNOTIFY__MAX_ATTEMPTS": "1",
            f"AIRFLOW_CONN_{MAIL_CONN.upper()}": json.dumps(mail_conn),
        },
    )
    home.migrate()
    home.reserialize()
    with ApiServer(home) as api_server:
        yield api_server


# Chromium logs every non-2xx response as a console error; a 422 is the API refusing bad input at its
# field, which the workflow provokes on purpose. Anything else fails the test.
EXPECTED = "the server responded with a status of 422"


class Console:
    """Console errors and uncaught page errors of a page, from after the login (the test fails on any)."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def _console(self, message: Any) -> None:
        if message.type == "error" and EXPECTED not in message.text:
            self.errors.append(f"{message.text} at {message.location.get('url', '')}")


def _record_failures(store: Store, dag_id: str) -> None:
    from airflow_failnotify.core import rules
    from airflow_failnotify.core.model import EventKind
    from airflow_failnotify.service.evaluation import evaluate
    from airflow_failnotify.store import EventRecord

    now = datetime.now(timezone.utc)
    store.record_events(
        [
            EventRecord(
                kind=EventKind.TASK_FAILED,
                dag_id=dag_id,
                run_id="manual__1",
                occurred_at=now - timedelta(minutes=20),
                source="task",
                task_id="t",
                try_number=1,
                max_tries=1,
                is_final=True,
                error_message="ValueError: bad record",
                traceback='File "x.py", line 1',
            ),
            EventRecord(
                kind=EventKind.RUN_FAILED,
                dag_id=dag_id,
                run_id="manual__1",
                occurred_at=now - timedelta(minutes=19),
                source="scheduler",
                error_message="run failed",
            ),
        ]
    )
    store.log_error("store", "store was away briefly", now=now - timedelta(minutes=5))
    evaluate(store, rules.evaluate, lambda ids: {}, now=now)


def _app(page: Page, base_url: str, path: str = "") -> None:
    page.goto(f"{base_url}/plugin/failnotify{path}")
    page.get_by_test_id("failnotify-app").wait_for(timeout=30_000)


def _shoot_every_page(page: Page, base_url: str, mode: str) -> None:
    from playwright.sync_api import expect

    for name, path, testid in (
        ("integrations", "", "fn-integrations"),
        ("configure", "/configure/sync_erp_orders", "fn-configure"),
        ("errors", "/errors", "fn-errors"),
        ("settings", "/settings", "fn-settings"),
        ("health", "/health", "fn-health-status"),
    ):
        _app(page, base_url, path)
        expect(page.get_by_test_id(testid)).to_be_visible(timeout=30_000)
        screenshot(page, f"react-{name}-{mode}")
    page.goto(f"{base_url}/dags/sync_erp_orders/plugin/failnotify-dag")
    expect(page.get_by_test_id("fn-dag-tab")).to_be_visible(timeout=30_000)
    screenshot(page, f"react-dag-tab-{mode}")


def _configure(page: Page, server: ApiServer, smtp: DevSmtpServer, store: Store) -> None:
    from playwright.sync_api import expect

    page.get_by_test_id("fn-configure-sync_crm_contacts").click()
    expect(page.get_by_test_id("fn-configure")).to_be_visible()
    page.locator("select[name=smtp_conn_id]").select_option(MAIL_CONN)
    page.locator("input[name=recipients]").fill("not-an-address")
    page.locator("input[name=failure_count_threshold]").fill("0")
    page.get_by_test_id("fn-save").click()
    expect(page.get_by_test_id("fn-error-recipients")).not_to_be_empty()
    expect(page.get_by_test_id("fn-error-global.failure_count_threshold")).not_to_be_empty()
    screenshot(page, "react-configure-refused-light")
    assert store.get_registration("sync_crm_contacts") is None, "bad input must not be saved"

    page.locator("input[name=recipients]").fill("ops@example.com")
    page.locator("input[name=failure_count_threshold]").fill("1")
    before = len(smtp.messages)
    page.get_by_test_id("fn-test").click()
    expect(page.get_by_test_id("fn-notice-success").first).to_contain_text("Test mail sent")
    wait_until(lambda: len(smtp.messages) > before, timeout=20, message="the test mail")
    assert store.get_registration("sync_crm_contacts") is None, "Test must not save"

    page.get_by_test_id("fn-save").click()
    expect(page.get_by_test_id("fn-registered")).to_have_text("Registered for failure notification")
    assert store.get_registration("sync_crm_contacts") is not None

    page.locator("input[name=subject_prefix]").fill("[CRM]")
    page.get_by_test_id("fn-save").click()  # now "Update"
    expect(page.get_by_test_id("fn-notice-success")).to_contain_text("updated")
    assert store.get_registration("sync_crm_contacts").forward.subject_prefix == "[CRM]"
    screenshot(page, "react-configure-saved-light")


def _bulk(page: Page, store: Store) -> None:
    from playwright.sync_api import expect

    page.get_by_role("button", name="Integrations").click()
    for dag_id in ("sync_erp_orders", "export_billing"):
        page.locator(f"[data-dag-id={dag_id}] label").first.click()
    page.get_by_test_id("fn-bulk-open").click()
    bulk = page.get_by_test_id("fn-bulk")
    bulk.locator("select[name=smtp_conn_id]").select_option(MAIL_CONN)
    bulk.locator("input[name=recipients]").fill("team@example.com")
    screenshot(page, "react-bulk-light")
    page.get_by_test_id("fn-bulk-apply").click()
    expect(bulk).to_contain_text("Configured: sync_erp_orders, export_billing")
    assert store.get_registration("export_billing") is not None


def _errors(page: Page, server: ApiServer, smtp: DevSmtpServer, store: Store) -> None:
    from playwright.sync_api import expect

    _record_failures(store, "sync_erp_orders")
    _app(page, server.base_url, "/errors")
    events = page.locator("[data-testid=fn-events] tbody tr")
    expect(events).to_have_count(2)
    page.get_by_test_id("fn-filter-type").select_option("other")
    page.get_by_test_id("fn-filter-apply").click()
    expect(page.get_by_test_id("fn-events")).to_have_count(0)
    expect(page.locator("[data-testid=fn-other-errors] tbody tr")).to_have_count(1)
    page.get_by_test_id("fn-filter-type").select_option("all")
    page.get_by_test_id("fn-filter-ostate").select_option("pending")
    page.get_by_test_id("fn-filter-apply").click()
    pending = page.locator("[data-testid=fn-outbox] tbody tr[data-state=pending]")
    expect(pending.first).to_be_visible()
    count = pending.count()
    assert count >= 2, f"expected two pending notifications, got {count}"
    page.get_by_test_id("fn-event-detail").first.click()
    screenshot(page, "react-errors-light")

    # Send now with the recipient refused (one attempt): the notification fails ...
    smtp.refuse(["team@example.com"])
    pending.first.get_by_test_id("fn-send-now").click()
    expect(page.get_by_test_id("fn-notice-error")).to_contain_text("was not sent (now failed)")
    # ... Retry once the recipient is fixed: sent.
    smtp.refuse_recipients.clear()
    before = len(smtp.messages)
    page.get_by_test_id("fn-filter-ostate").select_option("failed")
    page.get_by_test_id("fn-filter-apply").click()
    page.locator("[data-testid=fn-outbox] tbody tr[data-state=failed]").first.get_by_test_id(
        "fn-retry"
    ).click()
    expect(page.get_by_test_id("fn-notice-success")).to_contain_text("was sent")
    wait_until(lambda: len(smtp.messages) > before, timeout=20, message="the retried mail")
    # Send now of a pending one: sent.
    page.get_by_test_id("fn-filter-ostate").select_option("pending")
    page.get_by_test_id("fn-filter-apply").click()
    before = len(smtp.messages)
    page.locator("[data-testid=fn-outbox] tbody tr[data-state=pending]").first.get_by_test_id(
        "fn-send-now"
    ).click()
    expect(page.get_by_test_id("fn-notice-success")).to_contain_text("was sent")
    wait_until(lambda: len(smtp.messages) > before, timeout=20, message="the mail sent now")


def _dag_tab_and_links(page: Page, server: ApiServer) -> None:
    from playwright.sync_api import expect

    page.goto(f"{server.base_url}/dags/sync_crm_contacts")
    page.get_by_role("link", name="Failure notification").or_(
        page.get_by_role("tab", name="Failure notification")
    ).or_(page.get_by_role("button", name="Failure notification")).first.click(timeout=30_000)
    page.wait_for_url("**/dags/sync_crm_contacts/plugin/failnotify-dag")
    expect(page.get_by_test_id("fn-dag-tab-status")).to_contain_text("registered for sync_crm_contacts")
    expect(page.get_by_test_id("fn-dag-tab")).to_contain_text("ops@example.com")
    screenshot(page, "react-dag-tab-light")
    page.get_by_test_id("fn-dag-tab-configure").click()
    page.wait_for_url("**/plugin/failnotify/configure/sync_crm_contacts")
    page.get_by_test_id("fn-configure-dag-link").click()
    page.wait_for_url("**/dags/sync_crm_contacts")
    expect(page.get_by_text("sync_crm_contacts").first).to_be_visible()


def test_the_seed_workflow_in_the_react_app(server: ApiServer, smtp: DevSmtpServer, store: Store) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, color_scheme="light")
            ui_login(page, server.base_url, ADMIN, PASSWORD)
            console = Console(page)
            page.get_by_role("button", name="Plugins").click()
            page.get_by_role("menuitem", name="Failure Notification", exact=True).click()
            page.wait_for_url("**/plugin/failnotify")
            expect(page.get_by_test_id("fn-integrations")).to_be_visible(timeout=30_000)
            assert page.locator("iframe").count() == 0, "the app must render in the page, not a frame"
            expect(page.locator("[data-testid=fn-integrations] tbody tr")).to_have_count(3)
            screenshot(page, "react-integrations-light")

            _configure(page, server, smtp, store)
            _dag_tab_and_links(page, server)
            _app(page, server.base_url)
            _bulk(page, store)
            _errors(page, server, smtp, store)

            _app(page, server.base_url, "/settings")
            page.get_by_test_id("fn-schedule").select_option("0 * * * *")
            page.get_by_test_id("fn-schedule-save").click()
            expect(page.get_by_test_id("fn-notice-success")).to_contain_text("Every hour")
            expect(page.get_by_test_id("fn-effective")).to_contain_text("(0 * * * * UTC)")
            assert store.get_setting("notification_schedule") == "0 * * * *"
            screenshot(page, "react-settings-light")

            _app(page, server.base_url, "/configure/sync_crm_contacts")
            page.get_by_test_id("fn-unregister").click()
            page.get_by_test_id("fn-unregister-yes").click()
            page.wait_for_url("**/plugin/failnotify")
            assert store.get_registration("sync_crm_contacts") is None

            _shoot_every_page(page, server.base_url, "light")
            assert BANNER not in page.content()
            assert console.errors == [], console.errors

            dark = browser.new_page(viewport={"width": 1400, "height": 1000}, color_scheme="dark")
            ui_login(dark, server.base_url, ADMIN, PASSWORD)
            dark_console = Console(dark)
            _shoot_every_page(dark, server.base_url, "dark")
            assert "dark" in (dark.locator("html").get_attribute("class") or ""), "the UI did not go dark"
            assert dark_console.errors == [], dark_console.errors
        finally:
            browser.close()
