"""A real OAuth 2.0 token endpoint for tests, the demo and benchmarks: every grant failnotify speaks.

Grants, each checked the way the real providers check it:

- ``client_credentials`` with a client secret (``clients``, post or HTTP Basic), or with a certificate
  client assertion (``certificates``: client id -> certificate PEM; Microsoft's checks, see
  :class:`devtools.token_grants.ClientAssertionCheck`).
- ``refresh_token`` (``refresh_tokens``: refresh token -> client id; the client's secret is
  required, as Google requires it). ``rotate_refresh_tokens`` answers with a new refresh token and
  revokes the used one (strict rotation): reusing it is ``invalid_grant``.
- ``urn:ietf:params:oauth:grant-type:jwt-bearer`` of a Google service account (``service_accounts``:
  client email -> public key PEM, ``delegations``: client email -> scopes granted by domain-wide
  delegation, ``mailboxes``: users of the domain); see :class:`devtools.token_grants.ServiceAccountCheck`.

``clock_offset`` puts the server's clock ahead (or behind) to test clock skew. ``subject_of(token)``
says for whom a token was issued (the ``sub`` of a jwt_bearer assertion).

Standard library only: ``http.server`` in a thread, bound to 127.0.0.1 on a free port.

    with TokenServer(clients={"app": "s3cret"}, expires_in=3600) as tokens:
        tokens.url            # http://127.0.0.1:PORT/oauth2/token
        tokens.is_valid(tok)  # the SMTP dev server asks this for AUTH XOAUTH2
        tokens.request_count  # how many token requests were answered (any outcome)

Fault modes (``fault=`` or the attribute at run time): ``invalid_client`` (401), ``server_error``
(500), ``not_json`` (200 with an HTML body), ``missing_token`` (200 JSON without the token),
``slow`` (answers after ``delay`` seconds).
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import secrets
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

from devtools.token_grants import (
    JWT_BEARER_GRANT,
    ClientAssertionCheck,
    Refusal,
    ServiceAccountCheck,
)

log = logging.getLogger(__name__)

FAULTS = ("invalid_client", "server_error", "not_json", "missing_token", "slow")
AUTH_METHODS = ("client_secret_post", "client_secret_basic")
TOKEN_PATH = "/oauth2/token"


@dataclass(frozen=True)
class TokenRequest:
    """One answered token request (for assertions)."""

    client_id: str
    scope: str
    auth_method: str
    status: int
    at: float
    grant_type: str = "client_credentials"
    error: str = ""


class TokenServer:
    """OAuth 2.0 client-credentials token endpoint on 127.0.0.1.

    :param clients: client id -> client secret accepted.
    :param scopes: scopes a client may ask for (space separated in a request); None accepts any.
    :param expires_in: lifetime of issued tokens in seconds (also reported in the response).
    :param token_bytes: random bytes per token; 1500 gives a token of about 2 KB.
    :param token_key: where the token goes in the response; a dotted path nests it
        (``"data.token.value"`` -> ``{"data": {"token": {"value": ...}}}``).
    :param expires_key: where the lifetime goes; dotted paths nest likewise. None leaves it out.
    :param auth_methods: client authentication methods accepted (client_secret_post/_basic).
    :param certificates: client id -> certificate PEM accepted for private_key_jwt client assertions.
    :param refresh_tokens: refresh token -> client id it was issued to.
    :param rotate_refresh_tokens: answer a refresh_token grant with a new refresh token, revoking the old.
    :param service_accounts: service account email -> public key PEM (jwt_bearer).
    :param delegations: service account email -> scopes of its domain-wide delegation.
    :param mailboxes: users a service account may act for (``sub``); None accepts any.
    :param clock_offset: seconds added to this server's clock (clock skew tests).
    :param fault: one of FAULTS, or None.
    :param delay: seconds the ``slow`` fault waits before answering.
    :param host: bind address; keep it 127.0.0.1.
    :param port: 0 picks a free port.
    """

    def __init__(
        self,
        clients: Mapping[str, str] | None = None,
        *,
        scopes: set[str] | frozenset[str] | None = None,
        expires_in: float = 3600,
        token_bytes: int = 1500,
        token_key: str = "access_token",
        expires_key: str | None = "expires_in",
        auth_methods: tuple[str, ...] = AUTH_METHODS,
        certificates: Mapping[str, str] | None = None,
        refresh_tokens: Mapping[str, str] | None = None,
        rotate_refresh_tokens: bool = False,
        service_accounts: Mapping[str, str] | None = None,
        delegations: Mapping[str, set[str] | frozenset[str]] | None = None,
        mailboxes: set[str] | frozenset[str] | None = None,
        clock_offset: float = 0.0,
        fault: str | None = None,
        delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; use one of: {', '.join(FAULTS)}")
        unknown = set(auth_methods) - set(AUTH_METHODS)
        if unknown:
            raise ValueError(f"unknown auth method(s) {sorted(unknown)}; use: {', '.join(AUTH_METHODS)}")
        self.clients: dict[str, str] = dict(clients or {"failnotify-client": "failnotify-secret"})
        self.scopes = None if scopes is None else frozenset(scopes)
        self.expires_in = expires_in
        self.token_bytes = token_bytes
        self.token_key = token_key
        self.expires_key = expires_key
        self.auth_methods = tuple(auth_methods)
        self.client_assertions = ClientAssertionCheck(dict(certificates or {}))
        self.refresh_tokens: dict[str, str] = dict(refresh_tokens or {})
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.service_account_checks = ServiceAccountCheck(
            dict(service_accounts or {}), dict(delegations or {}), mailboxes
        )
        self.clock_offset = clock_offset
        self._subjects: dict[str, str] = {}
        self.fault = fault
        self.delay = delay
        self.host = host
        self.port = port
        self.requests: list[TokenRequest] = []
        self._issued: dict[str, float] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> TokenServer:
        if self._httpd is not None:
            raise RuntimeError("token server already running")
        handler = _make_handler(self)
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"token-server-{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests use ----------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{TOKEN_PATH}"

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    @property
    def issued_count(self) -> int:
        with self._lock:
            return len(self._issued)

    def is_valid(self, token: str) -> bool:
        """True when ``token`` was issued here, is not revoked and has not expired."""
        with self._lock:
            expiry = self._issued.get(token)
        return expiry is not None and time.time() < expiry

    def __call__(self, token: str) -> bool:
        return self.is_valid(token)

    def subject_of(self, token: str) -> str:
        """For whom ``token`` was issued: the assertion's sub (jwt_bearer), else the client id."""
        with self._lock:
            return self._subjects.get(token, "")

    def add_service_account(self, client_email: str, public_key_pem: str, scopes: set[str]) -> None:
        """Know a service account (its public key) and grant it ``scopes`` by domain-wide delegation."""
        checks = self.service_account_checks
        checks.accounts = {**checks.accounts, client_email: public_key_pem}
        checks.delegations = {**checks.delegations, client_email: frozenset(scopes)}

    def now(self) -> float:
        """This server's clock (real time plus ``clock_offset``)."""
        return time.time() + self.clock_offset

    def revoke(self, token: str | None = None) -> None:
        """Revoke one token, or every token issued so far."""
        with self._lock:
            if token is None:
                self._issued.clear()
            else:
                self._issued.pop(token, None)

    def reset(self) -> None:
        """Forget requests and tokens, clear the fault."""
        with self._lock:
            self.requests.clear()
            self._issued.clear()
        self.fault = None

    # -- request handling (called from the HTTP thread) --------------------------------------
    def _record(
        self, client_id: str, scope: str, method: str, status: int, grant: str = "", error: str = ""
    ) -> None:
        with self._lock:
            self.requests.append(
                TokenRequest(
                    client_id, scope, method, status, time.time(), grant or "client_credentials", error
                )
            )

    def _issue(self) -> str:
        token = secrets.token_urlsafe(self.token_bytes)
        with self._lock:
            self._issued[token] = time.time() + self.expires_in
        return token

    def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Answer one POST to the token path: (status, headers, body)."""
        form = {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}
        client_id, client_secret, method = _client_credentials(headers, form)
        scope = form.get("scope", "")
        grant = form.get("grant_type", "")
        refresh = ""

        fault = self.fault
        if fault == "slow":
            time.sleep(self.delay)
        if fault == "server_error":
            return self._answer(client_id, scope, method, 500, {"error": "server_error"}, grant=grant)
        if fault == "invalid_client":
            return self._answer(client_id, scope, method, 401, _invalid_client(), grant=grant)
        try:
            if grant == "client_credentials":
                client_id, method = self._client_credentials_grant(form, client_id, client_secret, method)
                subject = client_id
            elif grant == "refresh_token":
                refresh = self._refresh_token_grant(form, client_id, client_secret, method)
                subject = client_id
            elif grant == JWT_BEARER_GRANT:
                client_id, subject, scope = self.service_account_checks.verify(
                    form.get("assertion", ""), url=self.url, now=self.now()
                )
                method = "jwt_bearer"
            else:
                raise Refusal(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported")
        except Refusal as refusal:
            payload = {"error": refusal.error, "error_description": refusal.description}
            return self._answer(client_id, scope, method, refusal.status, payload, grant=grant)
        if fault == "not_json":
            self._record(client_id, scope, method, 200, grant)
            return 200, {"Content-Type": "text/html"}, b"<html><body>Sign in</body></html>"
        payload = self._token_payload(subject)
        if grant == "refresh_token" and self.rotate_refresh_tokens:
            payload["refresh_token"] = self._rotate(refresh, client_id)
        return self._answer(client_id, scope, method, 200, payload, grant=grant)

    def _client_credentials_grant(
        self, form: Mapping[str, str], client_id: str, client_secret: str, method: str
    ) -> tuple[str, str]:
        """(client id, auth method) of an authenticated client_credentials request, or Refusal."""
        if "client_assertion" in form or "client_assertion_type" in form:
            return self.client_assertions.verify(form, url=self.url, now=self.now()), "private_key_jwt"
        self._check_secret(client_id, client_secret, method)
        scope = form.get("scope", "")
        if self.scopes is not None and not set(scope.split()) <= self.scopes:
            raise Refusal(400, "invalid_scope", "the requested scope is not allowed")
        return client_id, method

    def _check_secret(self, client_id: str, client_secret: str, method: str) -> None:
        if (
            not method
            or method not in self.auth_methods
            or client_id not in self.clients
            or not secrets.compare_digest(self.clients[client_id], client_secret)
        ):
            raise Refusal(401, "invalid_client", "client authentication failed")

    def _refresh_token_grant(
        self, form: Mapping[str, str], client_id: str, client_secret: str, method: str
    ) -> str:
        """The refresh token used, after Google's checks (client secret, token issued to this client)."""
        self._check_secret(client_id, client_secret, method)
        refresh = form.get("refresh_token", "")
        with self._lock:
            owner = self.refresh_tokens.get(refresh)
        if owner is None or owner != client_id:
            raise Refusal(400, "invalid_grant", "Token has been expired or revoked.")
        return refresh

    def _rotate(self, used: str, client_id: str) -> str:
        new = "rt-" + secrets.token_urlsafe(32)
        with self._lock:
            self.refresh_tokens.pop(used, None)
            self.refresh_tokens[new] = client_id
        return new

    def _token_payload(self, subject: str) -> dict[str, Any]:
        payload: dict[str, Any] = {"token_type": "Bearer"}
        if self.fault != "missing_token":
            token = self._issue()
            with self._lock:
                self._subjects[token] = subject
            _put(payload, self.token_key, token)
        if self.expires_key:
            expires: float | int = self.expires_in
            if float(expires).is_integer():
                expires = int(expires)
            _put(payload, self.expires_key, expires)
        return payload

    def _answer(
        self,
        client_id: str,
        scope: str,
        method: str,
        status: int,
        payload: dict[str, Any],
        *,
        grant: str = "",
    ) -> tuple[int, dict[str, str], bytes]:
        self._record(client_id, scope, method, status, grant, str(payload.get("error") or ""))
        headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
        if status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="token"'
        return status, headers, json.dumps(payload).encode("utf-8")


def _invalid_client() -> dict[str, str]:
    return {"error": "invalid_client", "error_description": "client authentication failed"}


def _put(target: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def _make_handler(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path.split("?")[0] != TOKEN_PATH:
                self._send(404, {"Content-Type": "application/json"}, b'{"error": "not_found"}')
                return
            status, headers, payload = server.handle(dict(self.headers.items()), body)
            self._send(status, headers, payload)

        def do_GET(self) -> None:  # noqa: N802
            self._send(405, {"Content-Type": "application/json", "Allow": "POST"}, b'{"error": "use POST"}')

        def _send(self, status: int, headers: Mapping[str, str], payload: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            # Never the body (it holds client secrets): method, path and status only.
            log.debug("token endpoint: " + format, *args)

    return Handler


def main(argv: list[str] | None = None) -> int:
    """``python -m devtools.token_server --client id:secret [--port N]``."""
    parser = argparse.ArgumentParser(description="Development OAuth 2.0 token endpoint (client credentials).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--client", action="append", default=[], metavar="ID:SECRET", help="accepted client (repeatable)"
    )
    parser.add_argument(
        "--scope", action="append", default=None, help="allowed scope (repeatable); any if unset"
    )
    parser.add_argument("--expires-in", type=float, default=3600)
    args = parser.parse_args(argv)
    clients = {}
    for item in args.client:
        client_id, sep, secret = item.partition(":")
        if not sep:
            parser.error(f"--client must be ID:SECRET, not {item!r}")
        clients[client_id] = secret
    server = TokenServer(
        clients or None,
        scopes=set(args.scope) if args.scope else None,
        expires_in=args.expires_in,
        host=args.host,
        port=args.port,
    )
    with server:
        print(f"token endpoint listening at {server.url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())


def _client_credentials(headers: Mapping[str, str], form: Mapping[str, str]) -> tuple[str, str, str]:
    """(client id, client secret, method) from HTTP Basic or the form; empty when neither is used."""
    authorization = headers.get("Authorization", "")
    if authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return "", "", "client_secret_basic"
        raw_id, _, raw_secret = decoded.partition(":")
        return unquote(raw_id), unquote(raw_secret), "client_secret_basic"
    if "client_id" in form or "client_secret" in form:
        return form.get("client_id", ""), form.get("client_secret", ""), "client_secret_post"
    return "", "", ""
