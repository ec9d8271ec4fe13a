"""The ingest API: task processes hand the failures they capture to the api-server, which stores them.

Mounted by the plugin at ``/failnotify/ingest`` (:mod:`airflow_failnotify.api.app`). It can only ADD
events of the calling task instance (:mod:`airflow_failnotify.api.verify`), and tell the notification
DAG's pass what Airflow knows of DAGs: there is no route that reads or changes configuration,
recipients or anything else. Routes, all ``POST`` with
``{"identity": {...}, ...}``:

* ``/v1/lookup``: the registration (integration, direction) of the caller's own DAG, or null;
* ``/v1/events``: task failures and entity reports of the caller's task instance;
* ``/v1/activity``: the caller's DAG was active at ``at`` (never later than now);
* ``/v1/dag-status``: paused, running and present for the DAGs named, in one request; for the
  notification DAG's own tasks only (its pass needs them for every registered DAG, and the Task SDK
  answers one DAG per call, two calls each). It tells no more than the Task SDK tells any task.

A refused request answers 403 and leaves a row in Error Management (category ``capture``) naming the
host; at most one row per (host, reason kind) a minute, so a loop cannot flood the log. Any other path
under the prefix answers 404 and is recorded the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from airflow_failnotify.api.verify import Caller, Refused, check_events, identify
from airflow_failnotify.constants import NOTIFICATION_DAG_ID
from airflow_failnotify.core.capture import EventRecord

log = logging.getLogger(__name__)

ERROR_CATEGORY = "capture"
MAX_EVENTS_PER_REQUEST = 1000
MAX_DAGS_PER_REQUEST = 100_000
_ROW_INTERVAL = 60.0

router = APIRouter()


class Identified(BaseModel):
    identity: dict[str, Any]


class EventsBody(Identified):
    events: list[dict[str, Any]] = Field(max_length=MAX_EVENTS_PER_REQUEST)


class ActivityBody(Identified):
    dag_id: str
    at: datetime


class DagStatusBody(Identified):
    dag_ids: list[str] = Field(max_length=MAX_DAGS_PER_REQUEST)


def _store() -> Any:
    from airflow_failnotify.store.store import get_store

    return get_store()


_last_row: dict[tuple[str, str], float] = {}
_rows_lock = threading.Lock()


def _client(request: Request, identity: Any = None) -> str:
    address = request.client.host if request.client else "unknown address"
    claimed = identity.get("host") if isinstance(identity, dict) else None
    return f"{claimed} ({address})" if claimed else address


def record_refusal(
    request: Request, reason: str, *, kind: str, identity: Any = None, dag_id: str | None = None
) -> None:
    """Log the refusal; an Error Management row at most once a minute per (client, kind)."""
    who = _client(request, identity)
    log.warning("failnotify ingest refused a request from %s: %s", who, reason)
    key = (who, kind)
    now = time.monotonic()
    with _rows_lock:
        if now - _last_row.get(key, -_ROW_INTERVAL) < _ROW_INTERVAL:
            return
        _last_row[key] = now
    try:
        _store().log_error(
            ERROR_CATEGORY,
            f"ingest API refused a request from {who}: {reason}",
            server=who[:250],
            integration=dag_id,
        )
    except Exception as err:  # the refusal stands; the row is best effort
        log.warning("failnotify ingest could not record the refusal: %s", type(err).__name__)


def _refused(request: Request, err: Refused, identity: Any, kind: str) -> JSONResponse:
    record_refusal(request, err.reason, kind=kind, identity=identity, dag_id=err.dag_id)
    return JSONResponse({"detail": err.reason}, status_code=403)


def _caller(request: Request, identity: Any) -> Caller | JSONResponse:
    try:
        return identify(identity)
    except Refused as err:
        return _refused(request, err, identity, "identity")


@router.post("/v1/lookup")
def lookup(body: Identified, request: Request) -> Any:
    caller = _caller(request, body.identity)
    if isinstance(caller, JSONResponse):
        return caller
    found = _store().lookup_dag(caller.dag_id)
    registration = None if found is None else {"integration": found[0], "direction": found[1].value}
    return {"dag_id": caller.dag_id, "registration": registration}


@router.post("/v1/events")
def events(body: EventsBody, request: Request) -> Any:
    caller = _caller(request, body.identity)
    if isinstance(caller, JSONResponse):
        return caller
    try:
        records = [EventRecord.from_json(item) for item in body.events]
    except (KeyError, TypeError, ValueError) as err:
        return _refused(
            request,
            Refused(f"malformed event: {type(err).__name__}", dag_id=caller.dag_id),
            body.identity,
            "malformed",
        )
    try:
        check_events(caller, records)
    except Refused as err:
        return _refused(request, err, body.identity, "event")
    inserted = _store().record_events(records)
    return {"inserted": inserted}


@router.post("/v1/activity")
def activity(body: ActivityBody, request: Request) -> Any:
    caller = _caller(request, body.identity)
    if isinstance(caller, JSONResponse):
        return caller
    if body.dag_id != caller.dag_id:
        return _refused(
            request,
            Refused(f"{caller.dag_id}.{caller.task_id} sent activity of {body.dag_id}", dag_id=caller.dag_id),
            body.identity,
            "event",
        )
    at = body.at if body.at.tzinfo else body.at.replace(tzinfo=timezone.utc)
    at = min(at, datetime.now(timezone.utc))  # never in the future (that would hide inactivity)
    return {"registered": bool(_store().record_activity(caller.dag_id, at))}


@router.post("/v1/dag-status")
def dag_status(body: DagStatusBody, request: Request) -> Any:
    from airflow_failnotify.lookups.dags import dag_status_from_metadata_db, status_to_json

    caller = _caller(request, body.identity)
    if isinstance(caller, JSONResponse):
        return caller
    if caller.dag_id != NOTIFICATION_DAG_ID:
        reason = f"{caller.dag_id}.{caller.task_id} asked for DAG status; only the notification DAG may"
        return _refused(request, Refused(reason, dag_id=caller.dag_id), body.identity, "dag-status")
    dag_ids = sorted(set(body.dag_ids))
    found = dag_status_from_metadata_db(dag_ids)
    if dag_ids and not found:  # Airflow's database could not be read (logged): let the task ask the SDK
        return JSONResponse({"detail": "Airflow's database could not be read"}, status_code=503)
    return {"status": {dag_id: status_to_json(status) for dag_id, status in found.items()}}


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
def unknown(path: str, request: Request) -> Any:
    """Nothing else exists here (no reading or changing configuration); the attempt is recorded."""
    record_refusal(request, f"{request.method} /{path}: no such ingest route", kind="route")
    return JSONResponse({"detail": "not found"}, status_code=404)
