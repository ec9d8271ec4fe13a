"""Browser tests: a real ``airflow api-server``, the Airflow UI login, the plugin from the nav.

Chromium (Debian's, through Playwright) logs in on the UI's own login page (SimpleAuthManager, the
one ``airflow standalone`` uses), opens Plugins -> Failure Notification (legacy views), and works the
plugin's FAB pages inside the UI's frame: configure an integration (a refused field, Test with the mail
arriving at a real SMTP server, Save), bulk-configure two DAGs, Error Management filters and Send now,
the schedule, and unregister. One api-server for the whole module (module-scoped fixtures); the tests
run in file order and build on each other. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from airflow_failnotify.store import Store  # noqa: E402
from devtools.smtp_server import DevSmtpServer  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import FrameLocator, Page

from tests.fixtures.airflow_server import AirflowHome, ApiServer, screenshot  # noqa: E402
from tests.fixtures.browser import MAIL_CONN, browser_page, running_airflow  # noqa: E402
from tests.fixtures.waiting import wait_until  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

DAGS = """
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

for name in ("sync_crm_contacts", "sync_erp_orders", "export_billing"):
    with DAG(name, schedule=None, description=f"{name} <i>demo</i>"):
        EmptyOperator(task_id="t")
"""


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, ui_airflow_template: AirflowHome, smtp: DevSmtpServer,
    store: Store,
) -> Iterator[ApiServer]:
    with running_airflow(ui_airflow_template, tmp_path_factory.mktemp("airflow-e2e"), dags={"demo.py": DAGS},
                         store=store, smtp=smtp) as api_server:
        yield api_server


def test_ui_login_then_plugin_from_the_nav_shows_integrations(server: ApiServer) -> None:
    from playwright.sync_api import expect

    assert server.startup_seconds is not None and server.startup_seconds < 60
    with browser_page(server, viewport=(1400, 900)) as page:
        screenshot(page, "00-airflow-home")

        page.get_by_role("button", name="Plugins").click()
        page.get_by_role("menuitem", name="Failure Notification (legacy views)").click()
        page.wait_for_url("**/plugin/failnotify-legacy")
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
        screenshot(page, "03-configure-form")


def test_pluginsv2_without_ui_login_redirects_to_login(server: ApiServer) -> None:
    with browser_page(server, login=False) as page:
        page.goto(f"{server.base_url}/pluginsv2/failnotify/")
        page.wait_for_url("**/login**")
        assert "/auth/login" in page.url


# ------------------------------------------------------------------------------------ the plugin's pages
# The tests below share one logged-in page and run in file order: each starts where the previous left.


@pytest.fixture(scope="module")
def ui(server: ApiServer) -> Iterator[Page]:
    with browser_page(server, viewport=(1400, 1400)) as page:
        page.set_default_timeout(30_000)
        yield page


def _frame(page: Page) -> FrameLocator:
    return page.frame_locator("iframe")


def _open_plugin(page: Page) -> FrameLocator:
    """Plugins -> Failure Notification (legacy views): the FAB Integrations page in the UI's frame."""
    from playwright.sync_api import expect

    page.get_by_role("button", name="Plugins").click()
    page.get_by_role("menuitem", name="Failure Notification (legacy views)").click()
    frame = _frame(page)
    expect(frame.locator("h2.failnotify-title")).to_have_text("Integrations")
    return frame


def _wait_for_mail(smtp: DevSmtpServer, count: int, timeout: float = 15) -> None:
    with contextlib.suppress(TimeoutError):  # the assertion below says which mails did arrive
        wait_until(lambda: len(smtp.messages) >= count, timeout=timeout, message=f"{count} mail(s)")
    assert len(smtp.messages) >= count, [m.message["Subject"] for m in smtp.messages]


def test_configure_refuses_a_bad_field_tests_the_mail_then_saves(
    ui: Page, smtp: DevSmtpServer, store: Store
) -> None:
    from playwright.sync_api import expect

    page = ui
    frame = _open_plugin(page)
    frame.locator('tr[data-dag-id="sync_erp_orders"] a.failnotify-configure').click()
    expect(frame.locator("h2.failnotify-title")).to_have_text(
        "Configure Failure Notification: sync_erp_orders"
    )
    # Defaults of the seed: error trace Yes, global + immediate, processing; backward settings hidden.
    expect(frame.locator("#include_error_trace")).to_have_value("yes")
    expect(frame.locator("#threshold-group")).to_be_hidden()
    expect(frame.locator("#failnotify-backward")).to_be_hidden()
    expect(frame.locator("a.failnotify-new-server").first).to_have_attribute("target", "_top")
    screenshot(page, "10-configure-new")

    frame.locator("#smtp_conn_id").select_option(MAIL_CONN)
    frame.locator("#recipients").fill("ops@example.com, not-an-address")
    frame.locator("#cc").fill("audit@example.com")
    frame.locator("#subject_prefix").fill("[ERP]")
    frame.locator("#inactivity").fill("2h")
    frame.locator("#notify_immediately").uncheck()
    expect(frame.locator("#threshold-group")).to_be_visible()  # shown only when not immediate
    frame.locator("#failure_count_threshold").fill("3")
    frame.locator("#same_for_backward").uncheck()
    expect(frame.locator("#failnotify-backward")).to_be_visible()
    frame.locator("#same_for_backward").check()
    frame.locator("#failnotify-save").click()
    expect(frame.locator("#error-recipients")).to_contain_text(
        "'not-an-address' is not a valid email address"
    )
    expect(frame.locator("#failnotify-form-errors")).to_contain_text("Nothing was saved")
    expect(frame.locator("#recipients")).to_have_value("ops@example.com, not-an-address")  # the user's input
    assert store.get_registration("sync_erp_orders") is None
    screenshot(page, "11-configure-refused-field")

    frame.locator("#recipients").fill("ops@example.com")
    frame.locator("#failnotify-test").click()
    expect(frame.locator(".failnotify-test-result")).to_contain_text("Test email sent through mail_test")
    _wait_for_mail(smtp, 1)
    mail = smtp.messages[-1]
    assert sorted(mail.rcpt_tos) == ["audit@example.com", "ops@example.com"]
    assert mail.message["Subject"] == "[ERP] Test notification: sync_erp_orders (forward)"
    assert store.get_registration("sync_erp_orders") is None  # Test does not save
    screenshot(page, "12-configure-test-sent")

    frame.locator("#failnotify-save").click()
    expect(frame.locator("#failnotify-status")).to_contain_text("registered for this integration")
    expect(frame.locator("#failnotify-save")).to_have_text("Update")
    reg = store.get_registration("sync_erp_orders")
    assert reg is not None and reg.forward.recipients == ("ops@example.com",)
    assert (reg.forward.global_.notify_immediately, reg.forward.global_.failure_count_threshold) == (False, 3)
    assert reg.forward.global_.inactivity_minutes == 120
    screenshot(page, "13-configure-saved")


def test_bulk_configure_two_dags(ui: Page, store: Store) -> None:
    from playwright.sync_api import expect

    page = ui
    frame = _frame(page)
    frame.locator("#failnotify-tabs a", has_text="Integrations").click()
    expect(frame.locator("h2.failnotify-title")).to_have_text("Integrations")
    for dag_id in ("sync_crm_contacts", "export_billing", "sync_erp_orders"):
        frame.locator(f'input.failnotify-select[value="{dag_id}"]').check()
    screenshot(page, "20-integrations-selected")
    frame.locator("#failnotify-configure-selected").click()
    expect(frame.locator("#failnotify-bulk-skip")).to_contain_text("sync_erp_orders: already configured")
    frame.locator("#smtp_conn_id").select_option(MAIL_CONN)
    frame.locator("#recipients").fill("team@example.com")
    frame.locator("#subject_prefix").fill("[Bulk]")
    screenshot(page, "21-bulk-form")
    frame.locator("#failnotify-bulk-save").click()
    expect(frame.locator("#failnotify-bulk-summary")).to_contain_text("2 integrations configured, 1 skipped")
    expect(frame.locator("#failnotify-bulk-configured li")).to_have_count(2)
    expect(frame.locator("#failnotify-bulk-skipped")).to_contain_text("sync_erp_orders: already configured")
    screenshot(page, "22-bulk-result")
    for dag_id in ("sync_crm_contacts", "export_billing"):
        reg = store.get_registration(dag_id)
        assert reg is not None and reg.forward.global_.enabled and reg.forward.processing.enabled


def test_error_management_filters_and_send_now(ui: Page, smtp: DevSmtpServer, store: Store) -> None:
    from playwright.sync_api import expect

    from airflow_failnotify.core import rules
    from airflow_failnotify.core.model import EventKind
    from airflow_failnotify.service.evaluation import evaluate
    from airflow_failnotify.store import EventRecord

    now = datetime.now(timezone.utc)
    store.record_events(
        [
            EventRecord(
                kind=EventKind.TASK_FAILED,
                dag_id="export_billing",
                run_id="manual__1",
                source="task",
                occurred_at=now - timedelta(minutes=20),
                task_id="export",
                try_number=1,
                max_tries=1,
                error_message="PermissionError: <denied>",
                traceback='File "export.py", line 9\nPermissionError',
            ),
            EventRecord(
                kind=EventKind.RUN_FAILED,
                dag_id="export_billing",
                run_id="manual__1",
                source="scheduler",
                occurred_at=now - timedelta(minutes=19),
                error_message="run failed",
            ),
            EventRecord(
                kind=EventKind.RUN_FAILED,
                dag_id="sync_crm_contacts",
                run_id="manual__2",
                source="scheduler",
                occurred_at=now - timedelta(days=3),
                error_message="old failure",
            ),
        ]
    )
    store.log_error(
        "send",
        "SMTP server 10.0.0.9:25 refused the sender",
        server="mail_old",
        integration="export_billing",
        now=now - timedelta(minutes=5),
    )
    evaluate(store, rules.evaluate, lambda ids: {}, now=now)

    page = ui
    frame = _frame(page)
    frame.locator("#failnotify-tabs a", has_text="Integrations").click()
    expect(frame.locator('tr[data-dag-id="export_billing"] svg.failnotify-sparkline')).to_be_visible()
    screenshot(page, "30-integrations-registered-sparklines")

    frame.locator("#failnotify-tabs a", has_text="Error Management").click()
    expect(frame.locator("h2.failnotify-title")).to_have_text("Error Management / Global Failures")
    expect(frame.locator("#failnotify-events tbody tr")).to_have_count(3)
    screenshot(page, "31-error-management-all")

    frame.locator("#type").select_option("integration")
    frame.locator("#integration").select_option("export_billing")
    frame.locator("#failnotify-filter").click()
    expect(frame.locator("#failnotify-events tbody tr")).to_have_count(2)
    expect(frame.locator("#failnotify-other-errors")).to_have_count(0)
    first = frame.locator("#failnotify-events tbody tr").nth(1)
    first.locator("summary").click()
    expect(first.locator("pre.failnotify-trace")).to_contain_text('File "export.py", line 9')
    expect(first).to_contain_text("PermissionError: <denied>")  # escaped, shown as text
    screenshot(page, "32-error-management-filtered-expanded")

    frame.locator("#type").select_option("other")
    frame.locator("#failnotify-filter").click()
    expect(frame.locator("#failnotify-other-errors tbody tr")).to_have_count(1)
    expect(frame.locator("#failnotify-other-errors")).to_contain_text("mail_old")

    frame.locator("#ostate").select_option("pending")
    frame.locator("#failnotify-filter").click()
    pending = frame.locator('#failnotify-outbox tr[data-state="pending"]')
    expect(pending.first).to_be_visible()
    screenshot(page, "33-error-management-outbox-pending")
    before = len(smtp.messages)
    pending.first.locator("button.failnotify-send-now").click()
    expect(frame.locator(".alert-success", has_text="was sent")).to_be_visible()
    _wait_for_mail(smtp, before + 1)
    assert smtp.messages[-1].rcpt_tos == ["team@example.com"]
    screenshot(page, "34-error-management-sent")


def test_settings_change_the_schedule(ui: Page, store: Store) -> None:
    from playwright.sync_api import expect

    from airflow_failnotify.core import schedule

    page = ui
    frame = _frame(page)
    frame.locator("#failnotify-tabs a", has_text="Settings").click()
    expect(frame.locator("#failnotify-effective")).to_contain_text("*/30 * * * *")
    expect(frame.locator("#failnotify-source")).to_have_text("default")
    expect(frame.locator("#failnotify-last-run")).to_contain_text("manual")  # the Send now pass
    expect(frame.locator("#failnotify-next-run")).to_contain_text("UTC")
    frame.locator("#schedule").select_option("*/5 * * * *")
    frame.locator("#failnotify-settings-save").click()
    expect(frame.locator("#failnotify-source")).to_have_text("settings view")
    expect(frame.locator("#failnotify-effective")).to_contain_text("Every 5 minutes")
    assert store.get_setting(schedule.SETTING_KEY) == "*/5 * * * *"
    screenshot(page, "40-settings")


def test_unregister_with_confirmation(ui: Page, store: Store) -> None:
    from playwright.sync_api import expect

    page = ui
    frame = _frame(page)
    frame.locator("#failnotify-tabs a", has_text="Integrations").click()
    frame.locator('tr[data-dag-id="sync_erp_orders"] a.failnotify-configure').click()
    frame.locator("#failnotify-unregister").click()
    expect(frame.locator("#failnotify-unregister-confirm")).to_contain_text("Stop failure notification")
    assert store.get_registration("sync_erp_orders") is not None  # not before the confirmation
    screenshot(page, "50-unregister-confirm")
    frame.locator("#failnotify-unregister-yes").click()
    expect(frame.locator("h2.failnotify-title")).to_have_text("Integrations")
    expect(frame.locator('tr[data-dag-id="sync_erp_orders"] .failnotify-status')).to_contain_text(
        "Not registered"
    )
    assert store.get_registration("sync_erp_orders") is None
    screenshot(page, "51-unregistered")
