"""The vocabulary of the pure core: registrations, recorded events and notifications.

Nothing here imports Airflow or SQLAlchemy. The store turns its rows into these
objects and back; the rules, the renderers and the outbox logic only ever see these.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime


class Direction(str, enum.Enum):
    FORWARD = "forward"
    BACKWARD = "backward"


class NotificationKind(str, enum.Enum):
    NOT_ACCESSIBLE = "not_accessible"
    GLOBAL_IMMEDIATE = "global_immediate"
    GLOBAL_THRESHOLD = "global_threshold"
    INACTIVITY = "inactivity"
    PROCESSING = "processing"
    BROKEN_DAG = "broken_dag"  # the DAG's file fails to import (issue 14)
    RECOVERY = "recovery"  # "back to normal": a failing episode ended (issue 18, opt-in)

    @property
    def is_immediate(self) -> bool:
        """Kinds that do not wait for the schedule (DESIGN.md, Rules table)."""
        return self in (NotificationKind.NOT_ACCESSIBLE, NotificationKind.GLOBAL_IMMEDIATE)


class EventKind(str, enum.Enum):
    RUN_FAILED = "run_failed"  # a DAG run ended failed (global / job failure)
    RUN_SUCCEEDED = "run_succeeded"  # resets the consecutive failure count
    TASK_FAILED = "task_failed"  # a task instance failed (processing failure)
    ENTITY_FAILED = "entity_failed"  # record_entity_failure() from inside a task
    # The DAG's file failed to import (Airflow's import-error records, read by the watchdog). Not
    # activity; run_id names the broken episode, entity the file, error_message the import error.
    DAG_IMPORT_ERROR = "dag_import_error"


class OutboxState(str, enum.Enum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CLOSED = "closed"
    # Written while its integration was silenced; held (not pending: the watchdog's pending-age alarm
    # ignores it) until ``hold_until``, then released to pending (service/silences.py).
    SILENCED = "silenced"
    # Due, but its recipient set got the storm cap's mails this window (core/storm.py): held (not
    # pending, like silenced) until ``hold_until``, the window's end, then sent in one storm digest.
    STORM_HELD = "storm_held"


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------

THRESHOLD_MIN = 1
THRESHOLD_MAX = 20


@dataclass(frozen=True)
class GlobalSettings:
    enabled: bool = True
    inactivity_minutes: int | None = None  # None: no inactivity mail
    notify_immediately: bool = True
    failure_count_threshold: int = 1  # used only when notify_immediately is False


@dataclass(frozen=True)
class ProcessingSettings:
    enabled: bool = True
    notify_before_max_retries: bool = False


GROUP_WAIT_MAX_SECONDS = 300
REPEAT_INTERVAL_MAX_MINUTES = 1440


@dataclass(frozen=True)
class NoiseSettings:
    """Noise control (issue 18): how the due notifications of one integration-direction go out.

    The defaults cut noise without hiding anything (README, Noise control): one mail per
    integration-direction per pass, a 5 s group wait, at most one mail an hour of the same kind while
    an episode lasts. Registrations saved before keep their stored values (migration 0004: all off).
    """

    coalesce: bool = True  # one mail per integration-direction per pass
    group_wait_seconds: int = 5  # the immediate path waits this long to gather more (0..300)
    repeat_interval_minutes: int = 60  # within one episode at most one mail per interval; 0 = off (0..1440)
    recovery_mail: bool = False  # "back to normal" mail when a failing episode ends


@dataclass(frozen=True)
class DirectionSettings:
    """Everything that can differ between the forward and the backward direction."""

    smtp_conn_id: str
    recipients: tuple[str, ...]
    cc: tuple[str, ...] = ()
    subject_prefix: str = ""
    include_error_trace: bool = True
    global_: GlobalSettings = field(default_factory=GlobalSettings)
    processing: ProcessingSettings = field(default_factory=ProcessingSettings)
    noise: NoiseSettings = field(default_factory=NoiseSettings)


@dataclass(frozen=True)
class Registration:
    """One integration registered for failure notification.

    ``integration`` is the forward DAG id and names the registration everywhere.
    ``backward`` holds the backward direction's own settings when ``same_for_backward``
    is False (already merged with the forward ones for omitted keys); otherwise None.
    """

    integration: str
    forward: DirectionSettings
    backward_integration: str | None = None
    same_for_backward: bool = True
    backward: DirectionSettings | None = None
    registered_at: datetime | None = None

    def directions(self) -> tuple[Direction, ...]:
        if self.backward_integration:
            return (Direction.FORWARD, Direction.BACKWARD)
        return (Direction.FORWARD,)

    def dag_id_for(self, direction: Direction) -> str:
        if direction is Direction.BACKWARD:
            if not self.backward_integration:
                raise ValueError(f"{self.integration} has no backward DAG")
            return self.backward_integration
        return self.integration

    def settings_for(self, direction: Direction) -> DirectionSettings:
        if direction is Direction.BACKWARD and not self.same_for_backward and self.backward is not None:
            return self.backward
        return self.forward

    def direction_of(self, dag_id: str) -> Direction | None:
        if dag_id == self.integration:
            return Direction.FORWARD
        if self.backward_integration and dag_id == self.backward_integration:
            return Direction.BACKWARD
        return None


# ---------------------------------------------------------------------------------------------
# Recorded events
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailureEvent:
    """A row of the events table, as the rules see it.

    ``entity`` names the failed thing: the task id (``task_id[map_index]`` or the rendered
    map index for mapped tasks), or the entity id given to ``record_entity_failure``.
    ``is_final`` is False for a failure that will be retried. ``not_accessible`` was decided
    at capture time from the live exception (a string error is never not-accessible).
    """

    id: int
    kind: EventKind
    integration: str
    direction: Direction
    dag_id: str
    run_id: str
    occurred_at: datetime
    task_id: str | None = None
    map_index: int = -1
    entity: str | None = None
    try_number: int | None = None
    max_tries: int | None = None
    is_final: bool = True
    not_accessible: bool = False
    error_message: str = ""
    traceback: str = ""


@dataclass(frozen=True)
class DirectionState:
    """What the rules remember per (integration, direction) between evaluations."""

    integration: str
    direction: Direction
    # Failed runs counted towards the threshold since the last reset, oldest first (event ids).
    consecutive_failure_event_ids: tuple[int, ...] = ()
    last_activity_at: datetime | None = None
    # Start of the quiet spell already notified; None when no spell has been notified.
    notified_spell_start: datetime | None = None
    # The first pass that saw the DAG unpaused after a pause restarts the inactivity clock.
    was_paused: bool = False
    unpaused_seen_at: datetime | None = None
    # The failure events behind ``consecutive_failure_event_ids`` (same order), which the threshold
    # mail lists. The store may persist only the ids and load these rows back by id.
    counted_failures: tuple[FailureEvent, ...] = ()
    # The DAG this state was tracking and the first evaluation that saw it linked to this direction:
    # a backward DAG linked (or re-linked) by an update starts its own count and inactivity clock.
    dag_id: str | None = None
    tracked_since: datetime | None = None
    # The failure episode this direction is in (None: none open). An episode runs from the first
    # notified failure to the next successful run with no final task or entity failure; its key is
    # the dedupe key of its first notification, whose Message-ID roots the mail thread.
    episode_key: str | None = None
    # Runs with a final task or entity failure seen lately (newest last, capped): such a run ending
    # "success" does not end the episode.
    failing_runs: tuple[str, ...] = ()
    # What the open episode's recovery mail tells (issue 18): its first failure, and the failed runs and
    # the final task or entity failures seen while it was open. None/0 with no episode open (or one
    # opened before these were kept).
    episode_started_at: datetime | None = None
    episode_failed_runs: int = 0
    episode_failures: int = 0


class DagPresence(str, enum.Enum):
    ACTIVE = "active"
    MISSING = "missing"
    BROKEN = "broken"


@dataclass(frozen=True)
class DagStatus:
    """A DAG's status at evaluation time (Airflow's Task SDK). A DAG not looked up: the defaults.

    ``presence`` tells a DAG Airflow knows (active) from one it does not (missing: deleted or
    never parsed) and one whose file fails to import (broken). A broken DAG gets no inactivity
    notification (its Broken DAG notification says why it is quiet); the health checks read all three.
    """

    is_paused: bool = False
    has_running_run: bool = False  # a run still in progress counts as activity
    presence: DagPresence = DagPresence.ACTIVE


# ---------------------------------------------------------------------------------------------
# Notifications
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EpisodeSummary:
    """An ended failure episode, as its recovery mail tells it (issue 18)."""

    started_at: datetime | None  # its first failure; None for an episode opened before this was kept
    ended_at: datetime  # the successful run that ended it
    run_id: str  # that run
    failed_runs: int = 0
    failures: int = 0  # final task and entity failures


@dataclass(frozen=True)
class NotificationDraft:
    """A notification the rules decided is due; the store writes it to the outbox.

    ``dedupe_key`` is unique in the outbox (DESIGN.md's Rules table), which is what makes
    "at most one notification of each kind per failure, ever" hold even when two
    evaluations race. ``events`` are the failures it reports, in order.
    """

    kind: NotificationKind
    integration: str
    direction: Direction
    dedupe_key: str
    created_at: datetime
    events: Sequence[FailureEvent] = ()
    run_id: str | None = None
    inactivity_minutes: int | None = None
    quiet_since: datetime | None = None
    # The failure episode it belongs to (DirectionState.episode_key); equal to ``dedupe_key`` for
    # the episode's first notification. None for drafts made before episodes existed.
    episode_key: str | None = None
    # Job failures (immediate, threshold): the task failures recorded for the runs it reports, read
    # by the service when the draft is written (final failures only, each run's in task order).
    failed_tasks: tuple[FailureEvent, ...] = ()
    # Recovery ("back to normal"): the episode that ended; None for every other kind.
    recovery: EpisodeSummary | None = None
