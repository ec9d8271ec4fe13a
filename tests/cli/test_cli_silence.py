"""``failnotify silence|unsilence`` and ``silence list``: set, list (text and JSON), lift, refuse."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from airflow_failnotify.cli import main
from airflow_failnotify.core.config import parse_registration
from airflow_failnotify.store import get_store, reset_stores


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", raising=False)
    reset_stores()
    assert main(["db", "migrate"]) == 0
    get_store().save_registration(
        parse_registration({"integration": "sync_a", "smtp_conn_id": "mail", "recipients": "ops@example.com"})
    )
    yield tmp_path
    reset_stores()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_silence_list_and_unsilence(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "silence", "sync_a", "--until", "2h", "--reason", "vendor maintenance")
    assert code == 0 and out.startswith("sync_a silenced until ")
    code, out, _ = run(capsys, "silence", "list")
    assert code == 0 and "sync_a  until" in out and "vendor maintenance" in out and "(0 held)" in out
    code, out, _ = run(capsys, "silence", "list", "--json")
    (item,) = json.loads(out)
    assert item["integration"] == "sync_a" and item["reason"] == "vendor maintenance"
    assert item["created_by"].startswith("cli:") and item["held"] == 0
    code, out, _ = run(capsys, "unsilence", "sync_a")
    assert code == 0 and "lifted" in out
    assert run(capsys, "silence", "list")[1].strip() == "no silence in force"
    entries, _ = get_store().list_audit(integration="sync_a")
    assert [e.action for e in entries][:2] == ["unsilence", "silence"]
    assert entries[0].actor.startswith("cli:") and entries[0].source == "cli"


def test_silence_all_until_a_time(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    end = (datetime.now(timezone.utc) + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
    code, out, _ = run(capsys, "silence", "--all", "--until", end, "--reason", "freeze")
    assert code == 0 and out.startswith(f"all integrations silenced until {end.replace('T', ' ')}:00 UTC")
    (item,) = json.loads(run(capsys, "silence", "list", "--json")[1])
    assert item["integration"] == "*"
    assert run(capsys, "unsilence", "--all")[0] == 0


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("silence", "sync_a", "--until", "2h"), "reason is required"),
        (("silence", "sync_a", "--reason", "r"), "say until when"),
        (("silence", "sync_a", "--until", "tomorrowish", "--reason", "r"), "neither a duration"),
        (("silence", "sync_a", "--until", "2000-01-01T00:00", "--reason", "r"), "in the future"),
        (("silence", "nope", "--until", "1h", "--reason", "r"), "not registered"),
        (
            ("silence", "sync_a", "--all", "--until", "1h", "--reason", "r"),
            "name one integration, or give --all",
        ),
    ],
)
def test_bad_silences_are_refused_with_a_message(
    home: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], fragment: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and fragment in err
    assert get_store().list_silences() == []


def test_unsilence_of_an_integration_not_silenced(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "unsilence", "sync_a")
    assert code == 1 and "sync_a is not silenced" in err
