"""FailnotifySmtpNotifier: an email notifier for users' own callbacks, over a ``failnotify_smtp`` connection.

from airflow_failnotify.notifications.smtp import FailnotifySmtpNotifier

@task(on_failure_callback=FailnotifySmtpNotifier(
    failnotify_smtp_conn_id="ops_smtp", to="ops@example.com",
    subject="{{ dag.dag_id }} failed",
))
def sync(): ...
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Iterable, Sequence
from email.message import Message
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.bases.notifier import BaseNotifier

from airflow_failnotify.core.addresses import parse_connection_recipients
from airflow_failnotify.core.emails import unique_message_id
from airflow_failnotify.core.mime import to_mime_message
from airflow_failnotify.core.notification import Attachment, Notification
from airflow_failnotify.hooks.smtp import FailnotifySmtpHook

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

log = logging.getLogger(__name__)

DEFAULT_SUBJECT = "[Airflow] {{ dag.dag_id }} failed ({{ run_id }})"
DEFAULT_HTML = """\
<p>DAG <b>{{ dag.dag_id | e }}</b>, run <code>{{ run_id | e }}</code>
{%- if ti is defined and ti %}, task <b>{{ ti.task_id | e }}</b>
{%- if ti.map_index is defined and ti.map_index is not none and ti.map_index >= 0 %}
 [{{ ti.map_index }}]{% endif %}{% endif %} failed.</p>
{% if exception is defined and exception %}<pre>{{ exception | string | e }}</pre>{% endif %}
"""


class FailnotifySmtpNotifier(BaseNotifier):
    """Send an email through a ``failnotify_smtp`` connection (OAuth 2.0, Basic or no auth).

    :param to: recipients, comma separated or a list (templated). Default: the connection's
        ``to_email``.
    :param cc: copy recipients (templated).
    :param subject: the subject (templated). Line breaks are removed.
    :param html_content: the HTML body (templated).
    :param text_content: the plain-text alternative (templated); derived from nothing when None,
        in which case a short text part says to view the HTML.
    :param files: paths of files to attach, each with its guessed MIME type (templated).
    :param failnotify_smtp_conn_id: the connection id (templated).
    """

    template_fields: Sequence[str] = (
        "to",
        "cc",
        "subject",
        "html_content",
        "text_content",
        "files",
        "failnotify_smtp_conn_id",
    )

    def __init__(
        self,
        *,
        to: str | Iterable[str] | None = None,
        cc: str | Iterable[str] | None = None,
        subject: str = DEFAULT_SUBJECT,
        html_content: str = DEFAULT_HTML,
        text_content: str | None = None,
        files: Sequence[str] | None = None,
        failnotify_smtp_conn_id: str = FailnotifySmtpHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.to = to
        self.cc = cc
        self.subject = subject
        self.html_content = html_content
        self.text_content = text_content
        self.files = files
        self.failnotify_smtp_conn_id = failnotify_smtp_conn_id
        self._hook: FailnotifySmtpHook | None = None

    @property
    def hook(self) -> FailnotifySmtpHook:
        """The hook of the connection, cached (no I/O until a mail is sent).

        Cached per connection id: rendering a templated ``failnotify_smtp_conn_id`` after the hook
        was first used gives the hook of the rendered id, not a stale one.
        """
        hook = self._hook
        if hook is None or hook.failnotify_smtp_conn_id != self.failnotify_smtp_conn_id:
            hook = self._hook = FailnotifySmtpHook(failnotify_smtp_conn_id=self.failnotify_smtp_conn_id)
        return hook

    def build_notification(self) -> Notification:
        """The notification to send, from the (rendered) fields."""
        to = parse_connection_recipients(_as_list(self.to)) or list(self.hook.settings.to_emails)
        if not to:
            raise ValueError(
                "FailnotifySmtpNotifier has no recipient: pass to=... or set to_email on connection "
                f"{self.failnotify_smtp_conn_id!r}"
            )
        return Notification(
            subject=" ".join(str(self.subject).split()),
            text=self.text_content or "This notification is in HTML; view it in an HTML mail client.\n",
            html=str(self.html_content),
            to=tuple(to),
            cc=tuple(parse_connection_recipients(_as_list(self.cc))),
            message_id=unique_message_id("notifier"),
            attachments=tuple(_attachment(name) for name in self.files or ()),
        )

    def build_message(self) -> Message:
        """The email to send, from the (rendered) fields, with the connection's sender."""
        return to_mime_message(self.build_notification(), sender=self.hook.settings.from_email)

    def notify(self, context: Context) -> None:
        """Send the email; MailDeliveryError when it could not be sent."""
        msg = self.build_message()
        with self.hook as hook:
            refused = hook.send_message(msg)
        if refused:
            self.log.warning("some recipients were refused: %s", ", ".join(sorted(refused)))


def _as_list(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]


def _attachment(name: str) -> Attachment:
    """A file to attach, with its guessed MIME type (application/octet-stream when unknown)."""
    path = Path(name)
    mime, _ = mimetypes.guess_type(path.name)
    return Attachment(path.name, path.read_bytes(), mime or "application/octet-stream")
