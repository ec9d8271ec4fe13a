"""The watchdog: one look at the health per tick; Broken DAG events, metrics, and the admins' mails.

It runs in a child process of every scheduler (:mod:`airflow_failnotify.listeners.watchdog`; the loop is
``failnotify watchdog``), never in the notification DAG, so a paused DAG, a DAG that fails or a store
that is down is still seen. Per tick:

1. Airflow's import errors of registered DAGs become Broken DAG events (service/broken_dags.py);
2. the health report (service/health.py) is computed and published as gauges through Airflow's metrics
   (StatsD or OpenTelemetry, when configured): ``failnotify.health.status`` (0 ok, 1 warn, 2 bad),
   ``failnotify.health.last_pass_age``, ``failnotify.outbox.pending``, ``failnotify.outbox.failed``,
   ``failnotify.outbox.oldest_pending_age``, ``failnotify.spool.records``;
3. the admins (``[failnotify] admin_emails`` through ``admin_smtp_conn_id``) get one mail when the
   health turns bad and one when it recovers. The episode is kept in the store's ``setting`` table and
   changed by compare-and-set, so with two schedulers exactly one sends each mail. The mail goes out
   directly through the email channel, never through the outbox (which may be what is broken).
   While the store is unreachable its episode is kept in a host-local file instead
   (``<spool_dir>/watchdog/episode.json``, under a file lock): one mail per host, so two schedulers on
   two hosts each send one during a store outage.
"""

from __future__ import annotations

import fcntl
import logging
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow_failnotify import settings
from airflow_failnotify.core import watchdog as decide
from airflow_failnotify.core.addresses import parse_connection_recipients
from airflow_failnotify.core.health import HealthReport, HealthStatus
from airflow_failnotify.core.notification import Notification
from airflow_failnotify.core.watchdog import WatchdogState
from airflow_failnotify.service import health as health_service

log = logging.getLogger(__name__)

EPISODE_KEY = "watchdog_episode"
LOCAL_EPISODE_FILE = "episode.json"
CLAIM_LEASE = timedelta(minutes=2)

Sender = Callable[[str, Notification], None]


def send_with_email_channel(conn_id: str, notification: Notification) -> None:
    from airflow_failnotify.channels.email import open_email_transport

    with open_email_transport(conn_id) as transport:
        refused = transport.send(notification)
    if refused:
        log.warning("failnotify watchdog: recipients refused: %s", ", ".join(sorted(refused)))


def publish_metrics(report: HealthReport) -> None:
    try:
        from airflow.sdk.observability.stats import Stats
    except ImportError:  # pragma: no cover
        return
    facts = report.facts
    gauges: dict[str, float | None] = {
        "failnotify.health.status": report.status.rank,
        "failnotify.health.last_pass_age": (
            None if report.last_pass_age is None else report.last_pass_age.total_seconds()
        ),
        "failnotify.outbox.pending": facts.pending,
        "failnotify.outbox.failed": facts.failed,
        "failnotify.outbox.oldest_pending_age": (
            None if facts.oldest_pending_at is None else (facts.now - facts.oldest_pending_at).total_seconds()
        ),
        "failnotify.spool.records": facts.spool_records,
    }
    for name, value in gauges.items():
        if value is not None:
            try:
                Stats.gauge(name, value)
            except Exception:  # metrics must never stop the watchdog
                log.debug("failnotify: gauge %s not published", name, exc_info=True)


def _admins() -> tuple[tuple[str, ...], str]:
    addresses = parse_connection_recipients(settings.get_option("admin_emails").strip() or None)
    return tuple(addresses), settings.get_option("admin_smtp_conn_id").strip()


class Watchdog:
    def __init__(
        self,
        *,
        store: Any = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        send: Sender = send_with_email_channel,
        worker: str | None = None,
        read_airflow: bool = True,
    ) -> None:
        self._store = store
        self._clock = clock
        self._send = send
        self._read_airflow = read_airflow
        self.worker = worker or f"{socket.gethostname()}:{id(self):x}"
        self._warned_unconfigured = False

    def store(self) -> Any:
        if self._store is None:
            from airflow_failnotify.store import get_store

            self._store = get_store()
        return self._store

    def tick(self) -> HealthReport:
        now = self._clock()
        if self._read_airflow:
            self._sync_import_errors(now)
        report = health_service.health_report(
            self.store(),
            now=now,
            read_airflow=self._read_airflow,
            connection_exists=health_service.cached_connection_exists,
        )
        publish_metrics(report)
        store_check = next(c for c in report.checks if c.name == "store")
        store_down = report.facts.store_error is not None
        # The store-outage episode (host-local); it recovers as soon as the store answers again.
        with _local_episode() as (state, save):
            store_bad = store_check.status is HealthStatus.BAD
            new = decide.step(state, store_bad, (f"store: {store_check.message}",), now)
            new = self._deliver(new, report, now)
            save(new)
        if not store_down:
            self._store_episode(report, now)
        return report

    # --- Broken DAGs -----------------------------------------------------------------------------

    def _sync_import_errors(self, now: datetime) -> None:
        from airflow_failnotify.service.broken_dags import sync_import_errors

        try:
            store = self.store()
            dag_ids = sorted(store.registered_dag_ids())
            if not dag_ids:
                return
            from airflow_failnotify.lookups.airflow_health import import_errors

            recorded = sync_import_errors(store, import_errors(dag_ids), now=now)
            if recorded:
                log.info("failnotify watchdog: %d broken DAG episode(s) recorded", recorded)
        except Exception as err:  # the store down is the health's business, not an error here
            log.debug("failnotify watchdog: import errors not synchronised (%s)", err)

    # --- episodes --------------------------------------------------------------------------------

    def _store_episode(self, report: HealthReport, now: datetime) -> None:
        store = self.store()
        try:
            raw = store.get_setting(EPISODE_KEY)
            state = WatchdogState.from_json(raw)
            new = decide.step(state, report.status is HealthStatus.BAD, decide.bad_reasons(report), now)
            if decide.claimable(new, self.worker, now):
                new = decide.claim(new, self.worker, now, CLAIM_LEASE)
            if new == state:
                return
            if not store.compare_and_set_setting(EPISODE_KEY, raw, new.to_json(), now=now):
                return  # another watchdog moved first; its view wins this tick
            if new.due is None or new.claimed_by != self.worker:
                return
            done = self._deliver(new, report, now)
            store.compare_and_set_setting(EPISODE_KEY, new.to_json(), done.to_json(), now=now)
        except Exception as err:
            log.warning("failnotify watchdog: episode not updated (%s)", err)

    def _deliver(self, state: WatchdogState, report: HealthReport, now: datetime) -> WatchdogState:
        """Send the due mail of ``state``; the state after it (sent, or still due)."""
        if state.due is None:
            return state
        to, conn_id = _admins()
        if not to or not conn_id:
            if not self._warned_unconfigured:
                log.warning(
                    "failnotify watchdog: health is %s but [failnotify] admin_emails / admin_smtp_conn_id "
                    "are not set, so no admin is mailed",
                    report.status.value,
                )
                self._warned_unconfigured = True
            return decide.mark_sent(state) if state.due == decide.RECOVERED_MAIL else decide.release(state)
        instance = settings.airflow_base_url() or socket.gethostname()
        mail = decide.render_admin_mail(state, report, to=to, instance=instance, now=now)
        try:
            self._send(conn_id, mail)
        except Exception as err:
            log.warning("failnotify watchdog: the admin mail could not be sent (%s); next tick", err)
            return decide.release(state)
        log.warning("failnotify watchdog: mailed the admins: %s", mail.subject)
        return decide.mark_sent(state)


@contextmanager
def _local_episode() -> Iterator[tuple[WatchdogState, Callable[[WatchdogState], None]]]:
    path = health_service.watchdog_dir() / LOCAL_EPISODE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        state = WatchdogState.from_json(handle.read())

        def save(new: WatchdogState) -> None:
            if new != state:
                handle.seek(0)
                handle.truncate()
                handle.write(new.to_json())
                handle.flush()

        yield state, save


def local_episode_path() -> Path:
    return health_service.watchdog_dir() / LOCAL_EPISODE_FILE
