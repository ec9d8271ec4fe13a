"""The Test button and ``failnotify test-email``: a test mail through a connection, never raising.

Both use :func:`send_test_email`: the core renders the mail (:func:`render_test_email` for a
registration's direction, :func:`render_connection_test_email` for a connection alone) and the email
channel sends it with the connection's sender.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from airflow_failnotify.core.model import Direction, DirectionSettings, Registration
from airflow_failnotify.core.notification import Notification
from airflow_failnotify.exceptions import MailDeliveryError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TestOutcome:
    """What happened to one test mail. ``error`` is the failure (None when sent)."""

    ok: bool
    direction: str
    message: str
    refused: Mapping[str, tuple[int, bytes]] = field(default_factory=dict)
    error: Exception | None = None


def test_directions(reg: Registration) -> list[tuple[Direction, str, DirectionSettings]]:
    directions = [(Direction.FORWARD, reg.integration, reg.forward)]
    backward = reg.settings_for(Direction.BACKWARD) if reg.backward_integration else None
    if reg.backward_integration and backward is not None and backward != reg.forward:
        directions.append((Direction.BACKWARD, reg.backward_integration, backward))
    return directions


def send_test_email(
    conn_id: str,
    to: Sequence[str],
    cc: Sequence[str] = (),
    *,
    integration: str | None = None,
    direction: Direction | None = None,
    settings: DirectionSettings | None = None,
    dag_id: str | None = None,
    base_url: str | None = None,
) -> TestOutcome:
    """Send one test email through connection ``conn_id`` to ``to`` (and ``cc``); never raises.

    With ``integration``, ``direction`` and that direction's ``settings`` it is the Test button's
    mail (what the registration will send, and to whom); without, the connection's own test mail.
    """
    from airflow_failnotify.channels.email import open_email_transport

    label = direction.value if direction is not None else ""
    try:
        with open_email_transport(conn_id) as transport:
            settings_of_conn = transport.settings
            if integration is not None and direction is not None and settings is not None:
                notification = _registration_test(
                    integration,
                    direction,
                    replace(settings, recipients=tuple(to), cc=tuple(cc)),
                    sender=transport.sender,
                    dag_id=dag_id,
                    base_url=base_url,
                )
            else:
                notification = _connection_test(
                    conn_id, to, cc, server=f"{settings_of_conn.address}, {settings_of_conn.security}"
                )
            refused = dict(transport.send(notification))
    except MailDeliveryError as err:
        return TestOutcome(False, label, f"Not sent: {err}", error=err)
    except Exception as err:  # never a traceback (or a secret) on the page
        log.warning("failnotify: test email through %s failed", conn_id, exc_info=True)
        return TestOutcome(
            False, label, f"Not sent: unexpected {type(err).__name__}; see the logs", error=err
        )
    everyone = ", ".join(dict.fromkeys([*to, *cc]))
    message = f"Test email sent through {conn_id} to {everyone}."
    if refused:
        message += " Refused by the server: " + ", ".join(
            f"{address} ({code})" for address, (code, _reply) in refused.items()
        )
    return TestOutcome(not refused, label, message, refused=refused)


def _registration_test(
    integration: str,
    direction: Direction,
    settings: DirectionSettings,
    *,
    sender: str,
    dag_id: str | None,
    base_url: str | None,
) -> Notification:
    from airflow_failnotify.core.emails import render_test_email

    return render_test_email(
        integration, direction, settings, sender=sender, dag_id=dag_id, base_url=base_url
    )


def _connection_test(conn_id: str, to: Sequence[str], cc: Sequence[str], *, server: str) -> Notification:
    from airflow_failnotify.core.emails import render_connection_test_email
    from airflow_failnotify.settings import airflow_base_url

    return render_connection_test_email(
        conn_id, to=to, cc=cc, server=server, host=socket.gethostname(), base_url=airflow_base_url()
    )


def send_test_emails(reg: Registration) -> list[TestOutcome]:
    """The Test button: a test email per distinct direction, through its email server; never raises."""
    from airflow_failnotify.settings import airflow_base_url

    return [
        send_test_email(
            settings.smtp_conn_id,
            settings.recipients,
            settings.cc,
            integration=reg.integration,
            direction=direction,
            settings=settings,
            dag_id=dag_id,
            base_url=airflow_base_url(),
        )
        for direction, dag_id, settings in test_directions(reg)
    ]
