"""The channel-neutral notification: what the renderers produce and every channel sends.

Pure: imports nothing from Airflow, SQLAlchemy or Flask. The email channel turns one into a MIME
message (:func:`airflow_failnotify.core.mime.to_mime_message`); another channel would read the same
fields (the text body, the subject, the attachments) in its own way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Attachment", "Notification", "RenderedEmail", "recipients_of"]


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str  # e.g. "application/pdf"


@dataclass(frozen=True)
class Notification:
    """A rendered notification, ready for a channel (the email channel: :func:`to_mime_message`).

    ``to`` and ``cc`` are the recipients; ``message_id`` is the same for every send of one
    notification (a new one for each test mail); ``date`` None means "when it is sent".
    ``references`` are the Message-IDs of the thread it answers, oldest first (the episode's first
    mail); the last one is its In-Reply-To. ``list_id`` is the List-Id header (RFC 2919) and
    ``kinds`` go in the ``X-Failnotify-Kind`` header.
    """

    subject: str
    text: str
    html: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    message_id: str
    attachments: tuple[Attachment, ...] = ()
    date: datetime | None = None  # the Date header; None: the time to_mime_message runs
    episode_key: str | None = None  # the failure episode this notification belongs to
    kinds: tuple[str, ...] = ()  # the notification kinds it covers (NotificationKind values, or "test")
    failed_tasks: tuple[str, ...] = ()  # the failed task instances it names, as shown (task_id[entity])
    references: tuple[str, ...] = ()  # Message-IDs of the thread it answers, oldest first
    list_id: str | None = None  # the List-Id header value

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every recipient (To and CC), in order, without duplicates."""
        return tuple(dict.fromkeys(self.to + self.cc))


#: The name of :class:`Notification` before there were channels (kept for existing callers).
RenderedEmail = Notification


def recipients_of(notification: Notification) -> Sequence[str]:
    """Every envelope recipient (To and CC), in order, without duplicates."""
    return notification.recipients
