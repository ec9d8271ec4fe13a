"""The ``failnotify`` command: db, config import/export/list/unregister, install-dag."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from airflow_failnotify.cli import main
from airflow_failnotify.core.config import parse_document
from airflow_failnotify.store import get_store, reset_stores

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "failnotify.yaml"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", raising=False)
    reset_stores()
    yield tmp_path
    reset_stores()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_db_migrate_creates_the_store_once(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "db", "check")
    assert code == 2
    code, out, _ = run(capsys, "db", "migrate")
    assert code == 0 and "migrated from empty to revision" in out
    assert (home / "failnotify.db").exists()
    code, out, _ = run(capsys, "db", "migrate")
    assert code == 0 and "up to date" in out
    assert run(capsys, "db", "check")[0] == 0


def test_commands_on_an_unmigrated_store_say_what_to_run(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "config", "list")
    assert code == 2
    assert "run `failnotify db migrate`" in err


def test_import_then_export_round_trips(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "db", "migrate")
    code, out, _ = run(capsys, "config", "import", str(EXAMPLE))
    assert code == 0 and "1 added" in out
    code, exported, _ = run(capsys, "config", "export")
    assert code == 0
    assert parse_document(yaml.safe_load(exported)) == parse_document(yaml.safe_load(EXAMPLE.read_text()))
    code, out, _ = run(capsys, "config", "import", str(EXAMPLE))
    assert "0 added, 0 updated, 1 unchanged" in out
    code, listing, _ = run(capsys, "config", "list")
    assert "sync_jira_to_ado backward=sync_ado_to_jira" in listing and "global:threshold=3" in listing


def test_a_file_with_three_errors_reports_all_three_and_writes_nothing(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "db", "migrate")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "notifications:\n"
        "  - integration: good_one\n    smtp_conn_id: mail\n    recipients: [a@example.com]\n"
        "  - integration: sync_b\n    smtp_conn_id: mail\n    recipients: [not-an-address]\n"
        "    global: {failure_count_threshold: 21}\n"
        "  - integration: sync_c\n    smtp_conn_id: mail\n    recipients: [c@example.com]\n    colour: blue\n"
    )
    code, _, err = run(capsys, "config", "import", str(bad))
    assert code == 2
    assert "3 error(s), nothing was written" in err
    assert "notifications[1].recipients: 'not-an-address' is not a valid email address" in err
    assert "notifications[1].global.failure_count_threshold: must be a whole number from 1 to 20" in err
    assert "notifications[2].colour: unknown key" in err
    assert get_store().list_registrations() == []


def test_malformed_yaml_is_a_clear_error(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "db", "migrate")
    bad = tmp_path / "broken.yaml"
    bad.write_text("notifications: [\n  - integration: x\n")
    code, _, err = run(capsys, "config", "import", str(bad))
    assert code == 2 and "not valid YAML or JSON" in err


def test_dry_run_and_replace(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "db", "migrate")
    run(capsys, "config", "import", str(EXAMPLE))
    other = tmp_path / "other.json"
    other.write_text(
        '{"notifications": [{"integration": "x", "smtp_conn_id": "m", "recipients": "a@example.com"}]}'
    )
    code, out, _ = run(capsys, "config", "import", str(other), "--replace", "--dry-run")
    assert code == 0 and "would add x" in out and "would unregister sync_jira_to_ado" in out
    assert [r.integration for r in get_store().list_registrations()] == ["sync_jira_to_ado"]
    run(capsys, "config", "import", str(other), "--replace")
    assert [r.integration for r in get_store().list_registrations()] == ["x"]
    assert run(capsys, "config", "unregister", "x")[0] == 0
    code, _, err = run(capsys, "config", "unregister", "x")
    assert code == 1 and "not registered" in err


def test_export_never_contains_secrets(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MAIL_OAUTH",
        '{"conn_type": "failnotify_smtp", "password": "s3cr3t-pw", '
        '"extra": {"client_secret": "s3cr3t-client"}}',
    )
    run(capsys, "db", "migrate")
    run(capsys, "config", "import", str(EXAMPLE))
    _, exported, _ = run(capsys, "config", "export")
    assert "mail_oauth" in exported
    assert "s3cr3t" not in exported


def test_install_dag_writes_the_three_line_file(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "dags"
    code, _out, _ = run(capsys, "install-dag", "--dags-folder", str(folder))
    assert code == 0
    written = (folder / "failure_notification.py").read_text()
    assert "build_notification_dag()" in written
    assert written == (Path(__file__).resolve().parents[2] / "dags" / "failure_notification.py").read_text()


def test_sqlite_store_is_refused_under_a_distributed_executor(home: Path) -> None:
    env = {**os.environ, "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"}
    out = subprocess.run(
        [sys.executable, "-m", "airflow_failnotify", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "distributed executor" in out.stderr and "PostgreSQL" in out.stderr


def test_health_exits_with_its_status_and_prints_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json as json_module

    from airflow_failnotify.cli import main
    from airflow_failnotify.store import get_store, reset_stores

    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'h.db'}")
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SPOOL_DIR", str(tmp_path / "spool"))
    reset_stores()
    try:
        get_store().migrate()
        code = main(["health", "--json"])
        report = json_module.loads(capsys.readouterr().out)
        # No pass yet and Airflow's database unread here: not ok; the exit code is the JSON's status.
        assert report["status"] != "ok" and code == {"ok": 0, "warn": 1, "bad": 2}[report["status"]]
        assert {c["name"] for c in report["checks"]} >= {"store", "last_pass", "notification_dag", "outbox"}
        assert main(["health"]) == code
        assert capsys.readouterr().out.startswith(f"failnotify health: {report['status']}")
    finally:
        reset_stores()


def test_import_and_unregister_are_in_the_audit_trail_as_the_os_user(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import getpass
    import json

    run(capsys, "db", "migrate")
    run(capsys, "config", "import", str(EXAMPLE))
    run(capsys, "config", "import", str(EXAMPLE))  # unchanged: no new row
    run(capsys, "config", "unregister", "sync_jira_to_ado")
    code, out, _ = run(capsys, "audit", "list", "--json")
    assert code == 0
    entries = json.loads(out)
    assert [(e["action"], e["source"], e["integration"]) for e in entries] == [
        ("unregister", "cli", "sync_jira_to_ado"),
        ("register", "import", "sync_jira_to_ado"),
    ]
    assert {e["actor"] for e in entries} == {f"cli:{getpass.getuser()}"}
    registered = {c["field"]: c for c in entries[1]["changes"]}
    assert (registered["smtp_conn_id"]["before"], registered["smtp_conn_id"]["after"]) == (None, "mail_oauth")


def test_audit_list_filters_by_integration_and_prints_each_change(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "db", "migrate")
    run(capsys, "config", "import", str(EXAMPLE))
    code, out, _ = run(capsys, "audit", "list", "--integration", "sync_jira_to_ado")
    assert code == 0 and "register sync_jira_to_ado" in out
    assert "    smtp_conn_id: None -> 'mail_oauth'" in out
    code, out, _ = run(capsys, "audit", "list", "--integration", "other")
    assert code == 0 and "no configuration change recorded for other" in out


def test_evaluate_takes_the_whole_backlog_as_a_pass_does(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """More new events than one batch (DEFAULT_BATCH): `failnotify evaluate` evaluates them all."""
    import json
    from datetime import datetime, timezone

    from airflow_failnotify.core.config import parse_registration
    from airflow_failnotify.core.model import EventKind
    from airflow_failnotify.lookups import dags
    from airflow_failnotify.service.evaluation import DEFAULT_BATCH
    from airflow_failnotify.store import EventRecord

    # Airflow's metadata database is not set up in this AIRFLOW_HOME: no DAG is paused or running.
    monkeypatch.setattr(dags, "dag_status_from_metadata_db", lambda dag_ids: {})
    run(capsys, "db", "migrate")
    store = get_store()
    store.save_registration(parse_registration(
        {"integration": "sync_a", "smtp_conn_id": "mail", "recipients": "ops@example.com",
         "subject_prefix": "[CLI]", "global": {"enabled": True, "notify_immediately": True}}))
    now = datetime.now(timezone.utc)
    retried = [  # tries that will be retried: no notification of their own
        EventRecord(kind=EventKind.TASK_FAILED, dag_id="sync_a", run_id=f"r{i}", occurred_at=now,
                    source="task", task_id="load", try_number=1, max_tries=1, is_final=False,
                    error_message="ValueError: retried")
        for i in range(DEFAULT_BATCH)
    ]
    failed_run = EventRecord(kind=EventKind.RUN_FAILED, dag_id="sync_a", run_id="r_last", occurred_at=now,
                             source="scheduler", error_message="task_failure")
    assert store.record_events([*retried, failed_run]) == DEFAULT_BATCH + 1

    code, out, _ = run(capsys, "evaluate", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["evaluated_events"] == DEFAULT_BATCH + 1
    assert [(d["kind"], d["integration"]) for d in result["due"]] == [("global_immediate", "sync_a")]
    assert result["due"][0]["subject"].startswith("[CLI]")
    code, out, _ = run(capsys, "evaluate")
    assert (code, out.splitlines()[0]) == (0, "0 new event(s) evaluated, 0 notification(s) due")
