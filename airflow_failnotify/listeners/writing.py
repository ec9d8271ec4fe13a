"""Writing captured events with a bounded time, and the spool when the sink cannot take them.

Every write goes to this process's :func:`~airflow_failnotify.listeners.sink.capture_sink`, whose waits
are bounded by :data:`~airflow_failnotify.listeners.sink.LISTENER_TIMEOUT`. On an outage (store down,
locked or not migrated; on the api path the ingest endpoint unreachable or failing) the items go to the
local spool (:mod:`airflow_failnotify.listeners.spool`); the next successful write on the same machine
replays it. An unavailable ingest endpoint is an error in the task log (once per process) and a note in
the task's state store that the scheduler's reconciliation turns into "capture unavailable on <host>".
Nothing here raises into Airflow.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_failnotify.listeners import spool
from airflow_failnotify.listeners.records import now
from airflow_failnotify.listeners.sink import LISTENER_TIMEOUT, CaptureSink, capture_sink

if TYPE_CHECKING:
    from airflow_failnotify.core.capture import EventRecord
    from airflow_failnotify.core.model import Direction

log = logging.getLogger(__name__)

T = TypeVar("T")

_warned: set[str] = set()


def is_transient(err: BaseException) -> bool:
    """A store problem worth spooling for (it will go away), as opposed to a bug or bad data."""
    from sqlalchemy import exc as sa_exc

    from airflow_failnotify.exceptions import ConfigurationError, StoreNotReadyError, StoreUnavailableError

    if isinstance(
        err, (StoreUnavailableError, StoreNotReadyError, ConfigurationError, OSError, TimeoutError)
    ):
        return True
    if isinstance(
        err, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, sa_exc.DisconnectionError)
    ):
        return True
    # "no such table" comes as OperationalError on SQLite (above), ProgrammingError on PostgreSQL.
    return isinstance(err, sa_exc.ProgrammingError) and "does not exist" in str(err)


_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def describe(err: BaseException) -> str:
    """One line about a store error, without SQL parameters (event data) or a URL password."""
    orig = getattr(err, "orig", None)  # sqlalchemy.exc.DBAPIError: the driver's own message only
    base = orig if isinstance(orig, BaseException) else err
    text = f"{type(base).__name__}: {base}".splitlines()[0] if str(base) else type(base).__name__
    return _URL_PASSWORD.sub(r"\1***@", text)[:500]


def _warn(key: str, message: str, *args: Any) -> None:
    """Warn once per process and kind of problem; later ones go to debug (no log flood)."""
    if key in _warned:
        log.debug(message, *args)
        return
    _warned.add(key)
    log.warning(message, *args)


def _spool(
    items: Sequence[EventRecord | spool.SpooledActivity],
    reason: str,
    *,
    announce: bool = True,
    sink: CaptureSink | None = None,
) -> Path | None:
    if not items:
        return None
    try:
        directory, identity = sink.spool_target() if sink is not None else (None, None)
        path = spool.spool(items, directory, identity=identity)
    except Exception as err:  # the disk too: nothing more we can do without blocking Airflow
        log.warning(
            "failnotify: could not record %d item(s) (%s) nor spool them (%s); they are lost",
            len(items),
            reason,
            describe(err),
        )
        return None
    if announce:
        _warn(
            f"spooled:{reason}",
            "failnotify: store unavailable (%s); %d item(s) spooled to %s, "
            "replayed at the next successful write",
            reason,
            len(items),
            path,
        )
    return path


_noted_unavailable: set[int] = set()


def _capture_unavailable(
    err: BaseException, items: Sequence[EventRecord | spool.SpooledActivity], sink: CaptureSink | None
) -> None:
    """The ingest API cannot take events: spool them, and say so loudly (task log, state-store note)."""
    import os

    from airflow_failnotify.listeners import identity as task_identity

    path = _spool(items, describe(err), announce=False, sink=sink)
    me = task_identity.current()
    host = me.host if me is not None else task_identity.hostname()
    key = f"unavailable:{describe(err)}"
    message = (
        "failnotify: capture unavailable on %s: %s. %d item(s) spooled to %s; they are replayed when "
        "the ingest endpoint answers. Check [failnotify] ingest_url / [core] execution_api_server_url "
        "on this worker and that airflow-failnotify is installed on the api-server."
    )
    if key in _warned:
        log.debug(message, host, describe(err), len(items), path)
    else:
        _warned.add(key)
        log.error(message, host, describe(err), len(items), path or "nowhere (spool not writable)")
    if me is not None and os.getpid() not in _noted_unavailable:
        _noted_unavailable.add(os.getpid())
        task_identity.report_unavailable(me, describe(err))


def _store_failed(
    err: BaseException, items: Sequence[EventRecord | spool.SpooledActivity], sink: CaptureSink | None = None
) -> None:
    from airflow_failnotify.exceptions import CaptureUnavailableError, IngestRefusedError, StoreNotReadyError

    if isinstance(err, CaptureUnavailableError):
        _capture_unavailable(err, items, sink)
    elif isinstance(err, IngestRefusedError):
        log.error("failnotify: %s; %d item(s) not recorded", describe(err), len(items))
    elif isinstance(err, StoreNotReadyError):
        path = _spool(items, "store not migrated", announce=False)
        _warn(
            "not-ready",
            "failnotify: %s. Failure capture spools its events (%s) until then.",
            err,
            path.parent if path else "spool not writable",
        )
    elif is_transient(err):
        _spool(items, describe(err), sink=sink)
    else:
        log.warning("failnotify: could not record %d item(s): %s", len(items), describe(err))


def _spool_dirs(sink: CaptureSink) -> list[Path]:
    """The spool directories ``sink`` replays: the api path its own; the store path both (it may)."""
    from airflow_failnotify import settings
    from airflow_failnotify.listeners.sink import INGEST_SPOOL_SUBDIR, ApiSink

    if isinstance(sink, ApiSink):
        return [sink.spool_target()[0]]
    return [settings.spool_dir(), settings.spool_dir() / INGEST_SPOOL_SUBDIR]


def _identified(sink: CaptureSink) -> spool.Identified | None:
    """For the api path: send spooled items with the identity of the task that captured them."""
    from airflow_failnotify.listeners.identity import TaskIdentity
    from airflow_failnotify.listeners.sink import ApiSink

    if not isinstance(sink, ApiSink):
        return None

    def send(identity: Any, events: list[EventRecord], activity: dict[str, datetime]) -> None:
        other = sink.with_identity(TaskIdentity.from_json(identity))
        for start in range(0, len(events), spool.REPLAY_BATCH):
            other.record_events(events[start : start + spool.REPLAY_BATCH])
        for dag_id, at in activity.items():
            other.record_activity(dag_id, at)

    return send


def replay_spool(sink: CaptureSink, *, deadline: float | None = None) -> int:
    """Replay this machine's spool files into ``sink`` (after a successful write)."""
    total = 0
    for directory in _spool_dirs(sink):
        if not spool.has_spooled(directory):
            continue
        try:
            total += spool.replay(
                sink.record_events,
                sink.record_activity,
                directory,
                deadline=deadline,
                transient=is_transient,
                identified=_identified(sink),
            )
        except Exception as err:
            log.warning("failnotify: spool replay stopped, retried at the next write: %s", describe(err))
    return total


def write(
    action: Callable[[CaptureSink], T],
    spooled: Callable[[], Sequence[EventRecord | spool.SpooledActivity]],
) -> tuple[bool, T | None]:
    """Run ``action`` against this process's capture sink; on a sink problem spool ``spooled()`` instead.

    Returns (True, result) when the sink answered, (False, None) otherwise. Never raises.
    """
    started = time.monotonic()
    sink: CaptureSink | None = None
    try:
        sink = capture_sink()
        sink.check_ready()
        result = action(sink)
    except Exception as err:
        try:
            _store_failed(err, spooled(), sink)
        except Exception as inner:
            log.warning("failnotify: could not record an event: %s", describe(inner))
        return False, None
    try:
        replay_spool(sink, deadline=started + LISTENER_TIMEOUT)
    except Exception as err:  # pragma: no cover - replay_spool catches already
        log.warning("failnotify: spool replay failed: %s", describe(err))
    return True, result


def bind_task(task_instance: Any) -> None:
    """On the api path, make sure this task process has its identity (proof in its task state store)."""
    from airflow_failnotify.listeners import identity
    from airflow_failnotify.listeners.sink import uses_api_path

    try:
        if uses_api_path():
            identity.establish(task_instance)
    except Exception as err:
        log.error("failnotify: could not set up failure capture for this task: %s", describe(err))


def record(records: Callable[[], Sequence[EventRecord]], dag_id: str) -> bool:
    """Record events of ``dag_id`` if it is registered (filtered first, before building them)."""

    def action(sink: CaptureSink) -> bool:
        if sink.lookup_dag(dag_id) is None:
            return False
        sink.record_events(records())
        return True

    ok, recorded = write(action, records)
    return bool(ok and recorded)


def record_activity(dag_id: str, at: datetime | None = None) -> None:
    when = at or now()
    write(lambda sink: sink.record_activity(dag_id, when), lambda: [spool.SpooledActivity(dag_id, when)])


def lookup(dag_id: str) -> tuple[bool, tuple[str, Direction] | None]:
    """(sink answered, (integration, direction) or None)."""
    return write(lambda sink: sink.lookup_dag(dag_id), lambda: [])
