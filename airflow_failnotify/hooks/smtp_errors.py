"""What an SMTP failure means: a :class:`MailDeliveryError` that says what happened and where.

``temporary`` says whether the same mail may succeed later; ``server_level`` whether the server
(rather than this one mail) is the problem, so the rest of the pass should wait. Every message is
redacted of the connection's secrets (and of the OAuth 2.0 token in use).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Iterable, Mapping

from airflow_failnotify.core.retry import SendStage, classify_reply, refusal_hint
from airflow_failnotify.exceptions import MailDeliveryError
from airflow_failnotify.hooks.secrets import redact
from airflow_failnotify.hooks.smtp_settings import SmtpSettings


def reply_text(reply: bytes | str) -> str:
    """An SMTP reply on one line, capped (for messages)."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:300]


def delivery_error(
    message: str,
    secrets: Iterable[str],
    *,
    temporary: bool,
    server_level: bool = True,
    stage: SendStage | None = None,
    code: int | None = None,
) -> MailDeliveryError:
    return MailDeliveryError(
        redact(message, secrets), temporary=temporary, server_level=server_level, stage=stage, code=code
    )


def refusal_error(
    what: str,
    stage: SendStage,
    code: int,
    reply: bytes | str,
    secrets: Iterable[str],
    *,
    size_bytes: int | None = None,
) -> MailDeliveryError:
    """A refusal at MAIL FROM, RCPT or DATA, classified by what it means (core/retry.py)."""
    text = reply_text(reply)
    treatment = classify_reply(stage, code, text)
    hint = refusal_hint(stage, code, text, size_bytes)
    return delivery_error(
        f"{what} ({code} {text})" + (f": {hint}" if hint else ""),
        secrets,
        temporary=not treatment.permanent,
        server_level=treatment.server_level,
        stage=stage,
        code=code,
    )


def _timed_out(err: BaseException) -> bool:
    context = err.__context__ or err.__cause__
    return isinstance(err, (TimeoutError, socket.timeout)) or (
        isinstance(err, smtplib.SMTPServerDisconnected) and isinstance(context, TimeoutError)
    )


def _network_message(err: BaseException, settings: SmtpSettings) -> tuple[str, bool] | None:
    """(message, temporary) for a socket, DNS or TLS failure; None for anything else."""
    address = settings.address
    if _timed_out(err):
        return f"no answer from {address} within {settings.timeout:g} s", True
    if isinstance(err, ConnectionRefusedError):
        return f"SMTP server {address} refused the connection (is it running?)", True
    if isinstance(err, socket.gaierror):
        return f"cannot resolve SMTP host {settings.host!r} ({err.strerror})", True
    if isinstance(err, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate of {address} is not trusted ({err.verify_message}); "
            "install its CA or set ca_file on the connection",
            False,
        )
    if isinstance(err, ssl.SSLError):
        return (
            f"TLS with {address} failed ({err.reason or err}); check that security "
            f"({settings.security}) matches the port",
            False,
        )
    return None


def connection_error(
    err: BaseException, settings: SmtpSettings, doing: str, secrets: Iterable[str]
) -> MailDeliveryError:
    """A failure while connecting, authenticating or sending (``doing``), by its cause."""
    address = settings.address
    found = _network_message(err, settings)
    if found is not None:
        message, temporary = found
    elif isinstance(err, smtplib.SMTPServerDisconnected):
        message, temporary = f"SMTP server {address} closed the connection while {doing}", True
    elif isinstance(err, smtplib.SMTPResponseException):
        code, text = err.smtp_code, reply_text(err.smtp_error)
        message = f"SMTP server {address} answered {code} {text} while {doing}"
        temporary = 400 <= code < 500
    elif isinstance(err, OSError):
        reason = err.strerror or str(err) or type(err).__name__
        message, temporary = f"cannot reach SMTP server {address} ({reason})", True
    else:
        message, temporary = f"SMTP failure with {address} while {doing}: {err}", True
    return delivery_error(message, secrets, temporary=temporary)


def auth_error(settings: SmtpSettings, code: int, reply: bytes, secrets: Iterable[str]) -> MailDeliveryError:
    """AUTH did not end in 235."""
    text = reply_text(reply)
    address, user = settings.address, settings.smtp_user
    if code == 535:
        what = "the OAuth 2.0 token" if settings.auth_type == "oauth2" else "the credentials"
        return delivery_error(
            f"SMTP server {address} refused {what} of {user} ({code} {text})",
            secrets,
            temporary=False,
            stage=SendStage.AUTH,
            code=code,
        )
    if code in (530, 538):
        return delivery_error(
            f"SMTP server {address} requires encryption for AUTH ({code} {text}); "
            "set security to starttls or ssl",
            secrets,
            temporary=False,
            stage=SendStage.AUTH,
            code=code,
        )
    return delivery_error(
        f"SMTP server {address} did not accept AUTH for {user} ({code} {text})",
        secrets,
        temporary=400 <= code < 500,
        stage=SendStage.AUTH,
        code=code,
    )


def recipients_error(
    settings: SmtpSettings, refused: Mapping[str, tuple[int, bytes]], secrets: Iterable[str]
) -> MailDeliveryError:
    """Every recipient was refused: this mail's problem, temporary only if every refusal was 4xx."""
    details = ", ".join(f"{addr} ({code} {reply_text(reply)})" for addr, (code, reply) in refused.items())
    temporary = bool(refused) and all(400 <= code < 500 for code, _ in refused.values())
    codes = {code for code, _ in refused.values()}
    return delivery_error(
        f"SMTP server {settings.address} refused every recipient: {details}",
        secrets,
        temporary=temporary,
        server_level=False,
        stage=SendStage.RCPT,
        code=codes.pop() if len(codes) == 1 else None,
    )


def sender_error(
    settings: SmtpSettings, code: int, reply: bytes, secrets: Iterable[str], *, size_bytes: int | None = None
) -> MailDeliveryError:
    """MAIL FROM refused: this message (size, content, policy) or the connection's sender or account."""
    treatment = classify_reply(SendStage.MAIL, code, reply_text(reply))
    if not treatment.server_level:
        what = f"SMTP server {settings.address} refused the message at MAIL FROM"
        return refusal_error(what, SendStage.MAIL, code, reply, secrets, size_bytes=size_bytes)
    return delivery_error(
        f"SMTP server {settings.address} refused the sender {settings.from_email} "
        f"({code} {reply_text(reply)}); check from_email and the account's rights",
        secrets,
        temporary=400 <= code < 500,
        stage=SendStage.MAIL,
        code=code,
    )


def data_error(
    settings: SmtpSettings,
    code: int,
    reply: bytes | str,
    secrets: Iterable[str],
    *,
    size_bytes: int | None = None,
) -> MailDeliveryError:
    """DATA refused: 421 is the server closing (temporary, server level); else this message."""
    if code == 421:
        return delivery_error(
            f"SMTP server {settings.address} is closing the connection ({code} {reply_text(reply)})",
            secrets,
            temporary=True,
            stage=SendStage.DATA,
            code=code,
        )
    what = f"SMTP server {settings.address} refused the message"
    return refusal_error(what, SendStage.DATA, code, reply, secrets, size_bytes=size_bytes)
