"""Send now and Retry of one outbox notification: the rules both UIs apply (admin-level actions).

Send now works on pending notifications, Retry on failed ones; a sent notification is never sent
again. Each action returns what happened in words the pages show as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_failnotify.core.model import OutboxState


class OutboxActionStore(Protocol):
    def get_outbox_item(self, outbox_id: int) -> Any: ...

    def requeue(self, outbox_id: int) -> bool: ...


@dataclass(frozen=True)
class ActionOutcome:
    """``sent``: the mail went out; ``level``: success, warning (nothing done) or danger (send failed)."""

    outbox_id: int
    sent: bool
    state: str
    message: str
    level: str


def _run_pass(outbox_id: int) -> Any:
    from airflow_failnotify.service.passes import run_notification_pass

    return run_notification_pass(trigger="manual", only_ids=[outbox_id], evaluate=False)


def _send(store: OutboxActionStore, outbox_id: int, run_pass: Callable[[int], Any]) -> ActionOutcome:
    summary = run_pass(outbox_id)
    if summary.sent:
        return ActionOutcome(
            outbox_id, True, OutboxState.SENT.value, f"Notification #{outbox_id} was sent.", "success"
        )
    reasons = "; ".join(str(e.get("reason", "")) for e in summary.errors) or "it was not claimed"
    item = store.get_outbox_item(outbox_id)
    state = item.state.value if item else "unknown"
    return ActionOutcome(
        outbox_id, False, state, f"Notification #{outbox_id} was not sent (now {state}): {reasons}", "danger"
    )


def _missing(outbox_id: int) -> ActionOutcome:
    return ActionOutcome(outbox_id, False, "unknown", f"There is no notification #{outbox_id}.", "warning")


def send_now(
    store: OutboxActionStore, outbox_id: int, *, run_pass: Callable[[int], Any] = _run_pass
) -> ActionOutcome:
    item = store.get_outbox_item(outbox_id)
    if item is None:
        return _missing(outbox_id)
    if item.state is not OutboxState.PENDING:
        return ActionOutcome(
            outbox_id,
            False,
            item.state.value,
            f"Notification #{outbox_id} is {item.state.value}: Send now works on pending notifications "
            "only (a sent notification is never sent again). Nothing was sent.",
            "warning",
        )
    return _send(store, outbox_id, run_pass)


def retry(
    store: OutboxActionStore, outbox_id: int, *, run_pass: Callable[[int], Any] = _run_pass
) -> ActionOutcome:
    item = store.get_outbox_item(outbox_id)
    if item is None:
        return _missing(outbox_id)
    if not store.requeue(outbox_id):
        return ActionOutcome(
            outbox_id,
            False,
            item.state.value,
            f"Notification #{outbox_id} is {item.state.value}: only failed notifications can be retried "
            "(a sent notification is never sent again). Nothing was sent.",
            "warning",
        )
    return _send(store, outbox_id, run_pass)
