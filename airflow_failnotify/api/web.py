"""The JSON API's FastAPI app (mounted at ``/failnotify/api``): routers, authenticated OpenAPI, the bundle."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from airflow_failnotify.api import security
from airflow_failnotify.api.routes import bulk, configuration, errors, health, integrations, session, settings
from airflow_failnotify.exceptions import FailnotifyError

log = logging.getLogger(__name__)

URL_PREFIX = "/failnotify/api"  # where api/app.py mounts this app
# The built React bundle (package data; `make ui` builds it from ui/).
BUNDLE_DIR = Path(__file__).resolve().parents[1] / "plugins" / "static" / "ui"
BUNDLE_FILE = "failnotify.umd.js"
# Relative to the UI's <base href> (the UI resolves it against document.baseURI): works under a base path.
BUNDLE_URL = f"{URL_PREFIX.lstrip('/')}/ui/{BUNDLE_FILE}"
ROUTERS = (session, integrations, configuration, bulk, errors, settings, health)


def _store_unavailable(request: Request, err: Exception) -> JSONResponse:
    log.warning("failnotify API: %s", err)
    return JSONResponse({"detail": f"Failure notification store unavailable: {err}"}, status_code=503)


def create_app() -> FastAPI:
    app = FastAPI(
        title="airflow-failnotify",
        description="Failure notification of Airflow DAGs: integrations, configuration, errors, outbox, "
        "settings and health. Authenticate with the Airflow UI's JWT (Authorization: Bearer, from "
        "POST /auth/token); cookie-authenticated writes need the X-Failnotify-CSRF header.",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    for module in ROUTERS:
        app.include_router(module.router)
    app.add_exception_handler(FailnotifyError, _store_unavailable)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(user: Any = Depends(security.authenticated)) -> dict[str, Any]:  # noqa: B008
        return app.openapi()

    # Static code, no data: loaded by the Airflow UI with import() before anything is rendered.
    app.mount("/ui", StaticFiles(directory=BUNDLE_DIR, check_dir=False), name="ui")
    return app
