"""Test DAGs for capture on workers without store settings (tests/distributed/test_remote_capture.py).

- failnotify_remote_capture: a task that fails twice (retried once) and reports an entity each try;
  it first checks that no store URL reached its environment.
- failnotify_remote_attacker: a task that tries, with what a worker holds, to post another DAG's
  event, to read or change configuration through the ingest API and the views, and to open the
  store; it fails if any attempt is not refused.
- failnotify_remote_spool: like remote_capture, run while the ingest endpoint is unreachable.
- failnotify_remote_ok: one task that succeeds (its capture replays the worker's spool).
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG, task

from airflow_failnotify import record_entity_failure

START = datetime(2024, 1, 1)
STORE_VARIABLES = ("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", "AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN_CMD")


def _fail_twice(ti: object) -> None:
    leaked = [name for name in STORE_VARIABLES if name in os.environ]
    if leaked:
        raise RuntimeError(f"store settings reached the worker: {leaked}")
    try_number = int(getattr(ti, "try_number", 1))
    record_entity_failure(f"row-{try_number}", "row rejected", retry_count=try_number - 1, max_retries=1)
    raise ValueError(f"failed on a worker without store settings, try {try_number}")


with DAG("failnotify_remote_capture", schedule=None, start_date=START, catchup=False):

    @task(retries=1, retry_delay=timedelta(seconds=0))
    def twice(ti=None) -> None:
        _fail_twice(ti)

    twice()


def _attempts() -> dict[str, str]:
    import requests

    from airflow_failnotify import settings
    from airflow_failnotify.core.capture import EventRecord
    from airflow_failnotify.core.model import EventKind
    from airflow_failnotify.exceptions import IngestRefusedError
    from airflow_failnotify.listeners import identity
    from airflow_failnotify.listeners.sink import ApiSink

    me = identity.current()
    if me is None:
        return {"identity": "missing: the listener made no capture identity"}
    out: dict[str, str] = {}
    ingest = settings.ingest_url()
    forged = EventRecord(
        kind=EventKind.TASK_FAILED, dag_id="failnotify_remote_capture", run_id="forged_run",
        occurred_at=datetime.now(timezone.utc), source="task", task_id="twice", try_number=1,
        not_accessible=True, error_message="forged by another DAG",
    )
    for name, sink in (("foreign event", ApiSink(ingest, me)),
                       ("forged identity", ApiSink(ingest, identity.TaskIdentity(
                           **{**me.to_json(), "ti_id": str(uuid.uuid4())})))):
        try:
            sink.record_events([forged])
            out[name] = "ACCEPTED"
        except IngestRefusedError:
            out[name] = "refused"
    try:  # DAG status in one request is for the notification DAG's pass only
        ApiSink(ingest, me).dag_status(["failnotify_remote_capture"])
        out["dag status"] = "ACCEPTED"
    except IngestRefusedError:
        out["dag status"] = "refused"
    for method, path in (("GET", "/v1/registrations"), ("POST", "/v1/registrations"), ("PUT", "/v1/config")):
        response = requests.request(method, f"{ingest}{path}", timeout=10,
                                    json={"identity": me.to_json(), "recipients": "attacker@evil.test"})
        out[f"{method} {path}"] = "refused" if response.status_code in (401, 403, 404, 405) else (
            f"ACCEPTED {response.status_code}")
    views = ingest.removesuffix("/failnotify/ingest") + "/pluginsv2/failnotify/"
    response = requests.get(views, timeout=10, allow_redirects=False)
    refused = response.status_code in (302, 401, 403)
    out["views"] = "refused" if refused else f"ACCEPTED {response.status_code}"
    try:
        from airflow_failnotify.store.store import get_store

        out["store"] = f"ACCEPTED {len(get_store().list_registrations())} registrations"
    except Exception as err:
        out["store"] = f"refused ({type(err).__name__})"
    return out


with DAG("failnotify_remote_attacker", schedule=None, start_date=START, catchup=False):

    @task
    def attack() -> None:
        results = _attempts()
        print("FAILNOTIFY_ATTACK_RESULTS " + "; ".join(f"{k}={v}" for k, v in sorted(results.items())))
        if any(not value.startswith("refused") for value in results.values()):
            raise RuntimeError(f"an attempt was not refused: {results}")

    attack()


with DAG("failnotify_remote_spool", schedule=None, start_date=START, catchup=False):

    @task(retries=1, retry_delay=timedelta(seconds=0))
    def twice_unreachable(ti=None) -> None:
        _fail_twice(ti)

    twice_unreachable()


with DAG("failnotify_remote_ok", schedule=None, start_date=START, catchup=False):

    @task
    def fine() -> None:
        return None

    fine()
