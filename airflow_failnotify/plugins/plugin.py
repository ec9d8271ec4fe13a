"""The Airflow plugin of airflow-failnotify: the React app (nav entry and DAG tab) over the JSON API, the
FAB views (Airflow's legacy path, same service layer), the auth bridge blueprint, listeners, and the one
FastAPI app (ingest, health, JSON API: :mod:`airflow_failnotify.api.app`).

Airflow loads it through the ``airflow.plugins`` entry point declared in setup.py. Deployments that
mount a plugins folder instead use ``plugins/failnotify_plugin.py``, which exposes this class only when
the entry point is not installed (see :func:`installed_through_entry_point`).

Nothing here reads configuration or touches a database at import: Airflow imports plugins in every
process, task processes included.
"""

from __future__ import annotations

import importlib.metadata
import logging
from types import ModuleType
from typing import Any

from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)

PLUGIN_NAME = "failnotify"
PLUGIN_CLASS_PATH = "airflow_failnotify.plugins.plugin:FailnotifyPlugin"
MENU_CATEGORY = "Failure Notification"
DAG_TAB_NAME = "Failure notification"
# The React app's routes in the Airflow UI: /plugin/failnotify (nav) and /dags/<id>/plugin/failnotify-dag.
NAV_URL_ROUTE = "failnotify"
DAG_URL_ROUTE = "failnotify-dag"
# The FAB views (Airflow's legacy path) stay reachable from the nav, in the UI's frame.
LEGACY_NAME = "Failure Notification (legacy views)"
LEGACY_HREF = "/pluginsv2/failnotify/"
LEGACY_URL_ROUTE = "failnotify-legacy"


def _listeners() -> list[ModuleType | object]:
    """The capture listener module, if it is installed (another part of the package provides it), and
    the watchdog's (it starts the watchdog thread in the scheduler)."""
    from airflow_failnotify.listeners import watchdog

    try:
        from airflow_failnotify.listeners import capture
    except ImportError:
        log.debug("airflow_failnotify.listeners.capture is not available; no capture listener registered")
        return [watchdog]
    return [capture, watchdog]


def installed_through_entry_point() -> bool:
    """Whether an installed distribution registers this plugin through the ``airflow.plugins`` entry point.

    Airflow registers plugins by name, plugins folder first: a second plugin with the same name is
    skipped with a warning and an entry in the plugin import errors (api-server, scheduler), and in
    task processes the Task SDK's loader stops registering the rest of that batch. So the plugins-folder
    file must not expose the class when the entry point already does.
    """
    try:
        entry_points = importlib.metadata.entry_points(group="airflow.plugins")
    except Exception:  # a broken distribution on sys.path must not break plugin loading
        log.warning("Could not read the airflow.plugins entry points", exc_info=True)
        return False
    return any(entry_point.value.replace(" ", "") == PLUGIN_CLASS_PATH for entry_point in entry_points)


class _BuiltOnFirstUse:
    """A plugin attribute built when Airflow first reads it.

    Airflow imports plugins in every task process, where only the listener is used; importing the
    views (Flask-AppBuilder) there would cost about 0.6 s per task. The api-server reads these
    attributes and so imports the views; task processes never do.
    """

    def __init__(self, build: Any) -> None:
        self._build = build
        self._value: list[Any] | None = None

    def __get__(self, instance: object, owner: type | None = None) -> list[Any]:
        if self._value is None:
            self._value = self._build()
        return self._value


def _appbuilder_views() -> list[Any]:
    from airflow_failnotify.plugins.views import (
        BulkView,
        ConfigureView,
        ErrorsView,
        IntegrationsView,
        SettingsView,
    )

    return [
        {"name": "Integrations", "category": MENU_CATEGORY, "view": IntegrationsView()},
        {"name": "Error Management", "category": MENU_CATEGORY, "view": ErrorsView()},
        {"name": "Settings", "category": MENU_CATEGORY, "view": SettingsView()},
        {"view": ConfigureView()},
        {"view": BulkView()},
    ]


def _flask_blueprints() -> list[Any]:
    from airflow_failnotify.plugins.auth import bridge_blueprint

    return [bridge_blueprint]


def _fastapi_apps() -> list[Any]:
    from airflow_failnotify.api.app import fastapi_apps

    return fastapi_apps()


def react_apps() -> list[dict[str, Any]]:
    """The React app twice: the nav entry and the DAG tab.

    The Airflow UI ``import()``s ``bundle_url`` and then takes the component from ``globalThis[name]``
    (or ``globalThis.AirflowPlugin``, which it clears before each import). A module URL is evaluated
    once per page, so each entry gets its own URL (``?view=``); otherwise the second entry would find
    nothing to take.
    """
    from airflow_failnotify.api.web import BUNDLE_URL

    return [
        {
            "name": MENU_CATEGORY,
            "bundle_url": f"{BUNDLE_URL}?view=nav",
            "destination": "nav",
            "url_route": NAV_URL_ROUTE,
        },
        {
            "name": DAG_TAB_NAME,
            "bundle_url": f"{BUNDLE_URL}?view=dag",
            "destination": "dag",
            "url_route": DAG_URL_ROUTE,
        },
    ]


class FailnotifyPlugin(AirflowPlugin):
    """Failure notification: configuration views, Error Management, settings, and failure capture."""

    name = PLUGIN_NAME
    appbuilder_views = _BuiltOnFirstUse(_appbuilder_views)
    flask_blueprints = _BuiltOnFirstUse(_flask_blueprints)
    fastapi_apps = _BuiltOnFirstUse(_fastapi_apps)
    # The nav entry is the React app; the FAB views keep a second, labelled entry.
    react_apps: list[Any] = react_apps()
    external_views: list[Any] = [
        {"name": LEGACY_NAME, "href": LEGACY_HREF, "destination": "nav", "url_route": LEGACY_URL_ROUTE}
    ]
    listeners: list[ModuleType | object] = _listeners()
