"""What the views learn from Airflow's metadata database about DAGs: which exist, one page of a search.

The views never query Airflow's ORM themselves; they ask here. Every function takes the set of DAG
ids the user may see (decided by the auth manager) and leaves out the package's own notification DAG,
which is not an integration.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from airflow_failnotify.constants import NOTIFICATION_DAG_ID


@dataclass(frozen=True)
class DagRow:
    """One DAG of the Integrations list, as Airflow knows it."""

    dag_id: str
    description: str
    owners: str
    is_paused: bool


def escape_like(text: str) -> str:
    """``text`` as a literal inside a SQL LIKE pattern whose escape character is a backslash."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_dags(readable: set[str], query: str, page: int, size: int) -> tuple[list[DagRow], int]:
    """One page of the non-stale DAGs among ``readable`` matching ``query`` (id or description); the total."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, or_, select

    if not readable:
        return [], 0
    conditions = [
        DagModel.is_stale.is_(False),
        DagModel.dag_id != NOTIFICATION_DAG_ID,
        DagModel.dag_id.in_(sorted(readable)),
    ]
    if query:
        pattern = f"%{escape_like(query)}%"
        conditions.append(
            or_(DagModel.dag_id.ilike(pattern, escape="\\"), DagModel.description.ilike(pattern, escape="\\"))
        )
    with create_session() as session:
        total = session.scalar(select(func.count()).select_from(DagModel).where(*conditions)) or 0
        rows = session.execute(
            select(DagModel.dag_id, DagModel.description, DagModel.owners, DagModel.is_paused)
            .where(*conditions)
            .order_by(DagModel.dag_id)
            .offset((page - 1) * size)
            .limit(size)
        ).all()
    dags = [
        DagRow(dag_id=dag_id, description=description or "", owners=owners or "", is_paused=bool(is_paused))
        for dag_id, description, owners, is_paused in rows
    ]
    return dags, int(total)


def active_dag_ids(allowed: set[str], *, exclude: Iterable[str] = ()) -> list[str]:
    """Non-stale DAG ids among ``allowed``, sorted (the notification DAG and ``exclude`` left out)."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    skip = {NOTIFICATION_DAG_ID, *exclude}
    if not allowed:
        return []
    with create_session() as session:
        rows = session.scalars(
            select(DagModel.dag_id).where(DagModel.is_stale.is_(False)).order_by(DagModel.dag_id)
        ).all()
    return [dag_id for dag_id in rows if dag_id in allowed and dag_id not in skip]


def all_dag_ids() -> set[str]:
    """Every DAG id Airflow knows, stale ones included."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return set(session.scalars(select(DagModel.dag_id)).all())
