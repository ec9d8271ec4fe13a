"""A real OAuth 2.0 token endpoint (client-credentials grant) for tests, the demo and benchmarks.

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
    def _record(self, client_id: str, scope: str, method: str, status: int) -> None:
        with self._lock:
            self.requests.append(TokenRequest(client_id, scope, method, status, time.time()))

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

        fault = self.fault
        if fault == "slow":
            time.sleep(self.delay)
        if fault == "server_error":
            return self._answer(client_id, scope, method, 500, {"error": "server_error"})
        if fault == "invalid_client":
            return self._answer(client_id, scope, method, 401, _invalid_client())
        if form.get("grant_type") != "client_credentials":
            return self._answer(client_id, scope, method, 400, {"error": "unsupported_grant_type"})
        if (
            not method
            or method not in self.auth_methods
            or client_id not in self.clients
            or not secrets.compare_digest(self.clients[client_id], client_secret)
        ):
            return self._answer(client_id, scope, method, 401, _invalid_client())
        if self.scopes is not None and not set(scope.split()) <= self.scopes:
            return self._answer(
                client_id,
                scope,
                method,
                400,
                {"error": "invalid_scope", "error_description": "the requested scope is not allowed"},
            )
        if fault == "not_json":
            self._record(client_id, scope, method, 200)
            return 200, {"Content-Type": "text/html"}, b"<html><body>Sign in</body></html>"
        payload: dict[str, Any] = {"token_type": "Bearer"}
        if fault != "missing_token":
            _put(payload, self.token_key, self._issue())
        if self.expires_key:
            expires: float | int = self.expires_in
            if float(expires).is_integer():
                expires = int(expires)
            _put(payload, self.expires_key, expires)
        return self._answer(client_id, scope, method, 200, payload)

    def _answer(
        self, client_id: str, scope: str, method: str, status: int, payload: dict[str, Any]
    ) -> tuple[int, dict[str, str], bytes]:
        self._record(client_id, scope, method, status)
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
