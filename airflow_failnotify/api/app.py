"""The one FastAPI app the plugin mounts on the api-server, at :data:`URL_PREFIX`.

Airflow mounts plugin ``fastapi_apps`` on its root app WITHOUT authentication: every router here
authenticates its own requests (the ingest API by the caller's task identity). Another router of the
package is one more ``include_router`` or ``mount`` line here, under its own prefix.
"""

from __future__ import annotations

from typing import Any

URL_PREFIX = "/failnotify"
INGEST_PREFIX = "/ingest"  # so the ingest API is at /failnotify/ingest (settings.INGEST_PREFIX)
HEALTH_PREFIX = "/health"  # the health JSON for monitors, at /failnotify/health
WEB_PREFIX = "/api"  # the React app's JSON API, at /failnotify/api (api/web.py)


def create_app() -> Any:
    from fastapi import FastAPI

    from airflow_failnotify.api import ingest, web
    from airflow_failnotify.plugins import health_api

    app = FastAPI(title="airflow-failnotify", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(ingest.router, prefix=INGEST_PREFIX)
    app.mount(HEALTH_PREFIX, health_api.create_app())
    app.mount(WEB_PREFIX, web.create_app())
    return app


def fastapi_apps() -> list[dict[str, Any]]:
    """The plugin's ``fastapi_apps`` value (built when the api-server reads it, never in tasks)."""
    return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "failnotify"}]
