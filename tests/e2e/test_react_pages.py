"""Every page of the React app, in Chromium against a real ``airflow api-server``, per auth manager and
colour mode: it renders its data inside the Airflow UI (no frame, no deprecation banner), in the UI's
colour mode, with no console error.

The pages: the nav app's Integrations, Configure, Error Management, Settings and Health, and the
"Failure notification" tab of a DAG's page. ``make test`` runs them under the FAB auth manager in light
and dark mode (tests/e2e/test_react_app.py works the whole workflow under the SimpleAuthManager); the
full matrix, both auth managers x light/dark x every page, is marked ``soak`` (``make soak``). One
api-server and one logged-in page per auth manager; each test loads its page afresh in its colour
mode. Screenshots go to test-artifacts/screenshots/react-<page>-<manager>-<mode>.png.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from airflow_failnotify.store import Store  # noqa: E402
from devtools.smtp_server import DevSmtpServer  # noqa: E402
from tests.fixtures.airflow_server import AirflowHome, ApiServer, screenshot  # noqa: E402
from tests.fixtures.browser import (  # noqa: E402
    BANNER,
    DEMO_DAGS,
    MAIL_CONN,
    MANAGERS,
    NEEDS_REACT_BUNDLE,
    Console,
    browser_page,
    record_failures,
    running_airflow,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300), NEEDS_REACT_BUNDLE]

DAG_ID = "sync_erp_orders"  # registered, with a failed task and run

# Text and background luminance (0 dark .. 1 light) of an element and of its first painted ancestor,
# through a canvas so that any CSS colour syntax comes out as RGB.
LUMINANCE = """(el) => {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 1;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const lum = (css) => {
    ctx.clearRect(0, 0, 1, 1); ctx.fillStyle = css; ctx.fillRect(0, 0, 1, 1);
    const [r, g, b, a] = ctx.getImageData(0, 0, 1, 1).data;
    return a === 0 ? null : (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
  };
  let bg = null;
  for (let node = el; node && bg === null; node = node.parentElement) {
    bg = lum(getComputedStyle(node).backgroundColor);
  }
  return { text: lum(getComputedStyle(el).color), background: bg === null ? 1 : bg };
}"""


@pytest.fixture(scope="module")
def seeded(store: Store) -> Store:
    """The store every server of this module shares: one registration, its failures and outbox."""
    from airflow_failnotify.core.config import parse_registration

    store.save_registration(parse_registration(
        {"integration": DAG_ID, "smtp_conn_id": MAIL_CONN, "recipients": "ops@example.com"}
    ))
    record_failures(store, DAG_ID)
    return store


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
    ui_airflow_template: AirflowHome, smtp: DevSmtpServer, seeded: Store,
) -> Iterator[ApiServer]:
    manager: str = request.param
    with running_airflow(ui_airflow_template, tmp_path_factory.mktemp(f"airflow-pages-{manager}"),
                         dags={"demo.py": DEMO_DAGS}, store=seeded, smtp=smtp,
                         auth_manager=MANAGERS[manager]) as api_server:
        yield api_server


@pytest.fixture(scope="module")
def ui(server: ApiServer) -> Iterator[tuple[Page, Console]]:
    with browser_page(server) as page:
        yield page, Console(page)


def _integrations(page: Page) -> None:
    from playwright.sync_api import expect

    expect(page.locator("[data-testid=fn-integrations] tbody tr")).to_have_count(3)
    expect(page.locator(f"[data-dag-id={DAG_ID}]")).to_contain_text("Registered (forward)")


def _configure(page: Page) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("fn-registered")).to_have_text("Registered for failure notification")
    expect(page.locator("input[name=recipients]")).to_have_value("ops@example.com")


def _errors(page: Page) -> None:
    from playwright.sync_api import expect

    expect(page.locator("[data-testid=fn-events] tbody tr")).to_have_count(2)
    expect(page.locator("[data-testid=fn-events]")).to_contain_text("ValueError: bad record")
    expect(page.locator("[data-testid=fn-outbox] tbody tr").first).to_be_visible()


def _settings(page: Page) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("fn-effective")).to_contain_text("(*/30 * * * * UTC)")


def _health(page: Page) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("fn-health-status")).to_contain_text("Overall")


def _dag_tab(page: Page) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("fn-dag-tab-status")).to_contain_text(f"registered for {DAG_ID}")
    expect(page.get_by_test_id("fn-dag-tab")).to_contain_text("ops@example.com")


# name -> (URL path, the test id of the page's root, what it must show)
PAGES: dict[str, tuple[str, str, Callable[[Page], None]]] = {
    "integrations": ("/plugin/failnotify", "fn-integrations", _integrations),
    "configure": (f"/plugin/failnotify/configure/{DAG_ID}", "fn-configure", _configure),
    "errors": ("/plugin/failnotify/errors", "fn-errors", _errors),
    "settings": ("/plugin/failnotify/settings", "fn-settings", _settings),
    "health": ("/plugin/failnotify/health", "fn-health", _health),
    "dag-tab": (f"/dags/{DAG_ID}/plugin/failnotify-dag", "fn-dag-tab", _dag_tab),
}
# `make test`: the FAB auth manager (the workflow test runs under the other one), light and dark.
# `make soak`: the full matrix, both auth managers x light/dark (marked soak as a whole, FAB again too).
# The auth manager is the only parameter of the module-scoped server (one api-server per manager).
MANAGER_CASES = [
    pytest.param("fab", id="fab"),
    *(pytest.param(manager, id=f"soak-{manager}", marks=pytest.mark.soak) for manager in sorted(MANAGERS)),
]


@pytest.mark.parametrize("name", list(PAGES))
@pytest.mark.parametrize("mode", ["light", "dark"])
@pytest.mark.parametrize("server", MANAGER_CASES, indirect=True)
def test_the_page_renders_its_data_in_the_airflow_ui(
    ui: tuple[Page, Console], server: ApiServer, mode: str, name: str
) -> None:
    from playwright.sync_api import expect

    page, console = ui
    path, root, shows = PAGES[name]
    console.take()  # what earlier pages logged is theirs
    page.emulate_media(color_scheme=mode)  # type: ignore[arg-type]
    page.goto(f"{server.base_url}{path}")
    expect(page.get_by_test_id(root)).to_be_visible(timeout=30_000)
    shows(page)
    assert page.locator("iframe").count() == 0, "the app must render in the page, not in a frame"
    assert BANNER not in page.content()
    assert re.search(rf"\b{mode}\b", page.locator("html").get_attribute("class") or ""), (
        f"the Airflow UI is not in {mode} mode"
    )
    lum = page.get_by_test_id(root).evaluate(LUMINANCE)
    dark = mode == "dark"
    assert (lum["text"] > 0.6 and lum["background"] < 0.3) if dark else (
        lum["text"] < 0.4 and lum["background"] > 0.7
    ), f"the page is not drawn in {mode} colours (luminance {lum})"
    manager = next(key for key, value in MANAGERS.items() if value == server.home.auth_manager)
    screenshot(page, f"react-{name}-{manager}-{mode}")
    assert console.take() == []
