"""What the package learns from Airflow about DAGs: paused, running, present.

Two sources, one shape: the Task SDK inside a task (the only way in Airflow 3 task code) and
Airflow's metadata database in processes that may use it (CLI, api-server).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow_failnotify.core.model import DagPresence, DagStatus

log = logging.getLogger(__name__)

DagStatusProvider = Callable[[Sequence[str]], Mapping[str, DagStatus]]


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
    try:
        with create_session() as session:
            known = {
                dag_id: (bool(is_paused), bool(broken))
                for dag_id, is_paused, broken, stale in session.execute(
                    select(
                        DagModel.dag_id, DagModel.is_paused, DagModel.has_import_errors, DagModel.is_stale
                    ).where(DagModel.dag_id.in_(dag_ids))
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
