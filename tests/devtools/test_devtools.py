"""The dev SMTP server and token endpoint themselves: what tests, the demo and benchmarks rely on."""

from __future__ import annotations

import os
import smtplib
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from devtools import DevSmtpServer, TokenServer
from devtools.smtp_server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_token_server_checks_clients_scopes_and_shapes() -> None:
    with TokenServer(
        {"app": "s3cret"}, scopes={"mail"}, expires_in=120, token_key="data.token", expires_key="data.ttl"
    ) as server:
        ok = requests.post(
            server.url,
            data={"grant_type": "client_credentials", "scope": "mail"},
            auth=("app", "s3cret"),
            timeout=5,
        )
        assert ok.status_code == 200
        body = ok.json()
        token = body["data"]["token"]
        assert body["data"]["ttl"] == 120 and len(token) >= 2000 and server.is_valid(token)
        bad_secret = requests.post(
            server.url,
            data={"grant_type": "client_credentials", "client_id": "app", "client_secret": "nope"},
            timeout=5,
        )
        assert (bad_secret.status_code, bad_secret.json()["error"]) == (401, "invalid_client")
        bad_scope = requests.post(
            server.url,
            data={
                "grant_type": "client_credentials",
                "client_id": "app",
                "client_secret": "s3cret",
                "scope": "admin",
            },
            timeout=5,
        )
        assert (bad_scope.status_code, bad_scope.json()["error"]) == (400, "invalid_scope")
        assert [r.status for r in server.requests] == [200, 401, 400]
        methods = [r.auth_method for r in server.requests]
        assert methods == ["client_secret_basic", "client_secret_post", "client_secret_post"]
        server.revoke(token)
        assert not server.is_valid(token) and not server.is_valid("made-up")


def test_token_server_expiry() -> None:
    with TokenServer({"a": "b"}, expires_in=1.5) as server:  # long enough to check it valid when busy
        token = requests.post(
            server.url,
            data={"grant_type": "client_credentials", "client_id": "a", "client_secret": "b"},
            timeout=5,
        ).json()["access_token"]
        assert server.is_valid(token)
        time.sleep(1.6)  # expiry is real time: the 1.5 s lifetime must pass
        assert not server.is_valid(token)


def test_smtp_server_mail_dir_restart_and_big_auth_line(tmp_path: Path) -> None:
    server = DevSmtpServer(users={"u@x.test": "p" * 3000}, mail_dir=tmp_path / "mails")
    with server:
        port = server.port
        with smtplib.SMTP(server.host, server.port, timeout=5) as client:
            client.login("u@x.test", "p" * 3000)  # a ~4 KB AUTH PLAIN line
            client.sendmail("u@x.test", ["a@x.test"], b"Subject: one\r\n\r\nbody\r\n")
        server.stop()
        assert not server.running
        with pytest.raises(OSError):
            smtplib.SMTP(server.host, port, timeout=2)
        server.start()
        assert server.port == port
        with smtplib.SMTP(server.host, server.port, timeout=5) as client:
            client.sendmail("u@x.test", ["b@x.test"], b"Subject: two\r\n\r\nbody\r\n")
    files = sorted((tmp_path / "mails").glob("*.eml"))
    assert [f.name for f in files] == ["000001.eml", "000002.eml"]
    assert b"Subject: two" in files[1].read_bytes()
    assert [m.subject for m in server.messages] == ["one", "two"]
    assert server.messages[0].auth_identity == "u@x.test" and server.messages[1].auth_identity is None
    assert server.wait_for(2, timeout=0.1)[1].rcpt_tos == ["b@x.test"]


def test_smtp_server_main_prints_one_line_per_message(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.smtp_server",
            "--port",
            str(port),
            "--mail-dir",
            str(tmp_path),
            "--user",
            "demo@x.test:demo-pw",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,  # devtools/ is a folder of the clone, not part of the installed package
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"listening on 127.0.0.1:{port}" in first
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            client.login("demo@x.test", "demo-pw")
            client.sendmail(
                "demo@x.test", ["ops@x.test"], b"To: ops@x.test\r\nSubject: hello demo\r\n\r\nx\r\n"
            )
        line = proc.stdout.readline()
        assert "To: ops@x.test" in line and "Subject: hello demo" in line
        assert len(list(tmp_path.glob("*.eml"))) == 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_token_server_refuses_unknown_fault() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        TokenServer(fault="explode")
