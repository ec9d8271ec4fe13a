"""The retry policy: what a failed send does to the notification and its server."""

from __future__ import annotations

from airflow_failnotify.core.model import OutboxState
from airflow_failnotify.core.retry import RetryPolicy, SendFailure, SendStage, Treatment


def test_a_server_level_failure_keeps_the_mail_pending_and_pauses_the_server() -> None:
    failure = SendFailure("535 5.7.8 bad", temporary=False, server_level=True, stage=SendStage.AUTH)
    verdict = RetryPolicy(max_attempts=1).after_failure(0, failure)
    assert (verdict.state, verdict.attempts, verdict.pause_server) == (OutboxState.PENDING, 1, True)


def test_a_permanent_message_failure_fails_once_attempts_are_used() -> None:
    failure = SendFailure("550 every recipient refused", temporary=False, server_level=False)
    policy = RetryPolicy(max_attempts=3)
    assert policy.after_failure(1, failure).state is OutboxState.PENDING
    assert policy.after_failure(2, failure).state is OutboxState.FAILED


def test_a_temporary_message_failure_never_fails_the_mail() -> None:
    failure = SendFailure("451 try later", temporary=True, server_level=False, stage=SendStage.DATA, code=451)
    verdict = RetryPolicy(max_attempts=1).after_failure(10, failure)
    assert (verdict.state, verdict.pause_server) == (OutboxState.PENDING, False)


def test_an_override_keyed_by_stage_and_code_wins_over_the_transport_flags() -> None:
    failure = SendFailure("552 too big", temporary=False, server_level=True, stage=SendStage.MAIL, code=552)
    policy = RetryPolicy(
        max_attempts=1, overrides={(SendStage.MAIL, 552): Treatment(permanent=True, server_level=False)}
    )
    verdict = policy.after_failure(0, failure)
    assert (verdict.state, verdict.pause_server) == (OutboxState.FAILED, False)


def test_configured_values_are_raised_to_the_outbox_bounds() -> None:
    policy = RetryPolicy.from_options(max_attempts=0, lease_seconds=1)
    assert (policy.max_attempts, policy.lease_seconds) == (1, 10)
