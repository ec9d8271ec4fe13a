"""Bad input, each with a clear error naming the field and nothing half-saved.

- Registrations through ``failnotify config import`` (the file is validated as a whole: a file with a
  good entry and a bad one writes nothing) and through parse_registration (what the views and the CLI
  call): addresses, thresholds, CR/LF in the subject prefix, a backward DAG equal to the forward one,
  unknown keys, malformed YAML.
- Connection extras through ``failnotify test-email`` (exit 2, the message names the field).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_failnotify.cli import main
from airflow_failnotify.core.config import ConfigValidationError, parse_registration
from airflow_failnotify.store import get_store, reset_stores
from tests.fixtures.soak import Summary
from tests.reliability.helpers import failnotify_cli

GOOD = {"integration": "new_good", "smtp_conn_id": "mail", "recipients": ["a@example.com"]}
KEEP = {
    "integration": "keep_me",
    "backward_integration": "keep_me_back",
    "smtp_conn_id": "mail",
    "recipients": ["keep@example.com"],
    "subject_prefix": "[Keep]",
}


def entry(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "integration": "sync_bad",
        "smtp_conn_id": "mail",
        "recipients": ["b@example.com"],
    }
    for key, value in changes.items():
        if value is _DROP:
            data.pop(key, None)
        else:
            data[key] = value
    return data


_DROP = object()

# case -> (the bad entry, the field path it must name, words of the message)
BAD_ENTRIES: dict[str, tuple[dict[str, Any], str, str]] = {
    "address without @": (entry(recipients=["not-an-address"]), "recipients", "is not a valid email address"),
    "address with two @": (entry(recipients="a@b@example.com"), "recipients", "is not a valid email address"),
    "address with CR/LF + Bcc": (
        entry(recipients="ops@example.com\r\nBcc: evil@attacker.test"),
        "recipients",
        "is not a valid email address",
    ),
    "no recipient": (entry(recipients=[]), "recipients", "at least one recipient"),
    "recipients not a list": (entry(recipients={"a": 1}), "recipients", "must be a list"),
    "bad cc": (entry(cc="audit at example.com"), "cc", "is not a valid email address"),
    "threshold 0": (
        entry(**{"global": {"failure_count_threshold": 0}}),
        "global.failure_count_threshold",
        "1 to 20",
    ),
    "threshold 21": (
        entry(**{"global": {"failure_count_threshold": 21}}),
        "global.failure_count_threshold",
        "1 to 20",
    ),
    "threshold 'abc'": (
        entry(**{"global": {"failure_count_threshold": "abc"}}),
        "global.failure_count_threshold",
        "1 to 20",
    ),
    "threshold 2.5": (
        entry(**{"global": {"failure_count_threshold": 2.5}}),
        "global.failure_count_threshold",
        "1 to 20",
    ),
    "threshold true": (
        entry(**{"global": {"failure_count_threshold": True}}),
        "global.failure_count_threshold",
        "1 to 20",
    ),
    "subject prefix CR/LF + Bcc": (
        entry(subject_prefix="[Sync]\r\nBcc: evil@attacker.test"),
        "subject_prefix",
        "single line",
    ),
    "subject prefix LF": (entry(subject_prefix="[Sync]\nX-Injected: 1"), "subject_prefix", "single line"),
    "subject prefix tab/control": (
        entry(subject_prefix="[Sync]\t\x07"),
        "subject_prefix",
        "control characters",
    ),
    "subject prefix 101 chars": (entry(subject_prefix="x" * 101), "subject_prefix", "at most 100"),
    "backward DAG = forward DAG": (
        entry(backward_integration="sync_bad"),
        "backward_integration",
        "different DAG",
    ),
    "unknown top-level key": (entry(colour="blue"), "colour", "unknown key"),
    "unknown global key": (
        entry(**{"global": {"notify_immediatly": True}}),
        "global.notify_immediatly",
        "unknown key",
    ),
    "unknown processing key": (entry(processing={"retries": 3}), "processing.retries", "unknown key"),
    "DAG id with spaces": (entry(integration="sync bad"), "integration", "must be a DAG id"),
    "DAG id with markup": (entry(integration="<script>x</script>"), "integration", "must be a DAG id"),
    "the notification DAG itself": (
        entry(integration="failnotify_post_failure_notification"),
        "integration",
        "cannot be registered",
    ),
    "no integration": (entry(integration=_DROP), "integration", "a DAG id is required"),
    "no smtp_conn_id": (entry(smtp_conn_id=_DROP), "smtp_conn_id", "is required"),
    "bad smtp_conn_id": (entry(smtp_conn_id="mail server!"), "smtp_conn_id", "must be a connection id"),
    "inactivity 'abc'": (
        entry(**{"global": {"inactivity_minutes": "abc"}}),
        "global.inactivity_minutes",
        "minutes",
    ),
    "inactivity 0": (
        entry(**{"global": {"inactivity_minutes": 0}}),
        "global.inactivity_minutes",
        "greater than 0",
    ),
    "enabled 'maybe'": (entry(**{"global": {"enabled": "maybe"}}), "global.enabled", "true or false"),
    "backward section with same_for_backward": (
        entry(backward_integration="sync_bad_back", backward={"recipients": ["c@example.com"]}),
        "backward",
        "only allowed when same_for_backward is false",
    ),
    "DAG already used by a stored registration": (
        entry(integration="keep_me_back"),
        "integration",
        "already used by integration 'keep_me'",
    ),
}


STORE_ONLY = {"DAG already used by a stored registration"}


@pytest.fixture
def cli_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A migrated SQLite store for the in-process CLI, holding one registration (``keep_me``)."""
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'cli.db'}")
    reset_stores()
    assert main(["db", "migrate"]) == 0
    keep = tmp_path / "keep.yaml"
    keep.write_text(yaml.safe_dump({"notifications": [KEEP]}))
    assert main(["config", "import", str(keep)]) == 0
    yield tmp_path
    reset_stores()


def exported(capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["config", "export"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("case", list(BAD_ENTRIES))
def test_bad_registration_is_refused_with_the_field_and_nothing_is_written(
    case: str, cli_store: Path, capsys: pytest.CaptureFixture[str], summary: Summary
) -> None:
    bad, field, words = BAD_ENTRIES[case]
    before = exported(capsys)
    file = cli_store / "bad.yaml"
    file.write_text(yaml.safe_dump({"notifications": [GOOD, bad]}, allow_unicode=True))
    code = main(["config", "import", str(file)])
    err = capsys.readouterr().err
    after = exported(capsys)
    # The views and every other caller validate through parse_registration: the same message. (A conflict
    # with a stored registration is only known to the store, which refuses it inside its transaction.)
    direct = {field: words}
    if case not in STORE_ONLY:
        with pytest.raises(ConfigValidationError) as raised:
            parse_registration(bad)
        direct = {e.path: e.message for e in raised.value.errors}
    # The file's entries are named by index; a conflict found by the store names the entry by its DAG id.
    where = bad["integration"] if case in STORE_ONLY else "notifications[1]"
    cli_ok = code == 2 and f"{where}.{field}: " in err and words in err and "nothing was written" in err
    summary.record(
        f"bad input (config import + validation): {case}",
        f"exit 2, '{field}: ...{words}', nothing written",
        f"exit {code}, {'named' if cli_ok else 'NOT named'}, "
        f"store {'unchanged' if after == before else 'CHANGED'}",
        ok=cli_ok and after == before,
    )
    assert code == 2, err
    assert f"{where}.{field}: " in err and words in err, err
    assert "nothing was written" in err and "Traceback" not in err
    assert after == before, "a refused file must not change the stored configuration"
    assert "new_good" not in after
    assert field in direct and words in direct[field], direct


MALFORMED_FILES: dict[str, tuple[bytes, str]] = {
    "malformed YAML": (b"notifications: [\n  - integration: x\n", "not valid YAML or JSON"),
    "a list, not a mapping": (b"- integration: x\n", "must be a mapping with a 'notifications' list"),
    "notifications not a list": (b"notifications: {integration: x}\n", "notifications: must be a list"),
    "unknown document key": (b"notification:\n  - integration: x\n", "notification: unknown key"),
    "entry not a mapping": (b"notifications:\n  - just a string\n", "notifications[0]: must be a mapping"),
    "empty file": (b"", "must be a mapping"),
    "not UTF-8": (b"notifications:\n  - integration: \xff\xfe\xfa\n", "bad.yaml"),
    "tab-indented YAML": (b"notifications:\n\t- integration: x\n", "not valid YAML or JSON"),
}


@pytest.mark.parametrize("case", list(MALFORMED_FILES))
def test_malformed_file_is_refused_clearly(
    case: str, cli_store: Path, capsys: pytest.CaptureFixture[str], summary: Summary
) -> None:
    content, words = MALFORMED_FILES[case]
    before = exported(capsys)
    file = cli_store / "bad.yaml"
    file.write_bytes(content)
    code = main(["config", "import", str(file)])
    err = capsys.readouterr().err
    after = exported(capsys)
    summary.record(
        f"bad input (config import): {case}",
        f"exit 2, '{words}', nothing written",
        f"exit {code}, {' '.join(err.replace(str(file), 'FILE').split())[:70]!r}",
        ok=code == 2 and words in err and after == before,
    )
    assert code == 2 and words in err, err
    assert "Traceback" not in err
    assert after == before


def test_unknown_connection_is_a_warning_not_an_error(
    cli_store: Path, capsys: pytest.CaptureFixture[str], summary: Summary
) -> None:
    file = cli_store / "ok.yaml"
    file.write_text(yaml.safe_dump({"notifications": [dict(GOOD, smtp_conn_id="no_such_connection_here")]}))
    code = main(["config", "import", str(file)])
    err = capsys.readouterr().err
    summary.record(
        "config import with an unknown connection id",
        "exit 0 with a warning naming the connection (it may live in a secrets backend)",
        f"exit {code}, warning {'shown' if 'no_such_connection_here' in err else 'missing'}",
        ok=code == 0 and "no_such_connection_here" in err,
    )
    assert code == 0
    assert "warning: connection 'no_such_connection_here' is not known" in err
    assert [r.integration for r in get_store().list_registrations()] == ["keep_me", "new_good"]


# ------------------------------------------------------------------------------------------------
# Connection extras through `failnotify test-email`
# ------------------------------------------------------------------------------------------------

BASE_EXTRA = {"auth_type": "none", "from_email": "robot@example.com", "to_email": "ops@example.com"}

# case -> (connection fields, extras changes, the field named, words)
BAD_CONNECTIONS: dict[str, tuple[dict[str, Any], dict[str, Any], str, str]] = {
    "response_parameter not JSON": (
        {},
        {"response_parameter": '{"accessTokenKey": '},
        "response_parameter",
        "not valid JSON",
    ),
    "response_parameter unknown key": (
        {},
        {"response_parameter": '{"tokenKey": "access_token"}'},
        "response_parameter",
        "unknown key(s) tokenKey",
    ),
    "response_parameter a list": (
        {},
        {"response_parameter": "[1, 2]"},
        "response_parameter",
        "must be a JSON object",
    ),
    "unknown auth type": ({}, {"auth_type": "kerberos"}, "auth_type", "unknown auth_type 'kerberos'"),
    "missing sender": ({}, {"from_email": None}, "from_email", "the sender email is required"),
    "sender with CR/LF + Bcc": (
        {},
        {"from_email": "robot@example.com\r\nBcc: evil@attacker.test"},
        "from_email",
        "is not an email address",
    ),
    "unknown security": ({}, {"security": "tls1.0"}, "security", "unknown security"),
    "port out of range": ({"port": 70000}, {}, "port", "between 1 and 65535"),
    "timeout not a number": ({}, {"timeout": "soon"}, "timeout", "must be a number of seconds"),
    "timeout 0": ({}, {"timeout": 0}, "timeout", "more than 0"),
    "default To not an address": ({}, {"to_email": "ops at example"}, "to_email", "not an email address"),
    "OAuth 2.0 without token URL": (
        {},
        {"auth_type": "oauth2", "client_id": "x", "client_secret": "y"},
        "token_url",
        "needs the token URL",
    ),
    "OAuth 2.0 token URL not http(s)": (
        {},
        {"auth_type": "oauth2", "token_url": "file:///etc/passwd", "client_id": "x", "client_secret": "y"},
        "token_url",
        "must be an http(s) URL",
    ),
    "unknown token auth method": (
        {},
        {"token_auth_method": "client_secret_jwt"},
        "token_auth_method",
        "unknown",
    ),
    "Basic Auth without password": ({}, {"auth_type": "basic"}, "password", "needs a password"),
    "no host": ({"host": None}, {}, "host", "host is required"),
}


def connection_json(fields: dict[str, Any], extras: dict[str, Any]) -> str:
    conn: dict[str, Any] = {"conn_type": "failnotify_smtp", "host": "127.0.0.1", "port": 2525}
    conn.update(fields)
    conn = {k: v for k, v in conn.items() if v is not None}
    extra = dict(BASE_EXTRA)
    extra.update(extras)
    conn["extra"] = {k: v for k, v in extra.items() if v is not None}
    return json.dumps(conn)


@pytest.mark.parametrize("case", list(BAD_CONNECTIONS))
def test_bad_connection_extras_exit_2_naming_the_field(
    case: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], summary: Summary
) -> None:
    fields, extras, field, words = BAD_CONNECTIONS[case]
    monkeypatch.setenv("AIRFLOW_CONN_BAD_MAIL", connection_json(fields, extras))
    code = main(["test-email", "bad_mail"])
    err = capsys.readouterr().err
    named = f"{field}: " in err and words in err
    summary.record(
        f"bad connection (test-email): {case}",
        f"exit 2, names '{field}'",
        f"exit {code}, {'named' if named else 'NOT named: ' + ' '.join(err.split())[:50]}",
        ok=code == 2 and named,
    )
    assert code == 2, err
    assert "connection 'bad_mail' is invalid" in err and named, err
    assert "Traceback" not in err


def test_bad_connection_through_the_real_command_line(tmp_path: Path, summary: Summary) -> None:
    env = {
        **os.environ,
        "AIRFLOW_CONN_BAD_MAIL": connection_json({}, {"auth_type": "kerberos", "from_email": None}),
    }
    out = failnotify_cli("test-email", "bad_mail", env=env)
    named = "auth_type: unknown auth_type 'kerberos'" in out.stderr and "from_email: " in out.stderr
    summary.record(
        "bad connection through `python -m airflow_failnotify test-email` (2 bad fields)",
        "exit 2, both fields named, no traceback",
        f"exit {out.returncode}, {'both named' if named else 'NOT named'}",
        ok=out.returncode == 2 and named,
    )
    assert out.returncode == 2, out.stderr
    assert named and "Traceback" not in out.stderr, out.stderr
