"""What the package learns from Airflow about DAGs: paused, running, present.

Three sources, one shape: inside a task, the api-server in one request for every DAG (the plugin's
ingest API) or else the Task SDK DAG by DAG (the only ways in Airflow 3 task code); and Airflow's
metadata database in processes that may use it (CLI, api-server).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow_failnotify.core.model import DagPresence, DagStatus

log = logging.getLogger(__name__)

DagStatusProvider = Callable[[Sequence[str]], Mapping[str, DagStatus]]
DAG_STATUS_TIMEOUT = 60.0  # seconds: one query over every registered DAG, on a busy api-server


def dag_status_from_task_sdk(context: Mapping[str, Any]) -> DagStatusProvider:
    """Paused and running state through the Task SDK (the only way inside an Airflow 3 task)."""
    ti = context["ti"]

    def provider(dag_ids: Sequence[str]) -> Mapping[str, DagStatus]:
        out: dict[str, DagStatus] = {}
        for dag_id in dag_ids:
            try:
                paused = bool(ti.get_dag(dag_id).is_paused)
            except Exception as err:  # a registered DAG that does not exist (yet) or was deleted
                log.info("failnotify: DAG %s not found by the Task SDK (%s): missing or broken", dag_id, err)
                out[dag_id] = DagStatus(presence=DagPresence.MISSING)
                continue
            try:
                running = ti.get_dr_count(dag_id=dag_id, states=["running"]) > 0
            except Exception:
                running = False
            out[dag_id] = DagStatus(is_paused=paused, has_running_run=running)
        return out

    return provider


def status_to_json(status: DagStatus) -> dict[str, Any]:
    return {"is_paused": status.is_paused, "has_running_run": status.has_running_run,
            "presence": status.presence.value}


def status_from_json(value: Mapping[str, Any]) -> DagStatus:
    return DagStatus(
        is_paused=bool(value["is_paused"]),
        has_running_run=bool(value["has_running_run"]),
        presence=DagPresence(value["presence"]),
    )


def dag_status_in_one_request(context: Mapping[str, Any], fallback: DagStatusProvider) -> DagStatusProvider:
    """Every DAG's status in one request to the api-server, as the running task (the notification pass).

    The api-server reads Airflow's database for all of them at once (the plugin's ingest API,
    :mod:`airflow_failnotify.api.ingest`); the Task SDK asks two calls per DAG, which at thousands of
    registered DAGs is most of a pass. When the request cannot be made (no api-server, as in
    ``airflow dags test``, or an older plugin there), ``fallback`` answers, with one warning.
    """

    def provider(dag_ids: Sequence[str]) -> Mapping[str, DagStatus]:
        if not dag_ids:
            return {}
        try:
            found = _ask_api_server(context["ti"], dag_ids)
        except Exception as err:
            log.warning(
                "failnotify: the api-server could not give the status of %d DAG(s) in one request (%s); "
                "asking the Task SDK DAG by DAG",
                len(dag_ids),
                str(err)[:300] or type(err).__name__,
            )
            return fallback(dag_ids)
        log.info("failnotify: status of %d DAG(s) from the api-server in one request", len(dag_ids))
        return found

    return provider


def _ask_api_server(task_instance: Any, dag_ids: Sequence[str]) -> Mapping[str, DagStatus]:
    from airflow_failnotify import settings
    from airflow_failnotify.listeners import identity
    from airflow_failnotify.listeners.sink import ApiSink

    me = identity.establish(task_instance)
    if me is None:
        raise RuntimeError("this task has no identity for the api-server (not a task process)")
    sink = ApiSink(settings.ingest_url(), me, timeout=DAG_STATUS_TIMEOUT)
    try:
        answer = sink.dag_status(dag_ids)
    finally:
        sink.close()
    statuses = {dag_id: status_from_json(value) for dag_id, value in answer.items()}
    # A DAG the api-server does not answer for is one Airflow does not know.
    return {dag_id: statuses.get(dag_id, DagStatus(presence=DagPresence.MISSING)) for dag_id in dag_ids}


def dag_status_from_metadata_db(dag_ids: Sequence[str]) -> Mapping[str, DagStatus]:
    """The same from Airflow's database, for processes that may use it (CLI, api-server)."""
    try:
        from airflow.models.dag import DagModel
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from airflow.utils.state import DagRunState
        from sqlalchemy import func, select
    except ImportError:  # pragma: no cover
        return {}
    if not dag_ids:
        return {}
    from airflow_failnotify.lookups.airflow_health import has_import_error

    try:
        with create_session() as session:
            known = {
                dag_id: (bool(is_paused), bool(broken))
                for dag_id, is_paused, broken, stale in session.execute(
                    select(DagModel.dag_id, DagModel.is_paused, has_import_error(), DagModel.is_stale).where(
                        DagModel.dag_id.in_(dag_ids)
                    )
                )
                if broken or not stale  # a stale DAG without an import error: its file is gone (missing)
            }
            running: dict[str, int] = {
                dag_id: int(count)
                for dag_id, count in session.execute(
                    select(DagRun.dag_id, func.count())
                    .where(DagRun.dag_id.in_(dag_ids), DagRun.state == DagRunState.RUNNING)
                    .group_by(DagRun.dag_id)
                )
            }
    except Exception as err:
        log.warning("failnotify: cannot read DAG status from Airflow's database (%s); treated as active", err)
        return {}
    out = {dag_id: DagStatus(presence=DagPresence.MISSING) for dag_id in dag_ids}
    for dag_id, (is_paused, broken) in known.items():
        out[dag_id] = DagStatus(
            is_paused=is_paused,
            has_running_run=running.get(dag_id, 0) > 0,
            presence=DagPresence.BROKEN if broken else DagPresence.ACTIVE,
        )
    return out
