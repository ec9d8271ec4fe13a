"""No secret (SMTP password, OAuth client secret, access token, refresh token, private key) anywhere.

Distinctive marker secrets are used for a Basic Auth connection and an OAuth 2.0 connection of each
grant (client secret, certificate private key, refresh token rotated by the endpoint and kept, encrypted,
in the store; service account key); the test then makes the product work and fail in every way that
writes something (passes that send, a wrong password, a token endpoint that echoes the secret back in
its error, a token refused by the SMTP server, ``failnotify test-email``/``run``/``config export`` as
real subprocesses at DEBUG level) and scans all of it: log records (caplog, every logger at DEBUG),
captured stdout/stderr of this process and of the CLI subprocesses, every row of every store table
(error log, outbox payloads and last errors, pass summaries, kept refresh tokens), the emails as
received (raw bytes and every decoded part), the PDFs (text extracted with pypdf and raw bytes) and
the exported configuration. Each secret is looked for as is, URL-quoted and base64-encoded (at the
three byte alignments); a private key by each line of its PEM body.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs, quote

import pytest
from airflow.models.crypto import get_fernet
from cryptography.fernet import Fernet
from pypdf import PdfReader
from sqlalchemy import MetaData, select

from airflow_failnotify.cli import main
from airflow_failnotify.service.passes import run_notification_pass
from airflow_failnotify.store import Store, reset_stores
from devtools.smtp_server import DevSmtpServer
from devtools.token_grants import CertificateCredential, ServiceAccount, service_account
from devtools.token_server import TokenServer
from tests.fixtures.soak import Summary
from tests.reliability.helpers import entity_failed, failnotify_cli, no_status, register, run_failed

SMTP_USER = "robot@failnotify.test"
PASSWORD = "SMTPPW-marker-Qx7Lm2Vb9Rt4"
WRONG_PASSWORD = "WRONGPW-marker-Hd3Ks8Pw1Zn6"
CLIENT_ID = "failnotify-secret-scan"
CLIENT_SECRET = "CLIENTSECRET-marker-Jf5Tc0Wy3Ua8"
TOKEN_PREFIX = "OAUTHTOKEN-marker-"
REFRESH_TOKEN = "REFRESHTOKEN-marker-Vn4Qe7Lp2Ks9"
SA_EMAIL = "scan@failnotify-dev.iam.gserviceaccount.com"


class MarkedTokenServer(TokenServer):
    """Issues tokens that start with a marker; ``echo_secret`` makes it put the secret in its error."""

    echo_secret = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[str] = []  # refresh tokens issued and assertions received: secrets too

    def _rotate(self, used: str, client_id: str) -> str:
        new = super()._rotate(used, client_id)
        self.seen.append(new)
        return new

    def _issue(self) -> str:
        token = TOKEN_PREFIX + secrets.token_urlsafe(24)
        with self._lock:
            self._issued[token] = time.time() + self.expires_in
        return token

    def issued(self) -> list[str]:
        with self._lock:
            return list(self._issued)

    def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        self.seen.extend(form[k] for k in ("client_assertion", "assertion") if k in form)
        if self.echo_secret:
            detail = f"client {form.get('client_id')} with secret {form.get('client_secret')} is not allowed"
            return self._answer(
                form.get("client_id", ""),
                "",
                "client_secret_post",
                400,
                {"error": "invalid_client", "error_description": detail},
            )
        return super().handle(headers, body)


def variants(secret: str) -> set[str]:
    """The secret as is, URL-quoted, and the alignment-independent middle of its base64 forms."""
    found = {secret, quote(secret, safe="")}
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + secret.encode()).decode()
        middle = encoded[4 : len(encoded) - 4]
        if len(middle) >= 12:
            found.add(middle)
    return found


class Scan:
    """Everything these tests produce, by where it came from."""

    def __init__(self) -> None:
        self.artifacts: list[tuple[str, str]] = []

    def add(self, source: str, content: str | bytes) -> None:
        text = content.decode("latin-1") if isinstance(content, bytes) else content
        self.artifacts.append((source, text))

    def leaks(self, secret_values: list[str]) -> list[str]:
        needles = {v: s for s in secret_values for v in variants(s)}
        found = []
        for source, text in self.artifacts:
            for needle, secret in needles.items():
                if needle in text:
                    found.append(f"{secret[:12]}... in {source}")
        return sorted(set(found))

    @property
    def size(self) -> int:
        return sum(len(t) for _, t in self.artifacts)


@pytest.fixture
def tokens(certificate: CertificateCredential) -> Iterator[MarkedTokenServer]:
    server = MarkedTokenServer(
        {CLIENT_ID: CLIENT_SECRET},
        certificates={CLIENT_ID: certificate.certificate_pem},
        refresh_tokens={REFRESH_TOKEN: CLIENT_ID},
        rotate_refresh_tokens=True,
    )
    with server:
        yield server


@pytest.fixture
def account(tokens: MarkedTokenServer) -> ServiceAccount:
    sa = service_account(SA_EMAIL, tokens.url)
    tokens.add_service_account(SA_EMAIL, sa.public_key_pem, {"https://mail.google.com/"})
    return sa


def pem_lines(pem: str) -> list[str]:
    """The base64 body lines of a PEM key (found even where the PEM is JSON-escaped)."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


@pytest.fixture
def marked_smtp(tokens: MarkedTokenServer) -> Iterator[DevSmtpServer]:
    with DevSmtpServer(users={SMTP_USER: PASSWORD}, tokens=tokens) as server:
        yield server


def dump_store(store: Store, scan: Scan) -> int:
    metadata = MetaData()
    metadata.reflect(store.engine)
    rows = 0
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                rows += 1
                scan.add(f"store table {table.name}", repr(tuple(row)))
    return rows


def scan_mail(received: Any, scan: Scan) -> int:
    scan.add("email raw bytes", received.raw)
    pdfs = 0
    for part in received.message.walk():
        if part.is_multipart():
            continue
        content = part.get_content()
        if isinstance(content, bytes):
            scan.add(f"email part {part.get_content_type()} (bytes)", content)
            if part.get_content_type() == "application/pdf":
                pdfs += 1
                reader = PdfReader(io.BytesIO(content))
                scan.add("PDF text", "\n".join(page.extract_text() for page in reader.pages))
                scan.add("PDF metadata", repr(reader.metadata))
        else:
            scan.add(f"email part {part.get_content_type()}", content)
    return pdfs


def test_no_secret_in_logs_store_emails_pdfs_cli_output_or_export(
    tmp_path: Any,
    tokens: MarkedTokenServer,
    marked_smtp: DevSmtpServer,
    certificate: CertificateCredential,
    account: ServiceAccount,
    smtp_connection: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    summary: Summary,
) -> None:
    caplog.set_level(logging.DEBUG)
    scan = Scan()
    url = f"sqlite:///{tmp_path / 'failnotify.db'}"
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN", url)
    # with a Fernet key the rotated refresh token goes to the store (encrypted), which is dumped below
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    get_fernet.cache_clear()
    reset_stores()
    common = {"server": marked_smtp, "login": SMTP_USER}
    basic = smtp_connection("mail_basic", auth_type="basic", password=PASSWORD, **common)
    oauth = smtp_connection(
        "mail_oauth",
        auth_type="oauth2",
        token_server=tokens,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scope="",
        **common,
    )
    oauth_common = {"auth_type": "oauth2", "token_url": tokens.url, "client_id": CLIENT_ID, **common}
    cert = smtp_connection(
        "mail_cert",
        token_auth_method="private_key_jwt",
        private_key=certificate.private_key_pem,
        certificate_thumbprint=certificate.thumbprint,
        **oauth_common,
    )
    refresh = smtp_connection(
        "mail_refresh",
        grant_type="refresh_token",
        client_secret=CLIENT_SECRET,
        refresh_token=REFRESH_TOKEN,
        **oauth_common,
    )
    google = smtp_connection(
        "mail_google",
        auth_type="oauth2",
        grant_type="jwt_bearer",
        service_account_key=account.key_json,
        scope="https://mail.google.com/",
        **common,
    )
    wrong = smtp_connection("mail_wrong", auth_type="basic", password=WRONG_PASSWORD, **common)
    echo = smtp_connection(
        "mail_echo",
        auth_type="oauth2",
        token_server=tokens,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scope="",
        **common,
    )
    from airflow_failnotify.store import get_store

    store = get_store(url)
    store.migrate()
    grant_conns = (("sync_cert", cert), ("sync_refresh", refresh), ("sync_google", google))
    for name, conn_id in (("sync_basic", basic), ("sync_oauth", oauth), ("sync_wrong", wrong), *grant_conns):
        register(store, conn_id, integration=name)

    def failures(dag_id: str, run: str) -> list[Any]:
        return [
            run_failed(run, dag_id=dag_id),
            entity_failed(run, "ISSUE-7", dag_id=dag_id, traceback="Traceback (most recent call last):\n..."),
        ]

    # 1. Everything works (Basic and OAuth 2.0 mails with PDFs); the wrong password fails (535).
    store.record_events(
        failures("sync_basic", "r1")
        + failures("sync_oauth", "r1")
        + failures("sync_wrong", "r1")
        + [event for name, _ in grant_conns for event in failures(name, "r1")]
    )
    first = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    assert first.sent == 10 and first.pending == 2, first
    # 2. The SMTP server refuses the (cached) OAuth token; the refresh is refused too.
    marked_smtp.tokens = lambda token: False
    store.record_events(failures("sync_oauth", "r2"))
    second = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    assert second.sent == 0 and second.errors
    marked_smtp.tokens = tokens
    # 3. A token endpoint that echoes the client secret in its error; the hook's own test button.
    from airflow_failnotify.hooks.oauth2 import clear_token_cache
    from airflow_failnotify.hooks.smtp import FailnotifySmtpHook

    clear_token_cache()
    tokens.echo_secret = True
    register(store, echo, integration="sync_echo")
    store.record_events(failures("sync_echo", "r1"))
    third = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    assert third.errors and any("not allowed" in str(e["reason"]) for e in third.errors), third.errors
    for conn_id in (basic, oauth, wrong, echo, cert, refresh, google):
        scan.add(f"test_connection({conn_id})", repr(FailnotifySmtpHook(conn_id).test_connection()))
    tokens.echo_secret = False
    scan.add("pass summaries", repr([first.to_dict(), second.to_dict(), third.to_dict()]))

    # 4. The CLI as users run it, at DEBUG level, in subprocesses (same store, same connections).
    env = dict(os.environ)
    commands = [
        ("-v", "test-email", basic, "--to", "ops@example.com"),
        ("-v", "test-email", oauth, "--to", "ops@example.com"),
        ("-v", "test-email", wrong, "--to", "ops@example.com"),
        ("-v", "test-email", cert, "--to", "ops@example.com"),
        ("-v", "test-email", refresh, "--to", "ops@example.com"),
        ("-v", "test-email", google, "--to", "ops@example.com"),
        ("-v", "run", "--json"),
        ("config", "export"),
        ("config", "export", "--json"),
    ]
    exit_codes = []
    for argv in commands:
        out = failnotify_cli(*argv, env=env)
        exit_codes.append(out.returncode)
        scan.add(f"`failnotify {' '.join(argv)}` stdout", out.stdout)
        scan.add(f"`failnotify {' '.join(argv)}` stderr", out.stderr)
    assert exit_codes[:6] == [0, 0, 1, 0, 0, 0], exit_codes
    tokens.echo_secret = True
    out = failnotify_cli("-v", "test-email", echo, "--to", "ops@example.com", env=env)
    tokens.echo_secret = False
    assert out.returncode == 1 and "not allowed" in out.stderr, out.stderr
    scan.add("`failnotify test-email` (echoing token endpoint) stderr", out.stderr + out.stdout)
    assert main(["config", "export"]) == 0

    # 5. Collect everything else.
    store_rows = dump_store(store, scan)
    pdfs = sum(scan_mail(m, scan) for m in marked_smtp.messages)
    for record in caplog.records:
        scan.add(
            f"log record {record.name}", f"{record.getMessage()} {record.exc_text or ''} {record.args!r}"
        )
    captured = capfd.readouterr()
    scan.add("this process's stdout", captured.out)
    scan.add("this process's stderr", captured.err)
    issued = tokens.issued()
    assert issued and len(marked_smtp.messages) >= 6 and pdfs >= 3
    assert len(tokens.seen) >= 6  # rotated refresh tokens and assertions
    kept = [text for source, text in scan.artifacts if source == "store table failnotify_setting"]
    assert any("oauth2_refresh_token:" in text for text in kept), "the rotated refresh token was not kept"
    key_lines = pem_lines(certificate.private_key_pem) + pem_lines(
        json.loads(account.key_json)["private_key"]
    )
    secret_values = [PASSWORD, WRONG_PASSWORD, CLIENT_SECRET, TOKEN_PREFIX, REFRESH_TOKEN, *issued]
    leaks = scan.leaks(secret_values + tokens.seen + key_lines)
    summary.record(
        "no secret (password, client secret, OAuth token, refresh token, private key, assertion) anywhere",
        "0 occurrences (plain, URL-quoted, base64)",
        (
            f"{len(leaks)} found in {len(scan.artifacts)} artifacts / {scan.size // 1024} KB "
            f"({len(caplog.records)} logs, {store_rows} rows, {len(marked_smtp.messages)} mails, "
            f"{pdfs} PDFs, {len(commands) + 1} CLI)" + (f": {'; '.join(leaks)}" if leaks else "")
        ),
        ok=not leaks,
    )
    assert not leaks, leaks
    reset_stores()


def test_the_scan_finds_a_planted_secret_in_every_form() -> None:
    """The scanner itself: a secret hidden plain, URL-quoted or base64-encoded at any alignment is found."""
    secret = "PLANTED-marker/Ab+3="
    for prefix in (b"", b"x", b"xy"):
        scan = Scan()
        scan.add("base64", base64.b64encode(prefix + secret.encode() + b" trailing"))
        assert scan.leaks([secret]), prefix
    scan = Scan()
    scan.add("quoted", f"url?secret={quote(secret, safe='')}")
    assert scan.leaks([secret])
    scan = Scan()
    scan.add("clean", "nothing to see, " + secret[:8])
    assert not scan.leaks([secret])
