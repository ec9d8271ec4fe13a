"""Integrations: every DAG the user may read, whether failure notification is registered for it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_appbuilder import expose

from airflow_failnotify.core.health import RegistrationFlag, flags_by_integration
from airflow_failnotify.core.model import Direction, Registration
from airflow_failnotify.lookups import dag_listing
from airflow_failnotify.plugins import auth
from airflow_failnotify.plugins.views.base import (
    PAGE_SIZES,
    ROUTE_BASE,
    FailnotifyBaseView,
    page_args,
    store,
    utc,
)
from airflow_failnotify.service.evaluation import silenced_until
from airflow_failnotify.store import utcnow

SPARKLINE_DAYS = 14


@dataclass(frozen=True)
class Sparkline:
    """Failed runs per day (oldest first) drawn as inline SVG bars, with the entity failures beside.

    The bars and the figure are failed DAG runs (each once, whatever failed inside it); entity
    failures (final failed task instances and entity reports) are counted apart and labelled so.
    """

    counts: tuple[int, ...]
    entity_counts: tuple[int, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def entity_total(self) -> int:
        return sum(self.entity_counts)

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
    # The integration this DAG is the backward direction of (then ``registration`` is None).
    covered_by: Registration | None = None
    last_sent: datetime | None = None
    silenced_until: datetime | None = None  # its own silence or the one of all, the later (issue 18)

    @property
    def directions(self) -> str:
        if self.covered_by is not None:
            return "backward"
        if self.registration is None:
            return ""
        return ", ".join(d.value for d in self.registration.directions())

    @property
    def email_server(self) -> str:
        """Each direction's server: one name when both are the same, else ``a (forward), b (backward)``."""
        if self.covered_by is not None:
            return self.covered_by.settings_for(Direction.BACKWARD).smtp_conn_id
        if self.registration is None:
            return ""
        servers = {d: self.registration.settings_for(d).smtp_conn_id for d in self.registration.directions()}
        if len(set(servers.values())) == 1:
            return next(iter(servers.values()))
        return ", ".join(f"{conn_id} ({d.value})" for d, conn_id in servers.items())


def _rows(dags: list[dag_listing.DagRow], editable: set[str]) -> list[IntegrationRow]:
    every = store().list_registrations()
    registered = {reg.integration: reg for reg in every}
    covering = {reg.backward_integration: reg for reg in every if reg.backward_integration}
    shown = [row.dag_id for row in dags if row.dag_id in registered or row.dag_id in covering]
    chart = store().failure_chart(shown, days=SPARKLINE_DAYS)
    owners = sorted({(registered.get(d) or covering[d]).integration for d in shown})
    sent = store().last_sent(owners)
    silences = {s.integration: s.until for s in store().list_silences(now=utcnow())}
    rows = []
    for row in dags:
        own, owner = registered.get(row.dag_id), covering.get(row.dag_id)
        last_sent = None
        if own is not None:
            last_sent = max(
                (sent[(own.integration, d)] for d in own.directions() if (own.integration, d) in sent),
                default=None,
            )
        elif owner is not None:
            last_sent = sent.get((owner.integration, Direction.BACKWARD))
        counts = chart.get(row.dag_id)
        name = own.integration if own is not None else owner.integration if owner is not None else None
        silenced = silenced_until(silences, name) if name is not None else None
        rows.append(
            IntegrationRow(
                dag_id=row.dag_id,
                description=row.description,
                owners=row.owners,
                is_paused=row.is_paused,
                registration=own,
                can_edit=row.dag_id in editable,
                sparkline=Sparkline(tuple(counts[0]), tuple(counts[1])) if counts else None,
                covered_by=owner if own is None else None,
                last_sent=last_sent,
                silenced_until=silenced,
            )
        )
    return rows


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
            utc=utc,
            any_editable=any(row.can_edit for row in rows),
        )
