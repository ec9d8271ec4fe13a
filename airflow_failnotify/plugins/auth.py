"""Auth bridge between the Airflow 3 UI and the plugin's FAB views served under ``/pluginsv2``.

Airflow 3 serves Flask-AppBuilder views of plugins from a separate Flask app mounted at ``/pluginsv2``.
Out of the box that app does not know who is logged in to the UI, its ``session`` cookie collides with
the FAB auth manager's ``/auth`` app, and under the SimpleAuthManager every protected view fails with
HTTP 500 because ``g.user`` is never set. The bridge fixes all three:

1. ``bridge_blueprint`` (registered through the plugin's ``flask_blueprints``) renames the /pluginsv2
   app's session cookie when it is registered, so the two Flask apps stop overwriting each other.
2. :func:`authenticate`, run before every request to a failnotify view, reads the UI's ``_token`` JWT
   cookie and validates it with the configured auth manager (``get_user_from_token``: signature, expiry,
   revocation, user still active), then sets ``g.user`` (and Flask-Login's request user) for the request.
   No valid token: a GET is redirected to the auth manager's login page, anything else gets 401.
3. Authorization always asks the auth manager (``is_authorized_dag`` and friends), so it works with the
   SimpleAuthManager, the FAB auth manager and any other.

CSRF: the /pluginsv2 app runs Flask-WTF's ``CSRFProtect``; every form must render ``csrf_token()``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
)

from airflow_failnotify.lookups import access

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
    from flask.blueprints import BlueprintSetupState

log = logging.getLogger(__name__)

# The /pluginsv2 app's own session cookie (CSRF token, flashed messages). Never "session": that name
# belongs to the FAB auth manager's /auth app on the same path.
SESSION_COOKIE_NAME = "failnotify_pluginsv2_session"
# The UI's JWT cookie (airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN).
JWT_COOKIE_NAME = "_token"

F = TypeVar("F", bound=Callable[..., Any])

bridge_blueprint = Blueprint(
    "failnotify_bridge",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/failnotify-static",
)


@bridge_blueprint.record_once
def _own_session_cookie(state: BlueprintSetupState) -> None:
    state.app.config["SESSION_COOKIE_NAME"] = SESSION_COOKIE_NAME


def _auth_manager() -> BaseAuthManager:
    return access.auth_manager()


def _user_from_token(token: str) -> BaseUser | None:
    """The user of a UI JWT, validated by the auth manager; None when it is invalid, expired or revoked."""
    from asgiref.sync import async_to_sync

    try:
        return async_to_sync(_auth_manager().get_user_from_token)(token)
    except Exception as err:  # invalid/expired/revoked token, deleted user: all mean "not logged in"
        log.info("failnotify views: UI token refused (%s)", type(err).__name__)
        return None


def _login_url() -> str:
    # After login the user comes back to this page (inside the UI's frame or on its own).
    return _auth_manager().get_url_login(next_url=request.url)


def error_page(status: int, title: str, message: str, *, login_url: str | None = None) -> Response:
    """The plugin's error page (401, 403, ...) in Airflow's legacy layout; every value is escaped."""
    appbuilder = current_app.appbuilder  # type: ignore[attr-defined]
    body = render_template(
        "failnotify/error.html",
        base_template=appbuilder.base_template,
        appbuilder=appbuilder,
        status=status,
        title=title,
        message=message,
        login_url=login_url,
    )
    return make_response(body, status)


def _refuse_unauthenticated() -> Response:
    if request.method in ("GET", "HEAD"):
        return cast("Response", redirect(_login_url()))
    return error_page(
        401,
        "Not logged in",
        "Your session has ended. Log in to Airflow again, then retry.",
        login_url=_login_url(),
    )


def authenticate() -> Response | None:
    """Before-request hook of every failnotify view: the logged-in UI user, or a refusal."""
    if request.endpoint and request.endpoint.endswith(".static"):
        return None
    token = request.cookies.get(JWT_COOKIE_NAME)
    user = _user_from_token(token) if token else None
    if user is None:
        g.failnotify_user = None
        return _refuse_unauthenticated()
    g.failnotify_user = user
    g.user = user
    if hasattr(user, "is_authenticated"):
        # Flask-Login user (FAB auth manager): make current_user this user for this request only;
        # nothing is stored in the session, the token stays the single source of truth.
        g._login_user = user
    return None


bridge_blueprint.before_request(authenticate)


def current_user() -> BaseUser:
    """The authenticated user of this request (set by :func:`authenticate`); 401 if there is none."""
    user = getattr(g, "failnotify_user", None)
    if user is None:
        abort(_refuse_unauthenticated())
    return cast("BaseUser", user)


# ----------------------------------------------------------------------------- authorization checks


def can_access_dag(dag_id: str, *, write: bool = False) -> bool:
    """Whether the current user may read (``write=False``) or edit (``write=True``) this DAG."""
    return access.can_access_dag(current_user(), dag_id, write=write)


def is_admin() -> bool:
    """Admin-level rights of the current user (see :func:`airflow_failnotify.lookups.access.is_admin`)."""
    return access.is_admin(current_user())


def authorized_dag_ids(*, write: bool = False) -> set[str]:
    """Every DAG id the current user may read (or edit), as the auth manager decides."""
    return access.authorized_dag_ids(current_user(), write=write)


def forbidden(message: str) -> Response:
    """The 403 page."""
    return error_page(403, "Forbidden", message)


def require_dag_access(dag_id: str, write: bool = False) -> None:
    """Abort with the 403 page unless the current user may read (or, with ``write``, edit) ``dag_id``."""
    if not can_access_dag(dag_id, write=write):
        action = "change the failure notification of" if write else "see"
        abort(forbidden(f"You are not allowed to {action} the integration {dag_id!r}."))


def require_admin() -> None:
    """Abort with the 403 page unless the current user has admin-level rights (see :func:`is_admin`)."""
    if not is_admin():
        abort(forbidden("This page needs the Op or Admin role (rights to operate this Airflow)."))


def dag_access_required(*, write: bool = False, arg: str = "dag_id") -> Callable[[F], F]:
    """Decorator for view methods whose URL carries a DAG id in the keyword argument ``arg``."""

    def decorator(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            require_dag_access(str(kwargs[arg]), write=write)
            return func(*args, **kwargs)

        return cast("F", wrapper)

    return decorator


def admin_required(func: F) -> F:
    """Decorator for view methods that need admin-level rights."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        require_admin()
        return func(*args, **kwargs)

    return cast("F", wrapper)
