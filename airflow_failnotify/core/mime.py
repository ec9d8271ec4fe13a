"""The email form of a notification: a MIME message with safe headers and real attachment types.

Pure: imports nothing from Airflow, SQLAlchemy or Flask.
"""

from __future__ import annotations

import email.charset
import email.encoders
import email.header
import email.utils
from datetime import datetime, timezone
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart

from airflow_failnotify.core.notification import Notification
from airflow_failnotify.core.text import (
    MAX_ADDRESS_CHARS,
    MAX_SUBJECT_CHARS,
    as_utc,
    clean_addresses,
    header_safe,
)

__all__ = ["to_mime_message"]

_UTF8 = email.charset.Charset("utf-8")
_UTF8.body_encoding = email.charset.QP  # bodies stay readable in the raw message


def _text_part(text: str, subtype: str) -> Message:
    part = MIMENonMultipart("text", subtype)
    part.set_payload(text, _UTF8)
    return part


def _header_value(value: str) -> str:
    """ASCII as is; anything else as an RFC 2047 encoded word (our addresses are ASCII by validation)."""
    return value if value.isascii() else email.header.Header(value, "utf-8").encode()


def _sender_value(sender: str) -> str:
    name, address = email.utils.parseaddr(sender)
    if not name or sender.isascii():
        return sender
    return email.utils.formataddr((name, address), charset="utf-8")


def to_mime_message(rendered: Notification, *, sender: str) -> Message:
    """The message to send: multipart/alternative (text, HTML), inside multipart/mixed when
    there are attachments, each with its real MIME type. Every header value is made safe.

    Built with the classic ``email.mime`` classes: about 10x cheaper than ``EmailMessage``'s
    header registry, which matters when a pass sends hundreds of mails.
    """
    alternative = MIMEMultipart("alternative")
    alternative.attach(_text_part(rendered.text, "plain"))
    alternative.attach(_text_part(rendered.html, "html"))
    msg: Message = alternative
    if rendered.attachments:
        msg = MIMEMultipart("mixed")
        msg.attach(alternative)
        for attachment in rendered.attachments:
            maintype, _, subtype = attachment.mime_type.partition("/")
            part = MIMEBase(maintype or "application", subtype or "octet-stream")
            part.set_payload(attachment.content)
            email.encoders.encode_base64(part)
            part.add_header(
                "Content-Disposition", "attachment", filename=header_safe(attachment.filename, 200)
            )
            msg.attach(part)
    msg["Subject"] = _header_value(header_safe(rendered.subject, MAX_SUBJECT_CHARS))
    msg["From"] = _sender_value(header_safe(sender, MAX_ADDRESS_CHARS))
    to = clean_addresses(rendered.to)
    cc = clean_addresses(rendered.cc)
    if to:
        msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Date"] = email.utils.format_datetime(as_utc(rendered.date or datetime.now(timezone.utc)))
    msg["Message-ID"] = header_safe(rendered.message_id, 200)
    references = [header_safe(r, 200) for r in rendered.references if r]
    if references:
        msg["In-Reply-To"] = references[-1]
        msg["References"] = " ".join(references)
    if rendered.list_id:
        msg["List-Id"] = _header_value(header_safe(rendered.list_id, 300))
    if rendered.kinds:
        msg["X-Failnotify-Kind"] = header_safe(", ".join(rendered.kinds), 200)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    msg["X-Auto-Response-Suppress"] = "All"
    return msg
