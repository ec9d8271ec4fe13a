"""The Test button and ``failnotify test-email``: a test mail through a connection, never raising."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from airflow_failnotify.core.model import Direction, DirectionSettings, Registration
from airflow_failnotify.exceptions import MailDeliveryError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TestOutcome:
    ok: bool
    direction: str
    message: str


def test_directions(reg: Registration) -> list[tuple[Direction, str, DirectionSettings]]:
    directions = [(Direction.FORWARD, reg.integration, reg.forward)]
    backward = reg.settings_for(Direction.BACKWARD) if reg.backward_integration else None
    if reg.backward_integration and backward is not None and backward != reg.forward:
        directions.append((Direction.BACKWARD, reg.backward_integration, backward))
    return directions


def send_test_emails(reg: Registration) -> list[TestOutcome]:
    """The Test button: a test email per distinct direction, through its email server; never raises."""
    from airflow_failnotify.core.emails import render_test_email, to_mime_message
    from airflow_failnotify.hooks.smtp import FailnotifySmtpHook
    from airflow_failnotify.settings import airflow_base_url

    outcomes = []
    for direction, dag_id, settings in test_directions(reg):
        everyone = ", ".join(dict.fromkeys(settings.recipients + settings.cc))
        try:
            hook = FailnotifySmtpHook(settings.smtp_conn_id)
            sender = hook.settings.from_email
            rendered = render_test_email(
                reg.integration,
                direction,
                settings,
                sender=sender,
                dag_id=dag_id,
                base_url=airflow_base_url(),
            )
            with hook:
                refused = hook.send_message(to_mime_message(rendered, sender=sender))
        except MailDeliveryError as err:
            outcomes.append(TestOutcome(False, direction.value, f"Not sent: {err}"))
            continue
        except Exception as err:  # never a traceback (or a secret) on the page
            log.warning("failnotify: test email through %s failed", settings.smtp_conn_id, exc_info=True)
            outcomes.append(
                TestOutcome(
                    False, direction.value, f"Not sent: unexpected {type(err).__name__}; see the logs"
                )
            )
            continue
        message = f"Test email sent through {settings.smtp_conn_id} to {everyone}."
        if refused:
            message += " Refused by the server: " + ", ".join(
                f"{address} ({code})" for address, (code, _reply) in refused.items()
            )
        outcomes.append(TestOutcome(not refused, direction.value, message))
    return outcomes
