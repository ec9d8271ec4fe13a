"""The watchdog's decisions: when the health turns bad, mail the admins once; when it recovers, once more.

Pure: the state is a small JSON document that the service keeps in the store's ``setting`` table
(compared and set, so two schedulers send one mail per episode) or, while the store is down, in a
host-local file. :func:`step` says what the new state is and which mail is due; :func:`render_admin_mail`
writes it. The mail is due until the service marks it sent (:func:`mark_sent`): a send that fails is
tried again at the next tick, and a claim with a lease keeps two watchdogs from sending it together.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from airflow_failnotify.core.health import HealthReport, HealthStatus, age_text
from airflow_failnotify.core.notification import Notification

BAD_MAIL = "bad"
RECOVERED_MAIL = "recovered"


@dataclass(frozen=True)
class WatchdogState:
    status: str = "ok"  # "ok" or "bad": the episode the admins were (or are being) told about
    since: str | None = None  # ISO time the current status began
    reasons: tuple[str, ...] = ()  # the bad checks' messages when the episode began
    due: str | None = None  # BAD_MAIL, RECOVERED_MAIL or None
    bad_sent: bool = False  # the bad mail of this episode went out (a recovery mail needs one)
    claimed_by: str | None = None
    claim_until: str | None = None

    def to_json(self) -> str:
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> WatchdogState:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            data["reasons"] = tuple(data.get("reasons") or ())
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError):
            return cls()


def step(state: WatchdogState, bad: bool, reasons: tuple[str, ...], now: datetime) -> WatchdogState:
    """The state after one look at the health (``bad``: a check is bad)."""
    if bad and state.status != "bad":
        return WatchdogState(status="bad", since=now.isoformat(), reasons=reasons, due=BAD_MAIL)
    if not bad and state.status == "bad":
        # The admins heard of the episode only if its bad mail went out: then they hear it ended.
        due = RECOVERED_MAIL if state.bad_sent else None
        return WatchdogState(status="ok", since=now.isoformat(), reasons=state.reasons, due=due)
    return state


def claimable(state: WatchdogState, worker: str, now: datetime) -> bool:
    """A due mail nobody else holds (or whose holder's lease ran out)."""
    if state.due is None:
        return False
    if state.claimed_by in (None, worker) or state.claim_until is None:
        return True
    return datetime.fromisoformat(state.claim_until) <= now


def claim(state: WatchdogState, worker: str, now: datetime, lease: timedelta) -> WatchdogState:
    return replace(state, claimed_by=worker, claim_until=(now + lease).isoformat())


def mark_sent(state: WatchdogState) -> WatchdogState:
    bad_sent = state.bad_sent or state.due == BAD_MAIL
    return replace(state, due=None, bad_sent=bad_sent, claimed_by=None, claim_until=None)


def release(state: WatchdogState) -> WatchdogState:
    return replace(state, claimed_by=None, claim_until=None)


def bad_reasons(report: HealthReport) -> tuple[str, ...]:
    return tuple(f"{c.name}: {c.message}" for c in report.checks if c.status is HealthStatus.BAD)


def render_admin_mail(
    state: WatchdogState,
    report: HealthReport,
    *,
    to: tuple[str, ...],
    instance: str,
    now: datetime,
) -> Notification:
    """The admins' mail for the due transition of ``state`` (bad, or recovered)."""
    recovered = state.due == RECOVERED_MAIL
    name = f" ({instance})" if instance else ""
    if recovered:
        since = datetime.fromisoformat(state.since) if state.since else now
        subject = f"[failnotify] Failure notification recovered{name}"
        lead = (
            f"Failure notification works again (health: {report.status.value}) since "
            f"{since:%Y-%m-%d %H:%M:%S} UTC. It had stopped because:"
        )
    else:
        first = state.reasons[0] if state.reasons else "a health check is bad"
        subject = f"[failnotify] Failure notification is not working{name}: {first}"[:250]
        lead = (
            "Failure notification is not working: failures of the integrations may go unnotified "
            "until this is fixed. Bad checks:"
        )
    lines = [lead, ""]
    lines += [f"  - {reason}" for reason in state.reasons]
    lines += ["", "All checks now:", ""]
    lines += [f"  [{c.status.value:4}] {c.name}: {c.message}" for c in report.checks]
    age = report.last_pass_age
    lines += [
        "",
        f"Last completed pass: {age_text(age) + ' ago' if age is not None else 'unknown'}",
        "",
        "Run `failnotify health` for the same report. You get one mail when this starts and one "
        "when it ends.",
        "",
        "--",
        "Sent by the airflow-failnotify watchdog.",
    ]
    text = "\n".join(lines) + "\n"
    html = "<pre>" + _escape(text) + "</pre>\n"
    episode = f"watchdog:{state.since}:{state.due}"
    digest = hashlib.sha256(episode.encode()).hexdigest()[:32]
    return Notification(
        subject=subject.replace("\n", " ").replace("\r", " "),
        text=text,
        html=html,
        to=to,
        cc=(),
        message_id=f"<watchdog-{digest}@failnotify>",
        date=now,
        kinds=("watchdog",),
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def describe(state: WatchdogState) -> dict[str, Any]:
    return {"status": state.status, "since": state.since, "due": state.due, "bad_sent": state.bad_sent}
