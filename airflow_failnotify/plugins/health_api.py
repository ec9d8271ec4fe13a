"""The health as JSON for external monitors: a FastAPI app the plugin mounts at ``/failnotify/health``.

- ``GET /failnotify/health`` (no login): ``{"status", "last_pass_age_seconds", "checked_at"}`` and
  nothing that names an integration, a server or an address. HTTP 200 for ok and warn, 503 for bad,
  so a plain uptime check or a dead man's switch can key on the status code.
- ``GET /failnotify/health/details``: the detailed report (every check, flags, thresholds), for an
  authenticated admin only (the UI's ``_token`` cookie or ``Authorization: Bearer <JWT>``), checked
  with Airflow's own dependency (``get_user``) and the auth manager's configuration/connection rights,
  like the views' admin pages.

Airflow mounts plugin apps without authentication; the detail route adds it. The report is cached for
a few seconds so a monitor polling often does not multiply the work.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import JSONResponse

from airflow_failnotify.core.health import HealthReport, HealthStatus

URL_PREFIX = "/failnotify/health"
CACHE_SECONDS = 5.0


def _report() -> HealthReport:
    from airflow_failnotify.service.health import cached_health_report

    return cached_health_report(CACHE_SECONDS)


def _status_code(report: HealthReport) -> int:
    return 503 if report.status is HealthStatus.BAD else 200


def _require_admin() -> Any:
    from airflow.api_fastapi.core_api.security import get_user

    def check(user: Any = Depends(get_user)) -> Any:  # noqa: B008 - FastAPI's dependency idiom
        from airflow_failnotify.lookups import access

        if not access.is_admin(user):
            raise HTTPException(status_code=403, detail="the detailed failnotify health is for admins")
        return user

    return check


def create_app() -> FastAPI:
    app = FastAPI(title="failnotify health", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/")
    def minimal() -> JSONResponse:
        report = _report()
        return JSONResponse(report.minimal_dict(), status_code=_status_code(report))

    @app.get("/details", dependencies=[Depends(_require_admin())])
    def details() -> JSONResponse:
        report = _report()
        return JSONResponse(report.to_dict(), status_code=_status_code(report))

    return app
