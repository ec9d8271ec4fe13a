"""``GET /session``: who is logged in, what they may do, and their CSRF token for cookie writes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from airflow_failnotify.api import security
from airflow_failnotify.lookups import access

router = APIRouter(tags=["session"])


@router.get("/session", summary="The logged-in user, their rights and CSRF token")
def session(user: Any = Depends(security.authenticated)) -> dict[str, Any]:  # noqa: B008
    return {
        "username": user.get_name(),
        "is_admin": access.is_admin(user),
        "csrf_header": security.CSRF_HEADER,
        "csrf_token": security.csrf_token(user),
    }
