"""Module-scoped fixtures of the browser modules: one dev SMTP server and one store per module.

``store`` here shadows the root's function-scoped ``store`` (tests/fixtures/store.py) in this package:
a browser module's api-server and its tests share one store for the whole module.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_failnotify.store import Store
from devtools.smtp_server import DevSmtpServer
from tests.fixtures.browser import sqlite_store


@pytest.fixture(scope="module")
def smtp() -> Iterator[DevSmtpServer]:
    with DevSmtpServer() as server:
        yield server


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with sqlite_store(tmp_path_factory.mktemp("failnotify-store")) as store:
        yield store
