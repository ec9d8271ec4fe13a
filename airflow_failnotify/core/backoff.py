"""When the immediate trigger fires: at once while passes work, backing off while they keep failing.

The trigger (triggers/store_events.py) polls the store for unevaluated failures that may need an
immediate notification and fires a notification pass for them. A pass that cannot run (its worker lacks
the store settings, the store refuses it, the DAG is paused) leaves them unevaluated; a trigger that fired
again for every new failure started a failing pass every few seconds (issue 17: 13 failed passes in three
minutes on one misconfigured worker).

So the trigger judges its own fires from what it polls anyway, the ids of the pending failures. A fire is
*answered* when the oldest pending failure it was for has been evaluated (the oldest pending id moved past
it, or nothing is pending): some pass ran. It *failed* when ``settle_seconds`` after it nothing moved. After
``n`` failed fires in a row the next fire waits ``Backoff.delay(n)`` (exponential, capped) and then goes off
even without a new failure (a retry), so a pass that recovers delivers without waiting for the schedule;
while failing, one fire at a time is watched. An answered fire, or the scheduled pass evaluating the
failures, resets the count. Time is a parameter (monotonic seconds), so the rule is tested without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

#: Seconds after a fire by which some pass should have evaluated its oldest failure (a pass's run must
#: be created, queued, started on a worker and wait noise control's group wait; about 10 s on Celery).
DEFAULT_SETTLE_SECONDS = 30.0
DEFAULT_BASE_SECONDS = 5.0
DEFAULT_CAP_SECONDS = 300.0


@dataclass(frozen=True)
class Backoff:
    """``delay(n) = min(cap, base * factor ** (n - 1))`` s after the n-th failure in a row (0 for none)."""

    base_seconds: float = DEFAULT_BASE_SECONDS
    cap_seconds: float = DEFAULT_CAP_SECONDS
    factor: float = 2.0

    def __post_init__(self) -> None:
        if self.base_seconds <= 0:
            raise ValueError(f"the back-off base must be positive, got {self.base_seconds}")
        if self.cap_seconds < self.base_seconds:
            raise ValueError(f"the back-off cap ({self.cap_seconds}) must be at least its base "
                             f"({self.base_seconds})")
        if self.factor < 1:
            raise ValueError(f"the back-off factor must be at least 1, got {self.factor}")

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        exponent = min(failures - 1, 64)  # the cap is reached long before; no float overflow
        return float(min(self.cap_seconds, self.base_seconds * self.factor**exponent))


@dataclass(frozen=True)
class Pending:
    """The unevaluated failures that may need an immediate notification: lowest and highest id (0: none)."""

    oldest: int = 0
    newest: int = 0


@dataclass(frozen=True)
class FiringState:
    fired_for: int = 0  # the newest pending id at the last fire
    last_fired_at: float | None = None
    watched_oldest: int = 0  # the oldest pending id when the watched fire went off (0: none watched)
    watched_since: float = 0.0
    failures: int = 0  # fires in a row that no pass answered
    stuck_at: int = 0  # the oldest pending id when the last fire was judged failed
    not_before: float = 0.0  # no fire before this time (the back-off)


@dataclass(frozen=True)
class Decision:
    state: FiringState
    fire: bool
    failed_fire: bool = False  # this poll judged the watched fire failed (the trigger logs it)


@dataclass(frozen=True)
class ImmediateFiring:
    """The rule: ``step(state, pending, now)`` -> whether to fire now, and the next state."""

    backoff: Backoff = Backoff()
    settle_seconds: float = DEFAULT_SETTLE_SECONDS

    def __post_init__(self) -> None:
        if self.settle_seconds <= 0:
            raise ValueError(f"settle_seconds must be positive, got {self.settle_seconds}")

    def step(self, state: FiringState, pending: Pending, now: float) -> Decision:
        state, failed = self._judge(state, pending, now)
        if not self._due(state, pending, now):
            return Decision(state, fire=False, failed_fire=failed)
        watched = state.watched_oldest != 0
        fired = replace(
            state,
            fired_for=pending.newest,
            last_fired_at=now,
            watched_oldest=state.watched_oldest if watched else pending.oldest,
            watched_since=state.watched_since if watched else now,
        )
        return Decision(fired, fire=True, failed_fire=failed)

    def _due(self, state: FiringState, pending: Pending, now: float) -> bool:
        if pending.newest <= 0 or now < state.not_before:
            return False
        if state.failures == 0:
            return pending.newest > state.fired_for  # a new failure: fire at once
        return state.watched_oldest == 0  # backing off: retry once the last fire is judged

    def _judge(self, state: FiringState, pending: Pending, now: float) -> tuple[FiringState, bool]:
        if state.watched_oldest == 0:
            if state.failures and _moved_past(pending, state.stuck_at):  # e.g. the scheduled pass ran
                return replace(state, failures=0, not_before=0.0, stuck_at=0), False
            return state, False
        if _moved_past(pending, state.watched_oldest):
            # Answered. A later fire that covers what is pending now is watched from when it went off.
            later = (
                pending.oldest != 0
                and state.fired_for >= pending.oldest
                and state.last_fired_at is not None
                and state.last_fired_at > state.watched_since
            )
            return replace(
                state,
                failures=0,
                not_before=0.0,
                stuck_at=0,
                watched_oldest=pending.oldest if later else 0,
                watched_since=(state.last_fired_at or 0.0) if later else 0.0,
            ), False
        if now - state.watched_since < self.settle_seconds:
            return state, False
        failures = state.failures + 1
        return replace(
            state,
            failures=failures,
            not_before=now + self.backoff.delay(failures),
            stuck_at=pending.oldest,
            watched_oldest=0,
            watched_since=0.0,
        ), True


def _moved_past(pending: Pending, oldest: int) -> bool:
    """Some pass evaluated the failure ``oldest`` (and every older one): nothing at or below it is pending."""
    return pending.oldest == 0 or pending.oldest > oldest
