"""Broken DAG (issue 14): one notification per broken episode; no inactivity mail for a broken DAG."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow_failnotify.core.emails import render_notification
from airflow_failnotify.core.model import (
    DagPresence,
    DagStatus,
    Direction,
    DirectionSettings,
    EventKind,
    FailureEvent,
    GlobalSettings,
    NotificationKind,
    ProcessingSettings,
    Registration,
)
from airflow_failnotify.core.rules import evaluate

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=timezone.utc)
SETTINGS = DirectionSettings(
    smtp_conn_id="smtp",
    recipients=("ops@example.com",),
    subject_prefix="[Sync]",
    global_=GlobalSettings(enabled=False, inactivity_minutes=3),
    processing=ProcessingSettings(enabled=False),
)


def registration(inactivity: bool = False) -> Registration:
    settings = SETTINGS
    if inactivity:
        settings = DirectionSettings(
            smtp_conn_id="smtp",
            recipients=("ops@example.com",),
            global_=GlobalSettings(enabled=True, inactivity_minutes=3),
        )
    return Registration("sync_a", settings, registered_at=NOW - timedelta(hours=1))


def import_error(event_id: int = 1, episode: str = "import-error-1") -> FailureEvent:
    return FailureEvent(
        id=event_id,
        kind=EventKind.DAG_IMPORT_ERROR,
        integration="sync_a",
        direction=Direction.FORWARD,
        dag_id="sync_a",
        run_id=episode,
        occurred_at=NOW - timedelta(minutes=1),
        entity="sync_a.py",
        error_message='SyntaxError: invalid syntax (sync_a.py, line 3)',
    )


def test_an_import_error_gives_one_broken_dag_draft_whatever_the_enabled_flags() -> None:
    result = evaluate([registration()], {}, [import_error()], {}, NOW)
    (draft,) = result.drafts
    assert draft.kind is NotificationKind.BROKEN_DAG
    assert draft.dedupe_key == "broken_dag:sync_a:forward:import-error-1"


def test_a_new_episode_gets_a_new_dedupe_key() -> None:
    first = evaluate([registration()], {}, [import_error(1, "import-error-1")], {}, NOW).drafts[0]
    second = evaluate([registration()], {}, [import_error(2, "import-error-2")], {}, NOW).drafts[0]
    assert first.dedupe_key != second.dedupe_key


def test_no_inactivity_mail_for_a_broken_dag() -> None:
    broken = {"sync_a": DagStatus(presence=DagPresence.BROKEN)}
    assert evaluate([registration(inactivity=True)], {}, [], broken, NOW).drafts == []
    quiet = evaluate([registration(inactivity=True)], {}, [], {}, NOW).drafts
    assert [d.kind for d in quiet] == [NotificationKind.INACTIVITY]


def test_an_import_error_is_not_activity() -> None:
    result = evaluate([registration(inactivity=True)], {}, [import_error()], {}, NOW)
    state = result.states[("sync_a", Direction.FORWARD)]
    assert state.last_activity_at is None


def test_the_mail_says_broken_dag_and_carries_the_error_and_file() -> None:
    draft = evaluate([registration()], {}, [import_error()], {}, NOW).drafts[0]
    mail = render_notification(draft, SETTINGS, dag_id="sync_a", base_url="https://airflow.example.com")
    assert mail.subject == "[Sync] Broken DAG: sync_a (forward)"
    assert "SyntaxError: invalid syntax" in mail.text and "File:        sync_a.py" in mail.text
    assert "https://airflow.example.com/dags/sync_a" in mail.text
