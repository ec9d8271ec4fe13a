"""The immediate trigger's firing rule: at once while passes work, exponential capped back-off while not."""

from __future__ import annotations

from itertools import pairwise

import pytest

from airflow_failnotify.core.backoff import Backoff, FiringState, ImmediateFiring, Pending

RULE = ImmediateFiring(Backoff(base_seconds=5, cap_seconds=60), settle_seconds=30)


def run(rule: ImmediateFiring, polls: list[tuple[float, Pending]],
        state: FiringState | None = None) -> tuple[list[float], FiringState]:
    """The times at which the rule fires over ``polls`` (time, pending), and the final state."""
    state = state or FiringState()
    fired = []
    for now, pending in polls:
        decision = rule.step(state, pending, now)
        state = decision.state
        if decision.fire:
            fired.append(now)
    return fired, state


def every(seconds: float, until: float, pending: Pending, start: float = 0.0) -> list[tuple[float, Pending]]:
    return [(start + i * seconds, pending) for i in range(int((until - start) / seconds) + 1)]


def test_delay_doubles_from_the_base_and_stops_at_the_cap() -> None:
    backoff = Backoff(base_seconds=5, cap_seconds=60)
    assert [backoff.delay(n) for n in range(7)] == [0, 5, 10, 20, 40, 60, 60]
    assert backoff.delay(10_000) == 60  # no overflow however long it fails


@pytest.mark.parametrize("kwargs", [{"base_seconds": 0}, {"base_seconds": 10, "cap_seconds": 5},
                                    {"factor": 0.5}])
def test_a_backoff_that_would_not_back_off_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_each_new_failure_fires_at_once_while_passes_answer() -> None:
    state = FiringState()
    fired = []
    for now, newest in ((0, 1), (2, 1), (4, 2), (6, 3)):
        # the previous pass evaluated everything before the newest failure arrived
        decision = RULE.step(state, Pending(oldest=newest, newest=newest), now)
        state = decision.state
        fired.append(decision.fire)
    assert fired == [True, False, True, True]
    assert state.failures == 0


def test_nothing_pending_never_fires() -> None:
    fired, state = run(RULE, every(2, 600, Pending()))
    assert fired == [] and state.failures == 0


def test_while_no_pass_answers_the_fires_back_off_exponentially_up_to_the_cap() -> None:
    # One failure stays unevaluated for 15 minutes and new ones keep arriving every 2 s.
    polls = [(t, Pending(oldest=1, newest=1 + int(t // 2))) for t in range(0, 901, 2)]
    fired, state = run(RULE, polls)
    after = [t for t in fired if t >= 30]
    # judged failed 30 s after each fire; the next waits 5, 10, 20, 40, 60, 60 ... s (next 2 s poll)
    assert after[:6] == [36, 76, 126, 196, 286, 376]
    assert {b - a for a, b in pairwise(after[5:])} == {90}  # capped: 30 s settle + 60 s
    assert len(fired) == 15 + 11  # the unbounded trigger fired 451 times here
    assert state.failures == 12  # the first window (one watched fire) and 11 retries, each unanswered


def test_fires_for_new_failures_until_the_first_judgement_then_one_at_a_time() -> None:
    polls = [(t, Pending(oldest=1, newest=1 + int(t // 2))) for t in range(0, 121, 2)]
    fired, _state = run(RULE, polls)
    assert [t for t in fired if t < 30] == list(range(0, 30, 2))  # not yet known to fail: at once
    assert [t for t in fired if t >= 30] == [36, 76]


def test_a_retry_goes_off_without_a_new_failure() -> None:
    fired, state = run(RULE, every(1, 200, Pending(oldest=7, newest=7)))
    assert fired[:3] == [0, 35, 75]  # fire, judged at 30 (+5), judged at 65 (+10)
    assert state.failures >= 3


def test_a_pass_that_answers_resets_the_backoff() -> None:
    _fired, failing = run(RULE, every(1, 300, Pending(oldest=7, newest=7)))
    assert failing.failures >= 4
    # A pass evaluates 7; a new failure 8 arrives: it fires at once again.
    decision = RULE.step(failing, Pending(oldest=8, newest=8), 301)
    assert decision.state.failures == 0 and decision.fire


def test_the_scheduled_pass_evaluating_the_stuck_failures_resets_the_backoff() -> None:
    _fired, failing = run(RULE, every(1, 33, Pending(oldest=7, newest=7)))
    assert failing.failures == 1 and failing.watched_oldest == 0
    quiet = RULE.step(failing, Pending(), 34)  # nothing pending: some pass evaluated them
    assert quiet.state.failures == 0 and not quiet.fire
    assert RULE.step(quiet.state, Pending(oldest=9, newest=9), 35).fire


def test_a_slow_pass_that_answers_within_the_settle_window_is_no_failure() -> None:
    polls = [(t, Pending(oldest=3, newest=3)) for t in range(0, 29)] + [(29, Pending(oldest=4, newest=4))]
    fired, state = run(RULE, polls)
    assert fired == [0, 29] and state.failures == 0


def test_progress_by_a_partial_pass_counts_as_an_answer() -> None:
    # A pass evaluates a batch (oldest moves from 1 to 5000) but not everything: it did run.
    fired, state = run(RULE, [(0, Pending(1, 9000)), (20, Pending(5000, 9000)), (60, Pending(5000, 9000))])
    assert fired == [0]
    assert state.failures == 0  # the later poll has nothing new to judge: 9000 was already fired for


def test_the_failed_fire_is_reported_once_per_judgement() -> None:
    state = FiringState()
    reports = []
    for now in range(0, 120):
        decision = RULE.step(state, Pending(oldest=1, newest=1), float(now))
        state = decision.state
        if decision.failed_fire:
            reports.append((now, state.failures))
    assert reports == [(30, 1), (65, 2), (105, 3)]


def test_settle_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ImmediateFiring(settle_seconds=0)
