"""The recipient-level storm cap (noise control): its windows, when it holds a mail, its digest."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from pypdf import PdfReader

from airflow_failnotify.core.digest import Part, storm_digest
from airflow_failnotify.core.model import Direction, EventKind, NotificationKind
from airflow_failnotify.core.notification import Attachment
from airflow_failnotify.core.outbox import Mail
from airflow_failnotify.core.pdf import build_error_trace_pdf
from airflow_failnotify.core.storm import (
    StormCap,
    digest_mails,
    recipient_key,
    recipients_label,
    storm_hold,
)
from tests.core.test_emails import BASE, DAG, draft, event, render, settings

T = datetime(2026, 11, 27, 10, 17, tzinfo=timezone.utc)
CAP = StormCap(mails=5, window_minutes=60)


# --- windows and the rule ---------------------------------------------------------------------


def test_windows_are_fixed_and_aligned_to_the_epoch_by_their_length() -> None:
    assert CAP.window_of(T) == (T.replace(minute=0), T.replace(hour=11, minute=0))
    ninety = StormCap(mails=5, window_minutes=90)
    start, end = ninety.window_of(T)  # 10:17 is in 09:00-10:30 (90-minute steps from midnight)
    assert (start, end) == (T.replace(hour=9, minute=0), T.replace(hour=10, minute=30))
    naive = T.replace(tzinfo=None)
    assert CAP.window_of(naive) == CAP.window_of(T)  # naive is UTC, as the store keeps it


def test_below_the_cap_a_mail_goes_now() -> None:
    assert CAP.hold_until(0, T) is None
    assert CAP.hold_until(4, T) is None


def test_at_the_cap_a_mail_is_held_until_the_window_ends() -> None:
    assert CAP.hold_until(5, T) == T.replace(hour=11, minute=0)
    assert CAP.hold_until(40, T) == T.replace(hour=11, minute=0)


def test_the_next_window_counts_afresh() -> None:
    last_minute = T.replace(minute=59, second=59)
    assert CAP.hold_until(5, last_minute) == T.replace(hour=11, minute=0)
    rolled = T.replace(hour=11, minute=0)
    start, _ = CAP.window_of(rolled)
    assert start == rolled  # the count is taken since 11:00: the mails of 10:xx no longer count
    assert CAP.hold_until(0, rolled) is None


def test_off_never_holds() -> None:
    off = StormCap()
    assert not off.on and off.hold_until(10_000, T) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mails": -1}, r"mails must be 0 \(off\)"),
        ({"mails": 5, "window_minutes": 0}, "from 1 to 1440 minutes"),
        ({"mails": 5, "window_minutes": 1441}, "from 1 to 1440 minutes"),
    ],
)
def test_a_cap_out_of_bounds_is_refused(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StormCap(**kwargs)


def test_the_recipient_set_is_to_and_cc_lower_cased_without_duplicates_sorted() -> None:
    one = settings(
        recipients=("Ops@Example.com", "dev@example.com"), cc=("lead@example.com", "ops@example.com")
    )
    other = settings(recipients=("lead@example.com",), cc=("DEV@example.com", "ops@example.com"))
    assert recipient_key(one) == "dev@example.com,lead@example.com,ops@example.com"
    assert recipient_key(one) == recipient_key(other)
    assert recipient_key(settings(recipients=("ops@example.com",), cc=())) == "ops@example.com"
    assert recipients_label(["a@x", "b@x", "c@x", "d@x", "e@x"]) == "a@x, b@x, c@x and 2 more"


# --- the hold decision against an outbox -------------------------------------------------------


class _SentCounts:
    """An outbox that answers how many mails were sent (the store counts distinct Message-IDs)."""

    def __init__(self, sent: int) -> None:
        self.sent = sent
        self.asked: list[tuple[list[tuple[str, str]], datetime]] = []

    def mails_sent_since(self, senders: Sequence[tuple[str, str]], since: datetime) -> int:
        self.asked.append((list(senders), since))
        return self.sent


def _row(row_id: int, integration: str = DAG, **kw: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "id": row_id,
        "integration": integration,
        "direction": Direction.FORWARD,
        "settings": settings(),
        "claim_token": "w#1",
        "smtp_conn_id": "smtp_default",
    }
    values.update(kw)
    return SimpleNamespace(**values)


def test_the_cap_counts_every_integration_that_mails_the_recipient_set() -> None:
    outbox = _SentCounts(5)
    mail = Mail(rows=(_row(1),), claim_token="w#1")
    peers = {recipient_key(settings()): [("sync_other", "backward"), ("sync_b", "forward")]}
    held = storm_hold(CAP, outbox, lambda key: peers.get(key, []), mail, T)  # type: ignore[arg-type]
    assert held is not None
    until, reason = held
    assert until == T.replace(hour=11, minute=0)
    senders = [("sync_b", "forward"), ("sync_jira_to_ado", "forward"), ("sync_other", "backward")]
    assert outbox.asked == [(senders, T.replace(minute=0))]
    assert reason.startswith("held by the storm cap: 5 mail(s) to dev@example.com, lead@example.com,")
    assert "at most 5 per 60 min" in reason and "after 2026-11-27 11:00 UTC" in reason


def test_below_the_cap_the_mail_is_not_held_and_off_asks_nothing() -> None:
    mail = Mail(rows=(_row(1),), claim_token="w#1")
    assert storm_hold(CAP, _SentCounts(4), None, mail, T) is None  # type: ignore[arg-type]
    silent = _SentCounts(100)
    assert storm_hold(StormCap(), silent, None, mail, T) is None  # type: ignore[arg-type]
    assert silent.asked == []


def test_held_rows_make_one_digest_per_recipient_set_oldest_first() -> None:
    team_b = settings(recipients=("b-team@example.com",), cc=())
    rows = [_row(7), _row(3, "sync_b", settings=team_b), _row(2), _row(5, "sync_c")]
    mails = digest_mails(rows)
    assert [m.ids for m in mails] == [[2, 5, 7], [3]]
    assert all(m.storm_digest for m in mails)


# --- the digest --------------------------------------------------------------------------------


def _held_parts(count: int) -> list[Part]:
    """``count`` held notifications of several kinds and integrations, oldest first."""
    parts = []
    for i in range(count):
        integration = f"sync_{i % 3}"
        if i % 2:
            kind, events = NotificationKind.PROCESSING, [event(i, integration=integration)]
        else:
            kind = NotificationKind.GLOBAL_IMMEDIATE
            events = [event(i, kind=EventKind.RUN_FAILED, task_id=None)]
        d = draft(
            kind,
            events,
            integration=integration,
            dedupe_key=f"{kind.value}|{integration}|forward|run{i}",
            created_at=T + timedelta(minutes=i),
        )
        parts.append(Part(d, render(d, dag_id=integration)))
    return parts


def test_the_digest_subject_counts_the_notifications_and_names_the_recipients_and_since() -> None:
    parts = _held_parts(25)
    mail = storm_digest(parts, cap=CAP, prefix="[Sync]", pdf=None, now=T)
    assert mail.subject == (
        "[Sync] Storm digest: 25 notifications for dev@example.com, lead@example.com, ops@example.com "
        "since 2026-11-27 10:17 UTC"
    )
    assert (mail.to, mail.cc) == (parts[0].notification.to, parts[0].notification.cc)


def test_the_digest_lists_every_held_notification_with_its_kind_and_integration() -> None:
    parts = _held_parts(25)
    mail = storm_digest(parts, cap=CAP, pdf=None, now=T)
    listing = mail.text.split("\n\n")[2].splitlines()
    assert len(listing) == 25
    for index, (line, part) in enumerate(zip(listing, parts, strict=True), start=1):
        assert line.strip().startswith(f"{index}. {part.notification.subject}")
    assert "Job failed: sync_0 (forward)" in listing[0] and "1 entity failure: sync_1 (forward)" in listing[1]
    assert all(p.notification.text in mail.text for p in parts)  # each one's whole text, too
    assert mail.html.count("<li>") == 25 and mail.html.count("<section data-part=") == 25
    assert set(mail.kinds) == {"global_immediate", "processing"}
    assert "5 mails in a 60-minute window (the storm cap)" in mail.text


def test_the_digest_has_its_own_stable_message_id_and_no_thread() -> None:
    parts = _held_parts(4)
    mail = storm_digest(parts, cap=CAP, pdf=None, now=T)
    again = storm_digest(list(reversed(parts)), cap=CAP, pdf=None, now=T + timedelta(hours=1))
    assert mail.message_id == again.message_id  # the same rows: the same mail
    assert mail.message_id not in {p.notification.message_id for p in parts}
    assert storm_digest(parts[:3], cap=CAP, pdf=None).message_id != mail.message_id
    assert mail.references == () and mail.episode_key is None
    assert mail.list_id is None  # several integrations; one integration keeps its List-Id
    assert storm_digest(parts[:1], cap=CAP, pdf=None).list_id == parts[0].notification.list_id


def test_the_digest_escapes_what_came_from_a_failure() -> None:
    d = draft(
        NotificationKind.GLOBAL_IMMEDIATE,
        [event(1, kind=EventKind.RUN_FAILED, task_id=None)],
        integration="<b>evil</b>",
        dedupe_key="global_immediate|evil|forward|r",
    )
    mail = storm_digest([Part(d, render(d, dag_id="<b>evil</b>", base_url=BASE))], cap=CAP, pdf=None)
    head = mail.html.split("<section", 1)[0]
    assert "<b>evil</b>" not in head and "&lt;b&gt;evil&lt;/b&gt;" in head


def test_the_digest_carries_one_pdf_naming_each_failure_s_integration() -> None:
    events = [event(1, integration="sync_a"), event(2, integration="sync_b", direction=Direction.BACKWARD)]
    pdf = build_error_trace_pdf(
        events, integration="sync_a", direction=Direction.FORWARD, about="storm digest"
    )
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Error trace: storm digest" in text
    assert "sync_a" in text and "sync_b" in text and "backward" in text
    attachment = Attachment("error-trace.pdf", pdf, "application/pdf")
    mail = storm_digest(_held_parts(2), cap=CAP, pdf=attachment)
    assert mail.attachments == (attachment,)
