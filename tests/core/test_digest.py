"""One mail for several notifications of one integration-direction (noise control)."""

from __future__ import annotations

from airflow_failnotify.core.digest import Part, combine, kinds_phrase
from airflow_failnotify.core.model import EventKind, NotificationKind
from airflow_failnotify.core.notification import Attachment
from tests.core.test_emails import DAG, draft, event, render, settings


def _parts() -> list[Part]:
    job = draft(
        NotificationKind.GLOBAL_IMMEDIATE,
        [event(10, kind=EventKind.RUN_FAILED, task_id=None)],
        episode_key=f"global_immediate|{DAG}|forward|run",
        dedupe_key=f"global_immediate|{DAG}|forward|run",
    )
    entities = draft(
        NotificationKind.PROCESSING,
        [event(1), event(2), event(3)],
        episode_key=f"global_immediate|{DAG}|forward|run",
    )
    return [Part(d, render(d)) for d in (job, entities)]


def test_the_subject_names_every_kind_inside_with_its_count() -> None:
    parts = _parts()
    assert kinds_phrase([p.draft for p in parts]) == "Job failed + 3 entity failures"
    mail = combine(parts, settings(), dag_id=DAG, pdf=None)
    assert mail.subject == f"[Sync] Job failed + 3 entity failures: {DAG} (forward)"


def test_the_body_holds_each_notification_and_the_kinds_header_lists_them() -> None:
    parts = _parts()
    mail = combine(parts, settings(), dag_id=DAG, pdf=None)
    assert mail.text.startswith("This mail covers 2 notifications: Job failed, 3 entity failures.")
    assert all(p.notification.text in mail.text for p in parts)
    assert mail.html.count("<section data-part=") == 2
    assert mail.kinds == ("global_immediate", "processing")


def test_the_mail_threads_as_the_episode_s_first_notification_and_has_one_pdf() -> None:
    parts = _parts()
    pdf = Attachment("error-trace.pdf", b"%PDF-1.4 combined", "application/pdf")
    mail = combine(parts, settings(), dag_id=DAG, pdf=pdf)
    assert mail.message_id == parts[0].notification.message_id  # the episode's root
    assert mail.references == ()  # it is the root: it answers nothing
    assert mail.attachments == (pdf,)


def test_one_notification_alone_is_sent_as_rendered() -> None:
    (part,) = _parts()[:1]
    assert combine([part], settings(), dag_id=DAG, pdf=None) is part.notification
