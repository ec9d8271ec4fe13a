"""Channels: how a rendered :class:`~airflow_failnotify.core.notification.Notification` reaches people.

One module per channel, chosen by the type of the integration's connection; today only email
(:mod:`airflow_failnotify.channels.email`, connection type ``failnotify_smtp``). A second channel
is its module (a transport: ``send(notification) -> refused``), its connection type's hook, and one
line in :data:`CHANNELS`; delivery and rendering do not change.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from airflow_failnotify.channels.email import open_email_transport
from airflow_failnotify.core.outbox import Transport

EMAIL_CONN_TYPE = "failnotify_smtp"

#: Connection type -> the channel that sends through such a connection.
CHANNELS: dict[str, Callable[[str], AbstractContextManager[Transport]]] = {
    EMAIL_CONN_TYPE: open_email_transport,
}


def open_transport(conn_id: str) -> AbstractContextManager[Transport]:
    """The transport of the channel that connection ``conn_id`` belongs to.

    A connection of a type no channel claims goes through email, which reads it as an SMTP server
    (and says so when it cannot), as it always did.
    """
    if set(CHANNELS) == {EMAIL_CONN_TYPE}:
        return open_email_transport(conn_id)  # one channel: no need to look the connection up
    return CHANNELS.get(_conn_type(conn_id) or EMAIL_CONN_TYPE, open_email_transport)(conn_id)


def _conn_type(conn_id: str) -> str | None:
    from airflow.sdk import BaseHook

    try:
        return str(BaseHook.get_connection(conn_id).conn_type or "") or None
    except Exception:  # the channel's own hook reports a missing connection clearly
        return None
