"""What the configured auth manager allows a user: the one place both UIs ask (FAB views and JSON API).

Every decision goes through the auth manager's own checks (``is_authorized_dag`` and friends), so it
holds for the SimpleAuthManager, the FAB auth manager and any other. The callers pass the user they
authenticated (the FAB views from the UI's ``_token`` cookie, the API from its bearer token).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

log = logging.getLogger(__name__)


def auth_manager() -> BaseAuthManager:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager()


def dag_details(dag_id: str) -> Any:
    """The auth manager's DagDetails of ``dag_id`` (with its team when multi-team is on)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    team_name = None
    try:
        from airflow.configuration import conf

        if conf.getboolean("core", "multi_team", fallback=False):
            from airflow.models.dag import DagModel

            team_name = DagModel.get_team_name(dag_id)
    except Exception:
        log.warning("Could not resolve the team of DAG %s", dag_id, exc_info=True)
    return DagDetails(id=dag_id, team_name=team_name)


def can_access_dag(user: BaseUser, dag_id: str, *, write: bool = False) -> bool:
    """Whether ``user`` may read (``write=False``) or edit (``write=True``) this DAG."""
    return bool(
        auth_manager().is_authorized_dag(
            method="PUT" if write else "GET", details=dag_details(dag_id), user=user
        )
    )


def is_admin(user: BaseUser) -> bool:
    """Admin-level rights: the schedule setting, Send now / Retry of notifications, the detailed health.

    "Change Airflow's configuration" where the auth manager grants it (SimpleAuthManager: Op and Admin);
    otherwise "read the configuration and change connections", because FAB's default roles grant no
    configuration edit right to anyone (FAB: Op and Admin). Both mean: operates this Airflow.
    """
    manager = auth_manager()
    if manager.is_authorized_configuration(method="PUT", user=user):
        return True
    return bool(
        manager.is_authorized_configuration(method="GET", user=user)
        and manager.is_authorized_connection(method="PUT", user=user)
    )


def authorized_dag_ids(user: BaseUser, *, write: bool = False) -> set[str]:
    """Every DAG id ``user`` may read (or edit), as the auth manager decides."""
    return set(auth_manager().get_authorized_dag_ids(user=user, method="PUT" if write else "GET"))
