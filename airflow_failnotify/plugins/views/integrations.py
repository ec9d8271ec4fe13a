"""Integrations: every DAG the user may read, whether failure notification is registered for it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from flask_appbuilder import expose

from airflow_failnotify.core.health import RegistrationFlag, flags_by_integration
from airflow_failnotify.core.model import Registration
from airflow_failnotify.lookups import dag_listing
from airflow_failnotify.plugins import auth
from airflow_failnotify.plugins.views.base import (
    PAGE_SIZES,
    ROUTE_BASE,
    FailnotifyBaseView,
    page_args,
    registrations,
    store,
)

SPARKLINE_DAYS = 14


@dataclass(frozen=True)
class Sparkline:
    """Failures per day (oldest first) drawn as inline SVG bars by the template."""

    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)

    def bars(self, width: int = 112, height: int = 24) -> list[dict[str, Any]]:
        peak = max(self.counts, default=0) or 1
        step = width / max(1, len(self.counts))
        out = []
        for index, count in enumerate(self.counts):
            bar = max(1.0, (height - 2) * count / peak) if count else 1.0
            out.append(
                {
                    "x": round(index * step + 0.5, 1),
                    "y": round(height - bar, 1),
                    "w": round(max(1.0, step - 1.5), 1),
                    "h": round(bar, 1),
                    "count": count,
                    "failed": bool(count),
                }
            )
        return out


@dataclass(frozen=True)
class IntegrationRow:
    dag_id: str
    description: str
    owners: str
    is_paused: bool
    registration: Registration | None
    can_edit: bool
    sparkline: Sparkline | None = None

    @property
    def directions(self) -> str:
        if self.registration is None:
            return ""
        return ", ".join(d.value for d in self.registration.directions())

    @property
    def email_server(self) -> str:
        return self.registration.forward.smtp_conn_id if self.registration else ""


def _rows(dags: list[dag_listing.DagRow], editable: set[str]) -> list[IntegrationRow]:
    registered = registrations(row.dag_id for row in dags)
    counts = store().failure_counts_by_day(sorted(registered), days=SPARKLINE_DAYS)
    return [
        IntegrationRow(
            dag_id=row.dag_id,
            description=row.description,
            owners=row.owners,
            is_paused=row.is_paused,
            registration=registered.get(row.dag_id),
            can_edit=row.dag_id in editable,
            sparkline=Sparkline(tuple(counts[row.dag_id])) if row.dag_id in counts else None,
        )
        for row in dags
    ]


def _flagged(readable: set[str]) -> list[RegistrationFlag]:
    """Registrations whose DAG is missing or broken or whose connection does not resolve (issue 14).

    A missing or broken DAG is not in the DAG list below, so they are listed apart; a user sees those
    of the DAGs they may read, an admin sees all.
    """
    from airflow_failnotify.service.health import flags_for

    names = [r.integration for r in store().list_registrations()]
    admin = auth.is_admin()
    flags = flags_for([n for n in names if admin or n in readable])
    return [flag for name in sorted(flags) for flag in flags[name]]


class IntegrationsView(FailnotifyBaseView):
    """Integrations: every DAG the user may read, whether failure notification is registered."""

    route_base = ROUTE_BASE
    nav_tab = "integrations"

    @expose("/")
    def index(self) -> Any:
        query, page, size = page_args()
        readable = auth.authorized_dag_ids()
        editable = auth.authorized_dag_ids(write=True)
        dags, total = dag_listing.list_dags(readable, query, page, size)
        pages = max(1, math.ceil(total / size))
        if page > pages:
            page = pages
            dags, total = dag_listing.list_dags(readable, query, page, size)
        rows = _rows(dags, editable)
        flagged = _flagged(readable)
        return self.page(
            "failnotify/integrations.html",
            rows=rows,
            flagged=flagged,
            flags_by_dag=flags_by_integration(flagged),
            query=query,
            page=page,
            pages=pages,
            size=size,
            total=total,
            page_sizes=PAGE_SIZES,
            sparkline_days=SPARKLINE_DAYS,
            any_editable=any(row.can_edit for row in rows),
        )
