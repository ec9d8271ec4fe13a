"""A real SMTP server (aiosmtpd) for tests, the demo and benchmarks.

    with TokenServer(clients={"app": "secret"}) as tokens, DevSmtpServer(
        users={"bot@example.com": "pw"}, tokens=tokens, security="starttls", require_auth=True
    ) as smtp:
        ...  # send to smtp.host:smtp.port (trust smtp.ca_file for TLS)
        smtp.messages[0].message["Subject"]

It really checks credentials: AUTH PLAIN/LOGIN against ``users``, AUTH XOAUTH2 against the token
endpoint (``tokens.is_valid(token)`` or a callable). Every received message is kept in memory
(:class:`ReceivedMessage`) and, with ``mail_dir``, written as an ``.eml`` file.

Fault knobs (constructor arguments or attributes changed at run time):
``auth_error`` (reply to every AUTH, e.g. ``"454 4.7.0 try later"``), ``refuse_recipients``
(address -> reply, 550 by default), ``data_error`` (e.g. ``"554 5.7.1 no"``, for the next
``data_error_times`` messages or always), ``drop_in_data`` (close the connection after the client
starts DATA), ``never_greet`` (accept TCP, then say nothing), and :meth:`stop` / :meth:`start`
again on the same port.

Run it alone (the demo does): ``python -m devtools.smtp_server --port 2525
--mail-dir ./mails --user bot@example.com:pw``; it prints one line per message.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import collections
import datetime as dt
import ipaddress
import logging
import re
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Protocol, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session

log = logging.getLogger(__name__)

SECURITY_MODES = ("none", "starttls", "ssl")
#: Large enough for AUTH XOAUTH2 with 2-3 KB tokens (base64 grows them by a third).
MAX_LINE = 16384


class TokenValidator(Protocol):
    def is_valid(self, token: str) -> bool: ...


@dataclass(frozen=True)
class AuthIdentity:
    """Who authenticated a session, and how (``auth_data`` of the aiosmtpd session)."""

    mechanism: str
    login: str


@dataclass
class ReceivedMessage:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    auth_identity: str | None
    auth_mechanism: str | None
    tls: bool
    peer: str
    received_at: dt.datetime
    path: Path | None = None

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))


@dataclass(frozen=True)
class TlsMaterial:
    cert_file: Path
    key_file: Path


_TLS_LOCK = threading.Lock()
_TLS_CACHE: TlsMaterial | None = None


def self_signed_certificate() -> TlsMaterial:
    """A self-signed certificate for localhost / 127.0.0.1, made once per process (cryptography)."""
    global _TLS_CACHE
    with _TLS_LOCK:
        if _TLS_CACHE is not None and _TLS_CACHE.cert_file.exists():
            return _TLS_CACHE
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "failnotify dev SMTP")])
        now = dt.datetime.now(dt.timezone.utc)
        public_key = key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.IPAddress(ipaddress.ip_address("::1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
            .sign(key, hashes.SHA256())
        )
        directory = Path(tempfile.mkdtemp(prefix="failnotify-devsmtp-tls-"))
        cert_file = directory / "cert.pem"
        key_file = directory / "key.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_file.chmod(0o600)
        _TLS_CACHE = TlsMaterial(cert_file, key_file)
        return _TLS_CACHE


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on ``host`` (aiosmtpd cannot bind port 0 itself)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


_XOAUTH2 = re.compile(r"^user=(?P<user>[^\x01]*)\x01auth=Bearer (?P<token>[^\x01]+)\x01\x01$")


class _Session(Session):
    """aiosmtpd's Session without the deprecation warning it logs on every successful AUTH."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _DevSMTP(SMTP):
    """aiosmtpd's SMTP with room for big XOAUTH2 lines and the never-greet / drop-in-DATA faults."""

    line_length_limit = MAX_LINE
    command_size_limit = MAX_LINE
    # A class of our own: aiosmtpd clears this shared dict in every __init__.
    command_size_limits: dict[str, int] = collections.defaultdict(lambda: MAX_LINE)

    def _create_session(self) -> Session:
        return _Session(self.loop)

    @property
    def dev(self) -> DevSmtpServer:
        return cast(_Handler, self.event_handler).dev

    async def _handle_client(self) -> None:
        dev = self.dev
        dev._count_connection()
        if dev.never_greet:
            # Accept the TCP connection and stay silent until the client gives up (or we stop).
            while self.transport is not None:
                await asyncio.sleep(0.1)
            return
        await super()._handle_client()

    async def smtp_DATA(self, arg: str) -> None:
        if (
            self.dev.drop_in_data
            and self.envelope is not None
            and self.envelope.rcpt_tos
            and self.transport is not None
        ):
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.readline()
            self.transport.close()
            return
        await super().smtp_DATA(arg)


class _Handler:
    def __init__(self, dev: DevSmtpServer) -> None:
        self.dev = dev

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        expected = self.dev.users.get(login)
        if expected is not None and _same(expected, password):
            self.dev._count_auth(True)
            return AuthResult(success=True, auth_data=AuthIdentity(mechanism, login))
        self.dev._count_auth(False)
        return AuthResult(success=False, handled=False)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802 (aiosmtpd naming)
        if len(args) > 1:
            try:
                blob = base64.b64decode(args[1].encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError):
                self.dev._count_auth(False)
                return AuthResult(success=False, handled=False, message="501 5.5.2 Can't decode base64")
        else:
            answer = await server.challenge_auth("", encode_to_b64=False)
            if not isinstance(answer, bytes):
                self.dev._count_auth(False)
                return AuthResult(success=False, handled=True)
            blob = answer
        match = _XOAUTH2.match(blob.decode("utf-8", "replace"))
        if match is None:
            self.dev._count_auth(False)
            return AuthResult(success=False, handled=False, message="501 5.5.2 Malformed XOAUTH2 response")
        if not self.dev._token_is_valid(match["token"]):
            self.dev._count_auth(False)
            return AuthResult(
                success=False, handled=False, message="535 5.7.3 Authentication unsuccessful (token)"
            )
        self.dev._count_auth(True)
        return AuthResult(success=True, auth_data=AuthIdentity("XOAUTH2", match["user"]))

    async def handle_AUTH(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, args: list[str]
    ) -> Any:
        reply = self.dev.auth_error
        if reply is None:
            return MISSING  # carry on with the mechanism
        self.dev._count_auth(False)
        return reply

    async def handle_MAIL(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self.dev.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        refusal = self.dev.refuse_recipients.get(address.lower())
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        error = self.dev._take_data_error()
        if error is not None:
            return error
        raw = envelope.original_content or (
            envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        )
        transport = server.transport
        tls = bool(getattr(server, "_tls_protocol", None)) or (
            transport is not None and transport.get_extra_info("ssl_object") is not None
        )
        identity = session.auth_data if isinstance(session.auth_data, AuthIdentity) else None
        self.dev._store(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            raw=raw,
            identity=identity,
            tls=tls,
            peer=str(session.peer),
        )
        return "250 Message accepted for delivery"


def _same(expected: str, given: str) -> bool:
    import hmac

    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _DevSMTP(self.handler, **self.SMTP_kwargs)


class DevSmtpServer:
    """A real SMTP server on 127.0.0.1 for tests and the demo. Context manager.

    :param host: bind address (keep it on loopback).
    :param port: None picks a free port; it is kept across :meth:`stop` / :meth:`start`.
    :param users: login -> password for AUTH PLAIN / LOGIN.
    :param tokens: validates XOAUTH2 bearer tokens: an object with ``is_valid(token)`` (e.g. a
        :class:`~devtools.token_server.TokenServer`) or a callable; None refuses all.
    :param security: ``none``, ``starttls`` (STARTTLS offered and required) or ``ssl`` (implicit TLS).
    :param mail_dir: also write each message there as ``NNNNNN.eml``.
    :param require_auth: refuse MAIL FROM (530) before a successful AUTH.
    :param exclude_auth: AUTH mechanisms not to offer (of PLAIN, LOGIN, XOAUTH2).
    :param refuse_recipients: addresses refused at RCPT (iterable -> 550, or mapping address -> reply).
    :param auth_error: reply to every AUTH with this instead (e.g. ``"454 4.7.0 try later"``, or a
        ``"503 ..."`` that smtplib.login would take for a success).
    :param data_error: reply to DATA instead of accepting, e.g. ``"554 5.7.1 rejected"``.
    :param data_error_times: how many messages get ``data_error`` (None: all).
    :param drop_in_data: close the connection once the client has started sending DATA.
    :param never_greet: accept connections and never send the 220 greeting.
    :param size_limit: the message size limit in bytes (announced as SIZE; default 50 MB).
    :param on_message: called (in the server thread) with each :class:`ReceivedMessage`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        users: Mapping[str, str] | None = None,
        tokens: TokenValidator | Callable[[str], bool] | None = None,
        security: str = "none",
        mail_dir: str | Path | None = None,
        require_auth: bool = False,
        exclude_auth: Iterable[str] = (),
        refuse_recipients: Iterable[str] | Mapping[str, str] | None = None,
        auth_error: str | None = None,
        data_error: str | None = None,
        data_error_times: int | None = None,
        drop_in_data: bool = False,
        never_greet: bool = False,
        size_limit: int | None = None,
        on_message: Callable[[ReceivedMessage], None] | None = None,
    ) -> None:
        if security not in SECURITY_MODES:
            raise ValueError(f"unknown security {security!r}; use one of: {', '.join(SECURITY_MODES)}")
        self.host = host
        self.port = port or free_port(host)
        self.users: dict[str, str] = dict(users or {})
        self.tokens = tokens
        self.security = security
        self.mail_dir = Path(mail_dir) if mail_dir else None
        self.require_auth = require_auth
        self.exclude_auth = tuple(m.upper() for m in exclude_auth)
        self.refuse_recipients: dict[str, str] = {}
        if refuse_recipients:
            self.refuse(refuse_recipients)
        self.auth_error = auth_error
        self.data_error = data_error
        self.data_error_times = data_error_times
        self.drop_in_data = drop_in_data
        self.never_greet = never_greet
        self.size_limit = size_limit
        self.on_message = on_message
        self.messages: list[ReceivedMessage] = []
        self.connection_count = 0
        self.auth_successes = 0
        self.auth_failures = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._controller: _Controller | None = None
        self._tls: TlsMaterial | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> DevSmtpServer:
        if self._controller is not None:
            raise RuntimeError("SMTP server already running")
        if self.mail_dir is not None:
            self.mail_dir.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {
            "auth_require_tls": False,
            "server_hostname": "failnotify-dev-smtp",
            "ident": "failnotify dev SMTP",
            # Announced as SIZE; a bigger message is refused at MAIL FROM with 552 (RFC 1870).
            "data_size_limit": self.size_limit or 50 * 1024 * 1024,
            "auth_exclude_mechanism": self.exclude_auth,
        }
        ssl_context: ssl.SSLContext | None = None
        if self.security != "none":
            self._tls = self_signed_certificate()
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(self._tls.cert_file), str(self._tls.key_file))
            if self.security == "starttls":
                kwargs["tls_context"] = context
                kwargs["require_starttls"] = True
            else:
                ssl_context = context
        handler = _Handler(self)
        kwargs["authenticator"] = handler.authenticate
        never_greet, self.never_greet = self.never_greet, False  # the controller's own probe needs a greeting
        controller = _Controller(
            handler, hostname=self.host, port=self.port, ssl_context=ssl_context, ready_timeout=10, **kwargs
        )
        try:
            controller.start()
        finally:
            self.never_greet = never_greet
        self._controller = controller
        with self._lock:
            self.connection_count = 0
        log.debug("dev SMTP server listening on %s:%s (%s)", self.host, self.port, self.security)
        return self

    def stop(self) -> None:
        """Stop listening and drop open connections; :meth:`start` reuses the same port."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    @property
    def running(self) -> bool:
        return self._controller is not None

    def __enter__(self) -> DevSmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests use ----------------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ca_file(self) -> str | None:
        """The PEM file a client must trust for STARTTLS/SSL (the self-signed certificate)."""
        return str(self._tls.cert_file) if self._tls else None

    def refuse(self, recipients: Iterable[str] | Mapping[str, str]) -> None:
        """Refuse these recipients at RCPT (550 unless a reply is given per address)."""
        if isinstance(recipients, Mapping):
            items = dict(recipients)
        else:
            items = {addr: f"550 5.1.1 <{addr}>: Recipient address rejected" for addr in recipients}
        for addr, reply in items.items():
            self.refuse_recipients[addr.lower()] = reply

    def clear(self) -> None:
        """Forget received messages and counters; clear every fault."""
        with self._lock:
            self.messages.clear()
            self.connection_count = self.auth_successes = self.auth_failures = 0
        self.refuse_recipients.clear()
        self.auth_error = None
        self.data_error = None
        self.data_error_times = None
        self.drop_in_data = False
        self.never_greet = False

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Wait until at least ``count`` messages arrived; return them (TimeoutError otherwise)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self.messages)} message(s) arrived, {count} expected")
                self._arrived.wait(remaining)
            return list(self.messages)

    # -- called from the server thread -------------------------------------------------------
    def _count_connection(self) -> None:
        with self._lock:
            self.connection_count += 1

    def _count_auth(self, success: bool) -> None:
        with self._lock:
            if success:
                self.auth_successes += 1
            else:
                self.auth_failures += 1

    def _token_is_valid(self, token: str) -> bool:
        validator = self.tokens
        if validator is None:
            return False
        try:
            if hasattr(validator, "is_valid"):
                return bool(validator.is_valid(token))
            return bool(validator(token))
        except Exception:  # a broken validator refuses, it does not crash the session
            log.exception("token validator failed")
            return False

    def _take_data_error(self) -> str | None:
        with self._lock:
            if self.data_error is None:
                return None
            if self.data_error_times is not None:
                if self.data_error_times <= 0:
                    return None
                self.data_error_times -= 1
            return self.data_error

    def _store(
        self,
        *,
        mail_from: str,
        rcpt_tos: list[str],
        raw: bytes,
        identity: AuthIdentity | None,
        tls: bool,
        peer: str,
    ) -> None:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        record = ReceivedMessage(
            mail_from=mail_from,
            rcpt_tos=rcpt_tos,
            message=message,
            raw=raw,
            auth_identity=identity.login if identity else None,
            auth_mechanism=identity.mechanism if identity else None,
            tls=tls,
            peer=peer,
            received_at=dt.datetime.now(dt.timezone.utc),
        )
        with self._arrived:
            number = len(self.messages) + 1
            if self.mail_dir is not None:
                record.path = self.mail_dir / f"{number:06d}.eml"
                record.path.write_bytes(raw)
            self.messages.append(record)
            self._arrived.notify_all()
        if self.on_message is not None:
            try:
                self.on_message(record)
            except Exception:
                log.exception("on_message callback failed")


def main(argv: list[str] | None = None) -> int:
    """Run the dev SMTP server in the foreground, printing one line per message."""
    parser = argparse.ArgumentParser(description="Development SMTP server (aiosmtpd) for failnotify.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--mail-dir", default=None, help="write each message there as an .eml file")
    parser.add_argument("--user", action="append", default=[], metavar="LOGIN:PASSWORD")
    parser.add_argument("--security", choices=SECURITY_MODES, default="none")
    parser.add_argument("--require-auth", action="store_true")
    parser.add_argument(
        "--oauth-client",
        action="append",
        default=[],
        metavar="ID:SECRET",
        help="also run an OAuth 2.0 token endpoint accepting this client; XOAUTH2 checks its tokens",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's per-session chatter
    users: dict[str, str] = {}
    for item in args.user:
        login, sep, password = item.partition(":")
        if not sep:
            parser.error(f"--user must be LOGIN:PASSWORD, not {item!r}")
        users[login] = password
    clients: dict[str, str] = {}
    for item in args.oauth_client:
        client_id, sep, secret = item.partition(":")
        if not sep:
            parser.error(f"--oauth-client must be ID:SECRET, not {item!r}")
        clients[client_id] = secret

    def show(record: ReceivedMessage) -> None:
        to = record.message.get("To") or ", ".join(record.rcpt_tos)
        stamp = record.received_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        print(f"{stamp}  To: {to}  Subject: {record.subject}", flush=True)

    token_server = None
    if clients:
        from devtools.token_server import TokenServer

        token_server = TokenServer(clients).start()
    server = DevSmtpServer(
        args.host,
        args.port or None,
        users=users,
        tokens=token_server,
        security=args.security,
        mail_dir=args.mail_dir,
        require_auth=args.require_auth,
        on_message=show,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with server:
        print(f"dev SMTP server listening on {server.address} (security {args.security})", flush=True)
        if server.ca_file:
            print(f"TLS certificate (trust it as ca_file): {server.ca_file}", flush=True)
        if token_server is not None:
            print(f"OAuth 2.0 token endpoint: {token_server.url}", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    if token_server is not None:
        token_server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
