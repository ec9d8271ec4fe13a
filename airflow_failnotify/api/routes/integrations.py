"""Integrations: the list (search, paging, status incl. backward coverage, failures per day) and one
integration's configuration, flags and recent activity (the DAG tab)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Depends, Query

from airflow_failnotify.api import security, serialize
from airflow_failnotify.core.config_export import direction_to_dict
from airflow_failnotify.core.model import DirectionSettings
from airflow_failnotify.lookups import access, connections, dag_listing

router = APIRouter(tags=["integrations"])

PAGE_SIZES = (25, 50, 100)
SPARKLINE_DAYS = 14
ACTIVITY_ROWS = 10


def _store() -> Any:
    from airflow_failnotify.store import get_store

    return get_store()


def _flags(names: list[str]) -> dict[str, list[dict[str, Any]]]:
    from airflow_failnotify.service.health import flags_for

    return {name: [serialize.flag(f) for f in flags] for name, flags in flags_for(names).items()}


@router.get("/integrations", summary="Every DAG the user may read and its failure notification status")
def list_integrations(
    q: str = Query("", max_length=250, description="part of a DAG id or description"),
    page: int = Query(1, ge=1),
    size: int = Query(PAGE_SIZES[0], description=f"one of {PAGE_SIZES}"),
    user: Any = Depends(security.authenticated),  # noqa: B008
) -> dict[str, Any]:
    size = size if size in PAGE_SIZES else PAGE_SIZES[0]
    readable = access.authorized_dag_ids(user)
    editable = access.authorized_dag_ids(user, write=True)
    dags, total = dag_listing.list_dags(readable, q.strip(), page, size)
    pages = max(1, math.ceil(total / size))
    if page > pages:
        page = pages
        dags, total = dag_listing.list_dags(readable, q.strip(), page, size)
    store = _store()
    registrations = store.list_registrations()
    by_name = {r.integration: r for r in registrations}
    backward_of = {r.backward_integration: r.integration for r in registrations if r.backward_integration}
    shown = [row.dag_id for row in dags if row.dag_id in by_name]
    counts = store.failure_counts_by_day(shown, days=SPARKLINE_DAYS)
    admin = access.is_admin(user)
    flags = _flags([r.integration for r in registrations if admin or r.integration in readable])
    rows = []
    for row in dags:
        reg = by_name.get(row.dag_id)
        rows.append(
            {
                "dag_id": row.dag_id,
                "description": row.description,
                "owners": row.owners,
                "is_paused": row.is_paused,
                "registered": reg is not None,
                "directions": [d.value for d in reg.directions()] if reg else [],
                "backward_integration": reg.backward_integration if reg else None,
                "backward_of": backward_of.get(row.dag_id),
                "email_server": reg.forward.smtp_conn_id if reg else None,
                "can_edit": row.dag_id in editable,
                "failures_per_day": counts.get(row.dag_id),
                "flags": flags.get(row.dag_id, []),
                "dag_url": serialize.dag_path(row.dag_id),
            }
        )
    return {
        "rows": rows,
        "total": total,
        "page": page,
        "pages": pages,
        "size": size,
        "page_sizes": list(PAGE_SIZES),
        "sparkline_days": SPARKLINE_DAYS,
        "flagged": [f for name in sorted(flags) for f in flags[name]],
    }


def _defaults(dag_id: str, servers: list[connections.EmailServer]) -> dict[str, Any]:
    forward = direction_to_dict(
        DirectionSettings(smtp_conn_id=servers[0].conn_id if len(servers) == 1 else "", recipients=())
    )
    return {**forward, "integration": dag_id, "same_for_backward": True, "backward": dict(forward)}


@router.get("/integrations/{dag_id}", summary="One integration's configuration, for the Configure page")
def get_integration(dag_id: str, user: Any = Depends(security.dag_reader)) -> dict[str, Any]:  # noqa: B008
    store = _store()
    reg = store.get_registration(dag_id)
    can_edit = access.can_access_dag(user, dag_id, write=True)
    selected = [reg.forward.smtp_conn_id] if reg else []
    if reg is not None and reg.backward is not None:
        selected.append(reg.backward.smtp_conn_id)
    servers = connections.server_choices(selected)
    allowed = access.authorized_dag_ids(user, write=can_edit)
    choices = dag_listing.active_dag_ids(allowed, exclude=[dag_id])
    if reg is not None and reg.backward_integration and reg.backward_integration not in choices:
        choices.append(reg.backward_integration)
    return {
        "dag_id": dag_id,
        "registered": reg is not None,
        "registration": serialize.registration(reg) if reg else _defaults(dag_id, servers),
        "can_edit": can_edit,
        "flags": _flags([dag_id]).get(dag_id, []) if reg else [],
        "email_servers": [{"conn_id": s.conn_id, "host": s.host, "source": s.source} for s in servers],
        "backward_choices": choices,
        "dag_url": serialize.dag_path(dag_id),
        "connections_url": "/connections",
    }


@router.get("/integrations/{dag_id}/activity", summary="An integration's recent notifications and errors")
def integration_activity(dag_id: str, user: Any = Depends(security.dag_reader)) -> dict[str, Any]:  # noqa: B008
    store = _store()
    events, events_total = store.list_events(integration=dag_id, limit=ACTIVITY_ROWS)
    errors, errors_total = store.list_errors(integration=dag_id, limit=ACTIVITY_ROWS)
    outbox, outbox_total = store.list_outbox(integration=dag_id, limit=ACTIVITY_ROWS)
    return {
        "dag_id": dag_id,
        "events": [serialize.event(e) for e in events],
        "events_total": events_total,
        "errors": [serialize.error_row(e) for e in errors],
        "errors_total": errors_total,
        "outbox": [serialize.outbox_item(o) for o in outbox],
        "outbox_total": outbox_total,
    }
