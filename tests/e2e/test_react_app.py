"""The React app in the Airflow 3 UI, in Chromium against a real ``airflow api-server``.

Under the SimpleAuthManager in light mode: the whole seed workflow in the app (configure with bad input
refused at the field, Test with the mail arriving, Save, Update, the DAG tab, a DAG link landing on the
DAG's page, bulk, Error Management filters, Send now, Retry, the schedule reaching the notification DAG
at the running dag-processor's next parse, Unregister), with no console error and no deprecation banner;
then every page in dark mode. Screenshots of every page, light and dark, go to
test-artifacts/screenshots/react-*.png. One api-server for the module; the steps run in one test
because each builds on the last (a failure names the step in its message).
"""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from airflow_failnotify.constants import NOTIFICATION_DAG_ID  # noqa: E402
from airflow_failnotify.store import Store  # noqa: E402
from devtools.smtp_server import DevSmtpServer  # noqa: E402
from tests.fixtures.airflow_server import AirflowHome, ApiServer, screenshot, stop_group  # noqa: E402
from tests.fixtures.browser import (  # noqa: E402
    ADMIN,
    BANNER,
    DEMO_DAGS,
    MAIL_CONN,
    NEEDS_REACT_BUNDLE,
    PASSWORD,
    Console,
    browser_page,
    record_failures,
    running_airflow,
)
from tests.fixtures.waiting import wait_until  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300), NEEDS_REACT_BUNDLE]

# The notification DAG as deployments mount it: its schedule is read from the store at every parse.
NOTIFICATION_DAG_FILE = REPO_ROOT / "dags" / "failure_notification.py"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, ui_airflow_template: AirflowHome, smtp: DevSmtpServer,
    store: Store,
) -> Iterator[ApiServer]:
    notification_dag = NOTIFICATION_DAG_FILE.read_text(encoding="utf-8")
    dags = {"demo.py": DEMO_DAGS, "failure_notification.py": notification_dag}
    with running_airflow(ui_airflow_template, tmp_path_factory.mktemp("airflow-react"), dags=dags,
                         store=store, smtp=smtp, extra_env={"AIRFLOW__FAILNOTIFY__MAX_ATTEMPTS": "1"}) as api:
        yield api


# Chromium logs every non-2xx response as a console error; a 422 is the API refusing bad input at its
# field, which the workflow provokes on purpose. Anything else fails the test.
EXPECTED = "the server responded with a status of 422"


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

    record_failures(store, "sync_erp_orders")
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


def _dag(server: ApiServer, token: str) -> dict[str, Any]:
    """The notification DAG as Airflow's REST API reports it."""
    request = urllib.request.Request(
        f"{server.base_url}/api/v2/dags/{NOTIFICATION_DAG_ID}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def _schedule_reaches_the_dag(page: Page, server: ApiServer, store: Store) -> None:
    """Settings -> Every hour; the running dag-processor's next parse gives the DAG that schedule."""
    from playwright.sync_api import expect

    token = server.token(ADMIN, PASSWORD)
    before = _dag(server, token)
    assert before["timetable_summary"] == "Asset or */30 * * * *", before
    # A dag-processor parsing every 5 s: first its own parse of the unchanged file, then the change.
    processor = server.home.spawn(
        "dag-processor", "dag-processor", env={"AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5"}
    )
    try:
        wait_until(lambda: _dag(server, token)["last_parsed_time"] != before["last_parsed_time"],
                   timeout=90, interval=1, message="the dag-processor's first parse")
        assert _dag(server, token)["timetable_summary"] == before["timetable_summary"]

        _app(page, server.base_url, "/settings")
        page.get_by_test_id("fn-schedule").select_option("0 * * * *")
        page.get_by_test_id("fn-schedule-save").click()
        expect(page.get_by_test_id("fn-notice-success")).to_contain_text("Every hour")
        expect(page.get_by_test_id("fn-effective")).to_contain_text("(0 * * * * UTC)")
        assert store.get_setting("notification_schedule") == "0 * * * *"
        screenshot(page, "react-settings-light")

        wait_until(lambda: _dag(server, token)["timetable_summary"] == "Asset or 0 * * * *", timeout=60,
                   interval=1, message="the new schedule on the notification DAG")
    except TimeoutError as err:
        log = (server.home.path / "dag-processor.log").read_text(errors="replace")[-3000:]
        pytest.fail(f"{err}: the DAG is {_dag(server, token)}\n--- dag-processor\n{log}")
    finally:
        stop_group(processor)
    # What the DAG file's parse keeps (the health reports it). The DAG's page in the UI shows the asset
    # of its asset-or-time schedule, not the cron: the REST answer above is the check, this is a record.
    cache = json.loads((server.home.path / "failnotify-spool" / "schedule.json").read_text())
    assert (cache["cron"], cache["source"]) == ("0 * * * *", "settings view"), cache
    page.goto(f"{server.base_url}/dags/{NOTIFICATION_DAG_ID}")
    expect(page.get_by_text(NOTIFICATION_DAG_ID).first).to_be_visible(timeout=30_000)
    screenshot(page, "react-notification-dag-hourly-light")


def test_the_seed_workflow_in_the_react_app(server: ApiServer, smtp: DevSmtpServer, store: Store) -> None:
    from playwright.sync_api import expect

    with browser_page(server) as page:
        console = Console(page, expected=[EXPECTED])
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
        _schedule_reaches_the_dag(page, server, store)

        _app(page, server.base_url, "/configure/sync_crm_contacts")
        page.get_by_test_id("fn-unregister").click()
        page.get_by_test_id("fn-unregister-yes").click()
        page.wait_for_url("**/plugin/failnotify")
        assert store.get_registration("sync_crm_contacts") is None

        _shoot_every_page(page, server.base_url, "light")
        assert BANNER not in page.content()
        assert console.errors == [], console.errors

    with browser_page(server, color_scheme="dark") as dark:
        dark_console = Console(dark)
        _shoot_every_page(dark, server.base_url, "dark")
        assert "dark" in (dark.locator("html").get_attribute("class") or ""), "the UI did not go dark"
        assert dark_console.errors == [], dark_console.errors
