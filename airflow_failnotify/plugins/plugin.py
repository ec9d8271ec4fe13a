"""The Airflow plugin of airflow-failnotify: FAB views, the auth bridge blueprint, the nav entry, listeners,
and the FastAPI app (the ingest API, :mod:`airflow_failnotify.api.app`).

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
# Path of the Integrations page inside the api-server (the FAB app is mounted at /pluginsv2).
INTEGRATIONS_HREF = "/pluginsv2/failnotify/"


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


class FailnotifyPlugin(AirflowPlugin):
    """Failure notification: configuration views, Error Management, settings, and failure capture."""

    name = PLUGIN_NAME
    appbuilder_views = _BuiltOnFirstUse(_appbuilder_views)
    flask_blueprints = _BuiltOnFirstUse(_flask_blueprints)
    fastapi_apps = _BuiltOnFirstUse(_fastapi_apps)
    external_views: list[Any] = [
        {
            "name": MENU_CATEGORY,
            "href": INTEGRATIONS_HREF,
            "destination": "nav",
            "url_route": "failnotify",
        }
    ]
    listeners: list[ModuleType | object] = _listeners()
