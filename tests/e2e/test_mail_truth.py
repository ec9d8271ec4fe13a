"""Mails that say what happened, read back from the real SMTP server after real Airflow runs.

One bidirectional integration: ``truth_sync_fwd`` (forward: job failures at once, entity failures)
and ``truth_sync_bwd`` (backward: a mail after 2 consecutive failed runs). The forward DAG fails once
and the backward one twice under ``airflow dags test`` (the plugin's listener records the failures);
then one ``failnotify run`` (a real subprocess) sends the mails to the dev SMTP server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from airflow_failnotify.core.model import (
    DirectionSettings,
    GlobalSettings,
    NoiseSettings,
    ProcessingSettings,
    Registration,
)
from devtools.smtp_server import DevSmtpServer
from tests.fixtures.airflow_env import AirflowEnv

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAGS = Path(__file__).resolve().parent / "truth_dags"
FORWARD, BACKWARD = "truth_sync_fwd", "truth_sync_bwd"
BASE_URL = "http://airflow.test:8080"
CONN = "truth_mail"


@dataclass
class Sent:
    messages: list[EmailMessage]  # in the order they arrived
    run_output: str

    def one(self, subject: str) -> EmailMessage:
        (message,) = [m for m in self.messages if str(m["Subject"]) == subject]
        return message


# This module reads each kind's own mail: one mail per notification (noise control has its own tests).
ONE_MAIL_PER_KIND = NoiseSettings(coalesce=False, group_wait_seconds=0, repeat_interval_minutes=0)


def _registration() -> Registration:
    forward = DirectionSettings(
        smtp_conn_id=CONN,
        recipients=("ops@example.com",),
        subject_prefix="[Sync]",
        include_error_trace=False,
        global_=GlobalSettings(notify_immediately=True),
        processing=ProcessingSettings(enabled=True),
        noise=ONE_MAIL_PER_KIND,
    )
    backward = DirectionSettings(
        smtp_conn_id=CONN,
        recipients=("erp@example.com",),
        subject_prefix="[Sync]",
        global_=GlobalSettings(notify_immediately=False, failure_count_threshold=2),
        processing=ProcessingSettings(enabled=False),
        noise=ONE_MAIL_PER_KIND,
    )
    return Registration(
        integration=FORWARD, forward=forward, backward_integration=BACKWARD, same_for_backward=False,
        backward=backward,
    )


@pytest.fixture(scope="module")
def sent(tmp_path_factory: pytest.TempPathFactory, airflow_db_template: Path) -> Iterator[Sent]:
    home = tmp_path_factory.mktemp("mail-truth")
    shutil.copyfile(airflow_db_template, home / "airflow.db")
    with DevSmtpServer() as server:
        conn = {"conn_type": "failnotify_smtp", "host": server.host, "port": server.port,
                "extra": {"auth_type": "none", "security": "none", "from_email": "robot@failnotify.test"}}
        env = AirflowEnv(home=home, dags_folder=DAGS, extra_env={
            f"AIRFLOW_CONN_{CONN.upper()}": json.dumps(conn),
            "AIRFLOW__FAILNOTIFY__BASE_URL": BASE_URL,
        })
        try:
            env.migrate_store()
            env.store().save_registration(_registration())
            for dag_id in (FORWARD, BACKWARD, BACKWARD):
                result = env.airflow("dags", "test", dag_id, check=False)
                assert result.returncode != 0, f"{dag_id} should fail:\n{result.stdout[-2000:]}"
            run = subprocess.run([sys.executable, "-m", "airflow_failnotify", "run"], env=env.env(),
                                 cwd=home, capture_output=True, text=True, timeout=240, check=False)
            assert run.returncode == 0, run.stdout + run.stderr
            # forward: entity failure + job failed; backward: not accessible per run, 2 consecutive failures
            server.wait_for(5, timeout=30)
            parser = BytesParser(policy=policy.default)
            messages = [parser.parsebytes(received.raw) for received in server.messages]
            yield Sent(messages, run.stdout + run.stderr)  # type: ignore[arg-type]
        finally:
            env.close()


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def test_the_mails_that_arrived(sent: Sent) -> None:
    assert sorted(str(m["Subject"]) for m in sent.messages) == [
        "[Sync] 1 entity failure: truth_sync_fwd (forward)",
        "[Sync] 2 consecutive job failures: truth_sync_bwd (backward of truth_sync_fwd)",
        "[Sync] Job failed: truth_sync_fwd (forward)",
        "[Sync] Not accessible: truth_sync_bwd (backward of truth_sync_fwd)",
        "[Sync] Not accessible: truth_sync_bwd (backward of truth_sync_fwd)",
    ]


def test_a_job_failure_mail_holds_the_failing_tasks_exception_and_log_link(sent: Sent) -> None:
    text = text_of(sent.one("[Sync] Job failed: truth_sync_fwd (forward)"))
    error = "ValueError: ERP rejected CUST-1003: field 'vat_id' must be 11 characters"
    assert f"extract (try 1 of 1): {error}" in text
    assert f"Log: {BASE_URL}/dags/truth_sync_fwd/runs/" in text and "/tasks/extract" in text
    assert "fine" not in text.split("Failed tasks:")[1].split("---")[0]  # only what failed


def test_a_threshold_mail_lists_each_runs_failed_task(sent: Sent) -> None:
    text = text_of(sent.one("[Sync] 2 consecutive job failures: truth_sync_bwd (backward of truth_sync_fwd)"))
    blocks = text.split("--- ")[1:]
    assert len(blocks) == 2
    for block in blocks:
        assert "push (try 1 of 1): PermissionError: CRM project SALES-EU refused the write" in block
        assert "/tasks/push" in block


@pytest.mark.parametrize("about", ["truth_sync_fwd (forward)", "truth_sync_bwd (backward of truth_sync_fwd)"])
def test_the_mails_of_one_episode_refer_to_its_first(sent: Sent, about: str) -> None:
    episode = [m for m in sent.messages if str(m["Subject"]).endswith(about)]
    (root,) = [m for m in episode if m["References"] is None]
    later = [m for m in episode if m["References"] is not None]
    assert len(later) == len(episode) - 1 >= 1
    for message in later:
        assert message["In-Reply-To"] == message["References"] == root["Message-ID"]


def test_every_mail_carries_the_list_and_kind_headers(sent: Sent) -> None:
    for message in sent.messages:
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["List-Id"] == '"failnotify: truth_sync_fwd" <truth_sync_fwd.failnotify.airflow.test>'
        assert message["X-Failnotify-Kind"] in {"processing", "global_immediate", "global_threshold",
                                                "not_accessible"}
        assert message["Message-ID"] and message["Date"]


def test_failnotify_run_prints_no_library_warnings(sent: Sent) -> None:
    assert "Deprecat" not in sent.run_output and "SADeprecationWarning" not in sent.run_output
    assert "Skipping masking" not in sent.run_output
