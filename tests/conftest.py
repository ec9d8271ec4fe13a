"""Root conftest: session environment, shared fixture modules, automatic markers.

The environment is set at import time, before any test module (or Airflow) is imported, so that the
whole session - and every subprocess it starts (airflow CLI, scheduler, demo) - uses a throwaway
AIRFLOW_HOME and never touches ~/airflow or a database configured in the caller's shell.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.mail",
    "tests.fixtures.store",
    "tests.fixtures.airflow_env",
    "tests.fixtures.browser",
]

TESTS_DIR = Path(__file__).resolve().parent
CORE_DIR = TESTS_DIR / "core"

# --------------------------------------------------------------------------------------------------
# Session environment (import time)
# --------------------------------------------------------------------------------------------------
# Drop Airflow settings inherited from the caller's shell: a developer's AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
# or AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN must never point the suite at a real database.
for _name in list(os.environ):
    if _name.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")) or _name == "AIRFLOW_CONFIG":
        del os.environ[_name]

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="failnotify-test-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# Deliberately NOT set: AIRFLOW__CORE__UNIT_TEST_MODE (it changes Airflow's behaviour; the suite tests the
# real thing). Removed above if inherited.


def pytest_unconfigure(config: pytest.Config) -> None:
    if os.environ.get("FAILNOTIFY_KEEP_TEST_HOME"):
        print(f"\nfailnotify: test AIRFLOW_HOME kept at {AIRFLOW_HOME}")
        return
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# Automatic markers
# --------------------------------------------------------------------------------------------------
@pytest.hookimpl(tryfirst=True)  # before pytest's own -m deselection
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.path)).resolve()
        if path.is_relative_to(CORE_DIR):
            item.add_marker(pytest.mark.fast)
        if "postgres_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
