"""The mail side of the benchmarks in a process of its own: a DevSmtpServer and a TokenServer.

Running them in the benchmark's own process would make them share its interpreter (and GIL) with the
client being measured; in a separate process they behave like a real local mail server. The parent
drives it over stdin/stdout, one JSON line per command:

    python -m bench.servers          -> prints {"smtp_host", "smtp_port", "token_url"}
    stdin "stats"                    -> {"messages", "authenticated", "mechanisms", "connections",
                                         "auth_successes", "auth_failures", "token_requests", ...}
    stdin "message_ids"              -> {"message_ids": [the Message-ID header of every message, in order]}
    stdin "clear"                    -> forget messages, counters, token requests
    stdin "quit"                     -> stop
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from typing import Any

CLIENT_ID = "failnotify-bench-client"
CLIENT_SECRET = "bench-client-secret-4Hc9"
SCOPE = "https://mail.example.test/.default"
SMTP_USER = "robot@failnotify.test"
SMTP_PASSWORD = "bench-smtp-password-7Rk2"


def _serve() -> None:
    from devtools.smtp_server import DevSmtpServer
    from devtools.token_server import TokenServer

    with (
        TokenServer({CLIENT_ID: CLIENT_SECRET}, scopes={SCOPE}) as tokens,
        DevSmtpServer(users={SMTP_USER: SMTP_PASSWORD}, tokens=tokens) as smtp,
    ):
        print(
            json.dumps({"smtp_host": smtp.host, "smtp_port": smtp.port, "token_url": tokens.url}), flush=True
        )
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                messages = list(smtp.messages)
                stats = {
                    "messages": len(messages),
                    "authenticated": sum(1 for m in messages if m.auth_identity),
                    "mechanisms": dict(collections.Counter(m.auth_mechanism or "none" for m in messages)),
                    "recipients": sum(len(m.rcpt_tos) for m in messages),
                    "bytes": sum(len(m.raw) for m in messages),
                    "connections": smtp.connection_count,
                    "auth_successes": smtp.auth_successes,
                    "auth_failures": smtp.auth_failures,
                    "token_requests": tokens.request_count,
                }
                print(json.dumps(stats), flush=True)
            elif command == "message_ids":
                ids = [str(m.message.get("Message-ID", "")) for m in list(smtp.messages)]
                print(json.dumps({"message_ids": ids}), flush=True)
            elif command == "clear":
                smtp.clear()
                tokens.reset()
                print(json.dumps({"ok": True}), flush=True)
            elif command == "quit":
                break


class MailServers:
    """Parent side: starts ``python -m bench.servers`` and talks to it. Context manager."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self.smtp_host = "127.0.0.1"
        self.smtp_port = 0
        self.token_url = ""

    def __enter__(self) -> MailServers:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.servers"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        hello = self._read()
        self.smtp_host, self.smtp_port, self.token_url = (
            hello["smtp_host"],
            hello["smtp_port"],
            hello["token_url"],
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is None:
            return
        try:
            self._send("quit")
            self._proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def _send(self, command: str) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()

    def _read(self) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the bench mail server process died")
        return dict(json.loads(line))

    def stats(self) -> dict[str, Any]:
        self._send("stats")
        return self._read()

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server process has used so far."""
        from bench.scale import process_cpu_seconds

        assert self._proc is not None
        return process_cpu_seconds(self._proc.pid)

    def message_ids(self) -> list[str]:
        self._send("message_ids")
        return [str(i) for i in self._read()["message_ids"]]

    def clear(self) -> None:
        self._send("clear")
        self._read()

    def failnotify_conn(self, *, auth_type: str) -> dict[str, Any]:
        """A failnotify_smtp connection (AIRFLOW_CONN_* JSON) to this server."""
        extra: dict[str, Any] = {"auth_type": auth_type, "from_email": SMTP_USER, "security": "none"}
        conn: dict[str, Any] = {
            "conn_type": "failnotify_smtp",
            "host": self.smtp_host,
            "port": self.smtp_port,
        }
        if auth_type == "basic":
            conn.update(login=SMTP_USER, password=SMTP_PASSWORD)
        elif auth_type == "oauth2":
            conn["login"] = SMTP_USER
            extra.update(
                token_url=self.token_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, scope=SCOPE
            )
        conn["extra"] = extra
        return conn

    def airflow_smtp_conn(self) -> dict[str, Any]:
        """apache-airflow-providers-smtp's connection: Basic Auth, plaintext (no STARTTLS, no SSL)."""
        return {
            "conn_type": "smtp",
            "host": self.smtp_host,
            "port": self.smtp_port,
            "login": SMTP_USER,
            "password": SMTP_PASSWORD,
            "extra": {"disable_tls": True, "disable_ssl": True, "from_email": SMTP_USER},
        }


if __name__ == "__main__":
    _serve()
