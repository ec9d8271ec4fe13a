"""``GET /health``: the detailed health report (every check, flags, thresholds), for admins.

The minimal status for external monitors stays at ``/failnotify/health`` (no login, no names).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from airflow_failnotify.api import security

router = APIRouter(tags=["health"])
CACHE_SECONDS = 5.0


@router.get("/health", summary="The detailed failnotify health (admin)")
def health(user: Any = Depends(security.admin)) -> dict[str, Any]:  # noqa: B008
    from airflow_failnotify.service.health import cached_health_report

    return dict(cached_health_report(CACHE_SECONDS).to_dict())
