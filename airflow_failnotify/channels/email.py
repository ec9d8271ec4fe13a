"""The email channel: a :class:`Notification` as a MIME message, through a ``failnotify_smtp`` connection.

Usage::

    with open_email_transport("ops_smtp") as transport:   # reads the connection; connects on first send
        for notification in notifications:
            refused = transport.send(notification)        # {} or {addr: (code, reply)}

The message's From (and the envelope sender) is the connection's ``from_email``. Every failure is the
hook's :class:`~airflow_failnotify.exceptions.MailDeliveryError`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol

from airflow_failnotify.core.mime import to_mime_message
from airflow_failnotify.core.notification import Notification
from airflow_failnotify.hooks.smtp import FailnotifySmtpHook
from airflow_failnotify.hooks.smtp_settings import SmtpSettings

__all__ = ["EmailTransport", "SmtpEmailTransport", "open_email_transport"]


class EmailTransport(Protocol):
    """Sends notifications as email, from one sender, over one open connection."""

    @property
    def sender(self) -> str:
        """The From address of every message it sends."""
        ...

    def send(self, notification: Notification) -> Mapping[str, tuple[int, bytes]]:
        """Send one notification; return the refused recipients ({} when all were accepted)."""
        ...


class SmtpEmailTransport:
    """:class:`EmailTransport` over a :class:`FailnotifySmtpHook` (one SMTP connection, reused)."""

    def __init__(self, hook: FailnotifySmtpHook) -> None:
        self._hook = hook

    @property
    def settings(self) -> SmtpSettings:
        """The connection's settings (read once; MailDeliveryError when missing or invalid)."""
        return self._hook.settings

    @property
    def sender(self) -> str:
        return self.settings.from_email

    def send(self, notification: Notification) -> Mapping[str, tuple[int, bytes]]:
        return self._hook.send_message(to_mime_message(notification, sender=self.sender))


@contextmanager
def open_email_transport(conn_id: str) -> Iterator[SmtpEmailTransport]:
    """The email transport of connection ``conn_id``; the SMTP connection is closed on exit.

    The connection is read (and validated) on entry, so a missing or invalid one fails before any
    rendering; the SMTP server is connected to at the first send.
    """
    hook = FailnotifySmtpHook(conn_id)
    transport = SmtpEmailTransport(hook)
    transport.settings  # noqa: B018 - read and validate the connection now
    try:
        yield transport
    finally:
        hook.close()
