"""Authentication and authorization of every API route.

- Who: Airflow's ``get_user`` dependency (``airflow.api_fastapi.core_api.security``): an
  ``Authorization: Bearer <JWT>`` header (scripts: ``POST /auth/token``), else the UI's ``_token``
  cookie; validated by the configured auth manager (signature, expiry, revocation). Missing or
  expired: 401; forged: 403.
- CSRF: a browser sends the cookie by itself, so a write (POST, PUT, PATCH, DELETE) authenticated by
  the cookie must also carry ``X-Failnotify-CSRF`` with the user's token from ``GET /session``
  (an HMAC of the user id under ``[api] secret_key``, unreadable from another origin), and an
  ``Origin`` header, when sent, must be this server. Bearer requests need neither: no browser adds
  that header on its own.
- What: the auth manager's checks (:mod:`airflow_failnotify.lookups.access`): DAG read to read an
  integration, DAG edit to change it, admin level for Settings, Send now, Retry and the detailed health.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request

from airflow_failnotify.lookups import access

CSRF_HEADER = "X-Failnotify-CSRF"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _secret() -> bytes:
    from airflow.configuration import conf

    return (conf.get("api", "secret_key", fallback="") or "failnotify").encode()


def csrf_token(user: Any) -> str:
    """The CSRF token of ``user``: stable for the user, secret to this deployment."""
    message = f"failnotify-csrf:{user.get_id()}:{user.get_name()}".encode()
    return hmac.new(_secret(), message, hashlib.sha256).hexdigest()


def _bearer(request: Request) -> bool:
    scheme, _, credentials = (request.headers.get("authorization") or "").partition(" ")
    return scheme.lower() == "bearer" and bool(credentials.strip())


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _check_csrf(request: Request, user: Any) -> None:
    if request.method in SAFE_METHODS or _bearer(request):
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not _same_origin(request) or not hmac.compare_digest(sent, csrf_token(user)):
        raise HTTPException(
            status_code=403,
            detail=f"CSRF check failed: send {CSRF_HEADER} (from GET /session) or use a Bearer token",
        )


def _get_user() -> Callable[..., Awaitable[Any]]:
    from airflow.api_fastapi.core_api.security import get_user

    return get_user


async def authenticated(request: Request, user: Any = Depends(_get_user())) -> Any:  # noqa: B008
    """The authenticated user of this request (CSRF-checked for cookie writes)."""
    _check_csrf(request, user)
    return user


def admin(user: Any = Depends(authenticated)) -> Any:  # noqa: B008 - FastAPI's dependency idiom
    if not access.is_admin(user):
        raise HTTPException(status_code=403, detail="this needs admin-level rights (Op or Admin role)")
    return user


def dag_reader(dag_id: str, user: Any = Depends(authenticated)) -> Any:  # noqa: B008
    if not access.can_access_dag(user, dag_id):
        raise HTTPException(status_code=403, detail=f"you may not see the integration {dag_id!r}")
    return user


def dag_editor(dag_id: str, user: Any = Depends(authenticated)) -> Any:  # noqa: B008
    if not access.can_access_dag(user, dag_id, write=True):
        raise HTTPException(
            status_code=403, detail=f"you may not change the failure notification of {dag_id!r}"
        )
    return user


def actor_of(user: Any, source: str = "api") -> Any:
    """The audit trail's name for an API caller (the Airflow user; the source says it came by the API)."""
    from airflow_failnotify.store import Actor

    try:
        name = str(user.get_name() or "")
    except Exception:  # an auth manager whose user has no name
        name = ""
    return Actor(name=name or "unknown user", source=source)
