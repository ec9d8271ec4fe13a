"""The health model: facts about failure notification itself in, checks (ok / warn / bad) out.

Pure: imports nothing from Airflow, SQLAlchemy or Flask. :mod:`airflow_failnotify.service.health`
gathers the facts; the CLI, the JSON endpoint, the views' banner, the metrics and the watchdog all
show the one :class:`HealthReport` that :func:`evaluate_health` makes of them.

Decisions (issue 14):

* ``bad`` is exactly what the watchdog mails the admins about: no completed pass for longer than
  ``pass_late_after`` (default twice the schedule's interval, whether the DAG is paused or just not
  running), the notification DAG missing, its last ``failing_runs`` runs failed, the store
  unreachable for ``store_down_after`` (default 5 minutes) or not migrated, the oldest pending mail
  older than ``pending_late_after`` (default twice the interval plus 10 minutes).
* ``warn`` is for what a person should look at but that does not (yet) stop notification: the DAG
  paused (bad once the last pass is late), its last run failed, it is missing before any pass ever
  completed (a fresh install), the store unreachable for a shorter
  time, mails failed permanently, events waiting in the spool or outage reports waiting, a registered
  DAG missing or broken, a connection that does not resolve, the schedule kept from the cache.
* A fact that could not be learned (Airflow's database unreadable, the store down) is ``None`` and
  its check says "unknown" as a warning, never ok.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


class HealthStatus(str, enum.Enum):
    OK = "ok"
    WARN = "warn"
    BAD = "bad"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def exit_code(self) -> int:
        """``failnotify health``: 0 ok, 1 warn, 2 bad."""
        return _RANK[self]


_RANK = {HealthStatus.OK: 0, HealthStatus.WARN: 1, HealthStatus.BAD: 2}


class RegistrationProblem(str, enum.Enum):
    DAG_MISSING = "dag_missing"  # Airflow does not know the DAG (deleted, or never parsed)
    DAG_BROKEN = "dag_broken"  # the DAG's file fails to import
    CONNECTION_MISSING = "connection_missing"  # the email server connection does not resolve


@dataclass(frozen=True)
class RegistrationFlag:
    """A registration that cannot work as configured; shown in the views, the CLI and the health."""

    integration: str
    direction: str
    dag_id: str
    problem: RegistrationProblem
    detail: str = ""

    @property
    def label(self) -> str:
        if self.problem is RegistrationProblem.DAG_MISSING:
            return f"DAG {self.dag_id} not found in Airflow"
        if self.problem is RegistrationProblem.DAG_BROKEN:
            return f"DAG {self.dag_id} fails to import"
        return f"connection {self.detail} not found"

    def to_dict(self) -> dict[str, str]:
        return {
            "integration": self.integration,
            "direction": self.direction,
            "dag_id": self.dag_id,
            "problem": self.problem.value,
            "detail": self.detail,
            "message": self.label,
        }


@dataclass(frozen=True)
class NotificationDagFacts:
    """The notification DAG as Airflow's database knows it."""

    present: bool
    paused: bool = False
    recent_run_states: tuple[str, ...] = ()  # finished runs, newest first


@dataclass(frozen=True)
class Thresholds:
    pass_late_after: timedelta
    store_down_after: timedelta
    pending_late_after: timedelta
    failing_runs: int = 2

    @classmethod
    def for_interval(
        cls,
        interval: timedelta,
        *,
        pass_late_after: timedelta | None = None,
        store_down_after: timedelta = timedelta(minutes=5),
        pending_late_after: timedelta | None = None,
        failing_runs: int = 2,
    ) -> Thresholds:
        """The issue's defaults from the schedule's interval; each one can be given instead."""
        return cls(
            pass_late_after=pass_late_after if pass_late_after is not None else 2 * interval,
            store_down_after=store_down_after,
            pending_late_after=(
                pending_late_after if pending_late_after is not None else 2 * interval + timedelta(minutes=10)
            ),
            failing_runs=max(1, failing_runs),
        )


@dataclass(frozen=True)
class ScheduleFacts:
    cron: str
    source: str  # "settings view", "[failnotify] notification_schedule", "default", "cache"
    interval: timedelta
    note: str = ""  # why the DAG runs on a cached schedule, when it does


@dataclass(frozen=True)
class HealthFacts:
    """Everything the checks look at; ``None`` means "could not be learned"."""

    now: datetime
    schedule: ScheduleFacts
    store_error: str | None = None  # None: the store answered
    store_not_migrated: bool = False
    store_unreachable_since: datetime | None = None
    last_pass_at: datetime | None = None  # the last completed pass
    notification_dag: NotificationDagFacts | None = None
    pending: int | None = None
    failed: int | None = None
    oldest_pending_at: datetime | None = None
    spool_files: int = 0
    spool_records: int = 0
    outage_reports: int = 0
    registrations: int | None = None
    flags: tuple[RegistrationFlag, ...] = ()


@dataclass(frozen=True)
class Check:
    name: str
    status: HealthStatus
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status.value, "message": self.message}


@dataclass(frozen=True)
class HealthReport:
    status: HealthStatus
    checks: tuple[Check, ...]
    facts: HealthFacts
    thresholds: Thresholds

    @property
    def last_pass_age(self) -> timedelta | None:
        if self.facts.last_pass_at is None:
            return None
        return self.facts.now - self.facts.last_pass_at

    def problems(self, at_least: HealthStatus = HealthStatus.WARN) -> list[Check]:
        return [c for c in self.checks if c.status.rank >= at_least.rank]

    def minimal_dict(self) -> dict[str, Any]:
        """For anyone (external monitors): the overall status and the last pass's age, no names."""
        age = self.last_pass_age
        return {
            "status": self.status.value,
            "last_pass_age_seconds": None if age is None else int(age.total_seconds()),
            "checked_at": self.facts.now.isoformat(),
        }

    def to_dict(self) -> dict[str, Any]:
        """The detailed form (admins, ``failnotify health --json``)."""
        facts = self.facts
        return {
            **self.minimal_dict(),
            "checks": [c.to_dict() for c in self.checks],
            "schedule": {
                "cron": facts.schedule.cron,
                "source": facts.schedule.source,
                "interval_seconds": int(facts.schedule.interval.total_seconds()),
                "note": facts.schedule.note,
            },
            "last_pass_at": _iso(facts.last_pass_at),
            "store": {
                "reachable": facts.store_error is None,
                "error": facts.store_error,
                "unreachable_since": _iso(facts.store_unreachable_since),
                "migrated": not facts.store_not_migrated if facts.store_error is None else None,
            },
            "notification_dag": (
                None
                if facts.notification_dag is None
                else {
                    "present": facts.notification_dag.present,
                    "paused": facts.notification_dag.paused,
                    "recent_run_states": list(facts.notification_dag.recent_run_states),
                }
            ),
            "outbox": {
                "pending": facts.pending,
                "failed": facts.failed,
                "oldest_pending_at": _iso(facts.oldest_pending_at),
            },
            "spool": {
                "files": facts.spool_files,
                "records": facts.spool_records,
                "outage_reports": facts.outage_reports,
            },
            "registrations": facts.registrations,
            "flags": [f.to_dict() for f in facts.flags],
            "thresholds": {
                "pass_late_after_seconds": int(self.thresholds.pass_late_after.total_seconds()),
                "store_down_after_seconds": int(self.thresholds.store_down_after.total_seconds()),
                "pending_late_after_seconds": int(self.thresholds.pending_late_after.total_seconds()),
                "failing_runs": self.thresholds.failing_runs,
            },
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def age_text(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def evaluate_health(facts: HealthFacts, thresholds: Thresholds) -> HealthReport:
    """The checks and the overall status (the worst check)."""
    checks = [
        _store_check(facts, thresholds),
        _pass_check(facts, thresholds),
        _dag_check(facts, thresholds),
        _outbox_check(facts, thresholds),
        _spool_check(facts),
        _registrations_check(facts),
        _schedule_check(facts),
    ]
    status = max((c.status for c in checks), key=lambda s: s.rank)
    return HealthReport(status=status, checks=tuple(checks), facts=facts, thresholds=thresholds)


def _store_check(facts: HealthFacts, th: Thresholds) -> Check:
    if facts.store_error is None:
        if facts.store_not_migrated:
            return Check("store", HealthStatus.BAD, "the store is not migrated: run `failnotify db migrate`")
        return Check("store", HealthStatus.OK, "reachable and migrated")
    since = facts.store_unreachable_since or facts.now
    down = facts.now - since
    status = HealthStatus.BAD if down >= th.store_down_after else HealthStatus.WARN
    return Check("store", status, f"unreachable for {age_text(down)}: {facts.store_error}")


def _pass_check(facts: HealthFacts, th: Thresholds) -> Check:
    if facts.store_error is not None:
        return Check("last_pass", HealthStatus.WARN, "unknown (the store cannot be read)")
    if facts.last_pass_at is None:
        return Check("last_pass", HealthStatus.WARN, "no notification pass has completed yet")
    age = facts.now - facts.last_pass_at
    if age > th.pass_late_after:
        return Check(
            "last_pass",
            HealthStatus.BAD,
            f"the last completed pass was {age_text(age)} ago (more than {age_text(th.pass_late_after)})",
        )
    return Check("last_pass", HealthStatus.OK, f"the last completed pass was {age_text(age)} ago")


def _pass_late(facts: HealthFacts, th: Thresholds) -> bool:
    return facts.last_pass_at is not None and facts.now - facts.last_pass_at > th.pass_late_after


def _dag_check(facts: HealthFacts, th: Thresholds) -> Check:
    dag = facts.notification_dag
    if dag is None:
        return Check("notification_dag", HealthStatus.WARN, "unknown (Airflow's database cannot be read)")
    if not dag.present:
        # Bad once notification has worked (a pass completed): it was installed and is gone. Before
        # the first pass (a fresh install, the first parse still to come) it is a warning.
        status = HealthStatus.BAD if facts.last_pass_at is not None else HealthStatus.WARN
        return Check(
            "notification_dag",
            status,
            "the notification DAG is not in Airflow: install it (`failnotify install-dag`)",
        )
    if dag.paused:
        status = HealthStatus.BAD if _pass_late(facts, th) else HealthStatus.WARN
        return Check("notification_dag", status, "the notification DAG is paused: no mail goes out")
    failed = 0
    for state in dag.recent_run_states:
        if state != "failed":
            break
        failed += 1
    if failed >= th.failing_runs:
        return Check("notification_dag", HealthStatus.BAD, f"its last {failed} runs failed")
    if failed:
        return Check("notification_dag", HealthStatus.WARN, "its last run failed")
    return Check("notification_dag", HealthStatus.OK, "unpaused")


def _outbox_check(facts: HealthFacts, th: Thresholds) -> Check:
    if facts.pending is None:
        return Check("outbox", HealthStatus.WARN, "unknown (the store cannot be read)")
    message = f"{facts.pending} pending, {facts.failed or 0} failed"
    status = HealthStatus.OK
    if facts.oldest_pending_at is not None:
        age = facts.now - facts.oldest_pending_at
        message += f", the oldest pending is {age_text(age)} old"
        if age > th.pending_late_after:
            status = HealthStatus.BAD
            message += f" (more than {age_text(th.pending_late_after)})"
    if facts.failed and status is HealthStatus.OK:
        status = HealthStatus.WARN
        message += "; retry the failed mails in Error Management"
    return Check("outbox", status, message)


def _spool_check(facts: HealthFacts) -> Check:
    if not facts.spool_files and not facts.outage_reports:
        return Check("spool", HealthStatus.OK, "empty")
    return Check(
        "spool",
        HealthStatus.WARN,
        f"{facts.spool_records} event(s) in {facts.spool_files} spool file(s) and "
        f"{facts.outage_reports} store outage report(s) wait for the store",
    )


def _registrations_check(facts: HealthFacts) -> Check:
    if facts.registrations is None:
        return Check("registrations", HealthStatus.WARN, "unknown (the store cannot be read)")
    if not facts.flags:
        return Check("registrations", HealthStatus.OK, f"{facts.registrations} registered, none flagged")
    listed = "; ".join(f"{f.integration}: {f.label}" for f in facts.flags[:10])
    more = f" (and {len(facts.flags) - 10} more)" if len(facts.flags) > 10 else ""
    return Check("registrations", HealthStatus.WARN, f"{len(facts.flags)} flagged: {listed}{more}")


def _schedule_check(facts: HealthFacts) -> Check:
    schedule = facts.schedule
    text = f"{schedule.cron} UTC ({schedule.source})"
    if schedule.note:
        return Check("schedule", HealthStatus.WARN, f"{text}: {schedule.note}")
    return Check("schedule", HealthStatus.OK, text)


def flags_by_integration(flags: Sequence[RegistrationFlag]) -> dict[str, list[RegistrationFlag]]:
    out: dict[str, list[RegistrationFlag]] = {}
    for flag in flags:
        out.setdefault(flag.integration, []).append(flag)
    return out


__all__ = [
    "Check",
    "HealthFacts",
    "HealthReport",
    "HealthStatus",
    "NotificationDagFacts",
    "RegistrationFlag",
    "RegistrationProblem",
    "ScheduleFacts",
    "Thresholds",
    "age_text",
    "evaluate_health",
    "flags_by_integration",
]
