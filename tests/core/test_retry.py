"""The retry policy: what a failed send does to the notification and its server."""

from __future__ import annotations

import pytest

from airflow_failnotify.core.model import OutboxState
from airflow_failnotify.core.retry import (
    RetryPolicy,
    SendFailure,
    SendStage,
    Treatment,
    classify_reply,
    enhanced_code,
    refusal_hint,
)


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


@pytest.mark.parametrize(
    ("stage", "code", "reply", "permanent", "server_level"),
    [
        (SendStage.MAIL, 552, "5.3.4 Message size exceeds fixed limit", True, False),
        (SendStage.MAIL, 552, "Error: message size exceeds fixed maximum message size", True, False),
        (SendStage.DATA, 552, "5.3.4 Message size exceeds fixed limit", True, False),
        (SendStage.DATA, 554, "5.6.0 Message content rejected", True, False),
        (SendStage.RCPT, 550, "5.7.1 Relaying denied", True, False),
        (SendStage.MAIL, 550, "5.7.1 Message refused by policy", True, False),
        (SendStage.DATA, 451, "4.3.0 Try again later", False, False),
        (SendStage.MAIL, 553, "5.1.8 Sender address rejected", False, True),
        (SendStage.MAIL, 530, "5.7.0 Authentication required", False, True),
        (SendStage.AUTH, 535, "5.7.8 Authentication credentials invalid", False, True),
        (SendStage.DATA, 421, "4.4.2 Closing connection", False, True),
    ],
)
def test_smtp_replies_are_classified_by_stage_and_enhanced_code(
    stage: SendStage, code: int, reply: str, permanent: bool, server_level: bool
) -> None:
    assert classify_reply(stage, code, reply) == Treatment(permanent=permanent, server_level=server_level)


def test_a_size_refusal_hint_says_how_big_and_what_would_shrink_it() -> None:
    hint = refusal_hint(SendStage.MAIL, 552, "5.3.4 Message size exceeds fixed limit", 53 * 1024)
    assert "message of 53 KB exceeds the server's size limit" in hint and "Include error trace" in hint


def test_the_enhanced_code_is_read_from_the_reply_text_only_when_present() -> None:
    assert enhanced_code("5.3.4 Message size exceeds fixed limit") == "5.3.4"
    assert enhanced_code("Error: message size exceeds 5 MB") is None
