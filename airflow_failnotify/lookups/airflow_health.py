"""What the health and the watchdog learn from Airflow's metadata database (processes that may use it:
the scheduler, the api-server, the CLI; never a task).

- :func:`notification_dag_facts`: the notification DAG present, paused, its last finished runs;
- :func:`dag_presence`: active, missing (no row, or stale: its file is gone) or broken (an import error
  of its file now);
- :func:`import_errors`: the import error of each broken DAG (``ParseImportError`` joined to
  ``DagModel`` on bundle and relative file, as Airflow's own UI does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from airflow_failnotify.constants import NOTIFICATION_DAG_ID
from airflow_failnotify.core.health import NotificationDagFacts
from airflow_failnotify.core.model import DagPresence

RECENT_RUNS = 5


@dataclass(frozen=True)
class ImportErrorRecord:
    id: int
    dag_id: str
    filename: str
    bundle_name: str
    timestamp: datetime
    stacktrace: str


def notification_dag_facts(dag_id: str = NOTIFICATION_DAG_ID) -> NotificationDagFacts:
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.execute(
            select(DagModel.is_paused, DagModel.is_stale).where(DagModel.dag_id == dag_id)
        ).first()
        if row is None or row.is_stale:
            return NotificationDagFacts(present=False, paused=bool(row and row.is_paused))
        states = session.scalars(
            select(DagRun.state)
            .where(DagRun.dag_id == dag_id, DagRun.state.in_(["success", "failed"]))
            .order_by(DagRun.end_date.desc())
            .limit(RECENT_RUNS)
        ).all()
    return NotificationDagFacts(
        present=True, paused=bool(row.is_paused), recent_run_states=tuple(str(s) for s in states)
    )


def dag_presence(dag_ids: Sequence[str]) -> dict[str, DagPresence]:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    out = {dag_id: DagPresence.MISSING for dag_id in dag_ids}
    if not dag_ids:
        return out
    with create_session() as session:
        rows = session.execute(
            select(DagModel.dag_id, DagModel.is_stale, has_import_error()).where(
                DagModel.dag_id.in_(list(dag_ids))
            )
        ).all()
    for dag_id, is_stale, broken in rows:
        if broken:
            out[dag_id] = DagPresence.BROKEN
        elif not is_stale:
            out[dag_id] = DagPresence.ACTIVE
    return out


def has_import_error() -> Any:
    """True for a DAG whose file has an import error now (a ``ParseImportError`` row), as Airflow's UI
    shows it. Not ``DagModel.has_import_errors``: Airflow leaves that set on a DAG whose file was deleted
    while it was being parsed (the write fails, the error row goes with the file), which is missing."""
    from airflow.models.dag import DagModel
    from airflow.models.errors import ParseImportError
    from sqlalchemy import and_, exists

    return exists().where(
        and_(
            ParseImportError.filename == DagModel.relative_fileloc,
            ParseImportError.bundle_name == DagModel.bundle_name,
        )
    )


def import_errors(dag_ids: Sequence[str]) -> dict[str, ImportErrorRecord]:
    """The current import error of each of ``dag_ids`` whose file fails to import."""
    from airflow.models.dag import DagModel
    from airflow.models.errors import ParseImportError
    from airflow.utils.session import create_session
    from sqlalchemy import and_, select

    if not dag_ids:
        return {}
    with create_session() as session:
        rows = session.execute(
            select(
                DagModel.dag_id,
                ParseImportError.id,
                ParseImportError.filename,
                ParseImportError.bundle_name,
                ParseImportError.timestamp,
                ParseImportError.stacktrace,
            )
            .join(
                ParseImportError,
                and_(
                    ParseImportError.filename == DagModel.relative_fileloc,
                    ParseImportError.bundle_name == DagModel.bundle_name,
                ),
            )
            .where(DagModel.dag_id.in_(list(dag_ids)))
        ).all()
    return {
        dag_id: ImportErrorRecord(
            id=int(error_id),
            dag_id=dag_id,
            filename=filename or "",
            bundle_name=bundle or "",
            timestamp=timestamp or datetime.now(timezone.utc),
            stacktrace=stacktrace or "",
        )
        for dag_id, error_id, filename, bundle, timestamp, stacktrace in rows
    }
