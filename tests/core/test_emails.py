"""Rendering of notification emails: subjects, bodies, links, escaping, MIME, Message-ID."""

from __future__ import annotations

import email
import email.policy
import io
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import pytest
from pypdf import PdfReader

from airflow_failnotify.core.emails import (
    ERROR_TRACE_FILENAME,
    MAX_ERROR_CHARS,
    message_id_for,
    render_notification,
    render_test_email,
)
from airflow_failnotify.core.mime import to_mime_message
from airflow_failnotify.core.model import (
    Direction,
    DirectionSettings,
    EventKind,
    FailureEvent,
    GlobalSettings,
    NotificationDraft,
    NotificationKind,
)
from airflow_failnotify.core.notification import RenderedEmail
from airflow_failnotify.core.text import humanize_minutes

T0 = datetime(2026, 11, 27, 21, 47, 57, tzinfo=timezone.utc)
RUN = "scheduled__2026-11-27T21:00:00+00:00"
BASE = "https://airflow.example.com"
DAG = "sync_jira_to_ado"
BACK = "sync_ado_to_jira"


def settings(**kw: object) -> DirectionSettings:
    values: dict[str, object] = {
        "smtp_conn_id": "smtp_default",
        "recipients": ("ops@example.com", "dev@example.com"),
        "cc": ("lead@example.com",),
        "subject_prefix": "[Sync]",
    }
    values.update(kw)
    return DirectionSettings(**values)  # type: ignore[arg-type]


def event(i: int = 1, **kw: object) -> FailureEvent:
    values: dict[str, object] = {
        "id": i,
        "kind": EventKind.TASK_FAILED,
        "integration": DAG,
        "direction": Direction.FORWARD,
        "dag_id": DAG,
        "run_id": RUN,
        "occurred_at": T0,
        "task_id": "push_issues",
        "try_number": 3,
        "max_tries": 3,
        "error_message": f"ValueError: issue {i} has no summary",
        "traceback": f"Traceback (most recent call last):\n  File \"sync.py\", line {i}\nValueError: {i}",
    }
    values.update(kw)
    return FailureEvent(**values)  # type: ignore[arg-type]


def draft(kind: NotificationKind, events: Sequence[FailureEvent] = (), **kw: object) -> NotificationDraft:
    values: dict[str, object] = {
        "kind": kind,
        "integration": DAG,
        "direction": Direction.FORWARD,
        "dedupe_key": f"{kind.value}|{DAG}|forward|{RUN}",
        "created_at": T0 + timedelta(minutes=1),
        "events": tuple(events),
    }
    values.update(kw)
    return NotificationDraft(**values)  # type: ignore[arg-type]


def render(d: NotificationDraft, s: DirectionSettings | None = None, **kw: object) -> RenderedEmail:
    args: dict[str, object] = {"dag_id": DAG, "base_url": BASE, "now": T0}
    args.update(kw)
    return render_notification(d, s or settings(), **args)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Subjects
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (draft(NotificationKind.NOT_ACCESSIBLE, [event()]),
         "[Sync] Not accessible: sync_jira_to_ado (forward)"),
        (draft(NotificationKind.GLOBAL_IMMEDIATE, [event(kind=EventKind.RUN_FAILED, task_id=None)]),
         "[Sync] Job failed: sync_jira_to_ado (forward)"),
        (draft(NotificationKind.GLOBAL_THRESHOLD, [event(i, kind=EventKind.RUN_FAILED) for i in range(3)]),
         "[Sync] 3 consecutive job failures: sync_jira_to_ado (forward)"),
        (draft(NotificationKind.INACTIVITY, inactivity_minutes=120, quiet_since=T0),
         "[Sync] No activity for 2 hours: sync_jira_to_ado (forward)"),
        (draft(NotificationKind.INACTIVITY, inactivity_minutes=90, quiet_since=T0),
         "[Sync] No activity for 90 minutes: sync_jira_to_ado (forward)"),
        (draft(NotificationKind.INACTIVITY, inactivity_minutes=1440, quiet_since=T0),
         "[Sync] No activity for 1 day: sync_jira_to_ado (forward)"),
        (draft(NotificationKind.PROCESSING, [event()]),
         "[Sync] 1 entity failure: sync_jira_to_ado (forward)"),
        (draft(NotificationKind.PROCESSING, [event(i) for i in range(3)]),
         "[Sync] 3 entity failures: sync_jira_to_ado (forward)"),
    ],
)
def test_subject_by_kind(d: NotificationDraft, expected: str) -> None:
    assert render(d, settings(include_error_trace=False)).subject == expected


def test_backward_subject_names_the_failed_dag_and_its_integration() -> None:
    backward = draft(NotificationKind.NOT_ACCESSIBLE, [event(dag_id=BACK, direction=Direction.BACKWARD)],
                     direction=Direction.BACKWARD)
    rendered = render(backward, dag_id=BACK)
    assert rendered.subject == f"[Sync] Not accessible: {BACK} (backward of {DAG})"
    assert f"backward DAG {BACK} of integration {DAG}" in rendered.text


def test_subject_without_prefix_has_no_leading_space() -> None:
    rendered = render(draft(NotificationKind.GLOBAL_IMMEDIATE), settings(subject_prefix=""))
    assert rendered.subject == "Job failed: sync_jira_to_ado (forward)"


@pytest.mark.parametrize("minutes,text", [(1, "1 minute"), (45, "45 minutes"), (60, "1 hour"),
                                          (2880, "2 days"), (10080, "1 week"), (1500, "25 hours")])
def test_humanize_minutes(minutes: int, text: str) -> None:
    assert humanize_minutes(minutes) == text


def test_header_injection_is_neutralised() -> None:
    evil_prefix = "[Sync]\r\nBcc: victim@example.com\r\n\r\n<b>body</b>"
    evil_dag = "dag\nX-Injected: yes\x00\u2028"
    d = draft(NotificationKind.GLOBAL_IMMEDIATE, integration=evil_dag)
    rendered = render(d, settings(subject_prefix=evil_prefix), dag_id=evil_dag)
    assert "\r" not in rendered.subject and "\n" not in rendered.subject
    assert "\x00" not in rendered.subject and "\u2028" not in rendered.subject
    msg = to_mime_message(rendered, sender="bot@example.com\r\nBcc: x@example.com")
    raw = msg.as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None
    assert parsed["X-Injected"] is None
    assert "Bcc: victim" in str(parsed["Subject"])  # kept as harmless text on the one line
    for name, value in parsed.items():
        assert "\n" not in str(value) and "\r" not in str(value), name


def test_subject_is_capped() -> None:
    d = draft(NotificationKind.GLOBAL_IMMEDIATE, integration="x" * 5000)
    rendered = render(d, settings(subject_prefix="p" * 5000))
    assert len(rendered.subject) <= 250
    assert rendered.subject.endswith("\u2026")


# ---------------------------------------------------------------------------------------------
# Bodies
# ---------------------------------------------------------------------------------------------


def test_processing_body_lists_each_failure() -> None:
    events = [
        event(1, entity="JIRA-101", kind=EventKind.ENTITY_FAILED, try_number=1, max_tries=2, is_final=False),
        event(2, map_index=4, error_message="KeyError: issue 2 has no summary"),  # another signature
    ]
    rendered = render(draft(NotificationKind.PROCESSING, events))
    for body in (rendered.text, rendered.html):
        assert "2 entities of the integration sync_jira_to_ado (forward) failed" in body
        assert "JIRA-101" in body
        assert "push_issues[4]" in body
        assert "ValueError: issue 1 has no summary" in body
        assert "KeyError: issue 2 has no summary" in body
        assert "retry 1 of 2" in body  # an entity report: retries made of the maximum
        assert "try 3 of 4" in body  # a task: Airflow's max_tries counts the retries
        assert "will be retried" in body
        assert "2026-11-27 21:47 UTC" in body
        assert ERROR_TRACE_FILENAME in body


def test_threshold_body_lists_runs() -> None:
    events = [event(i, kind=EventKind.RUN_FAILED, task_id=None, run_id=f"run_{i}") for i in range(3)]
    rendered = render(draft(NotificationKind.GLOBAL_THRESHOLD, events))
    assert "The last 3 jobs of the integration sync_jira_to_ado (forward) failed in a row." in rendered.text
    for i in range(3):
        assert f"run run_{i}" in rendered.text
        assert f"{BASE}/dags/{DAG}/runs/run_{i}" in rendered.html


def test_inactivity_body() -> None:
    d = draft(NotificationKind.INACTIVITY, inactivity_minutes=120, quiet_since=T0 - timedelta(hours=2))
    rendered = render(d)
    assert "no activity" in rendered.text and "for 2 hours" in rendered.text
    assert "2026-11-27 19:47 UTC" in rendered.text
    assert f"{BASE}/dags/{DAG}" in rendered.text
    assert rendered.attachments == ()


def test_times_are_utc_with_offset() -> None:
    cet = timezone(timedelta(hours=1))
    e = event(occurred_at=datetime(2026, 11, 27, 22, 47, 57, tzinfo=cet))
    rendered = render(draft(NotificationKind.NOT_ACCESSIBLE, [e]))
    assert "2026-11-27 21:47 UTC" in rendered.text
    assert "22:47:57" not in rendered.text


def test_long_error_is_truncated_with_note() -> None:
    e = event(error_message="E" * (MAX_ERROR_CHARS + 500))
    rendered = render(draft(NotificationKind.PROCESSING, [e]))
    assert "E" * MAX_ERROR_CHARS in rendered.text
    assert "E" * (MAX_ERROR_CHARS + 1) not in rendered.text
    assert "truncated: 500 more characters" in rendered.text
    assert "error-trace.pdf" in rendered.text
    assert "truncated: 500 more characters" in rendered.html


def test_html_escapes_everything_from_a_failure() -> None:
    evil = "<script>alert('x')</script>"
    e = event(
        dag_id=f"dag{evil}", task_id=f"task{evil}", entity=f"ent{evil}", error_message=f"boom {evil} & co"
    )
    d = draft(NotificationKind.PROCESSING, [e], integration=f"int{evil}")
    rendered = render(d, dag_id=f"dag{evil}")
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html
    assert "boom &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co" in rendered.html
    # In links the ids are URL-quoted.
    assert "/dags/dag%3Cscript%3Ealert%28%27x%27%29%3C%2Fscript%3E/runs/" in rendered.html
    # The text body shows the error as it is.
    assert f"boom {evil} & co" in rendered.text


def test_control_characters_are_cleaned_from_bodies() -> None:
    e = event(error_message="bad\x00byte \x1b[31mred\x1b[0m\r\nnext line")
    rendered = render(draft(NotificationKind.PROCESSING, [e]))
    assert "\x00" not in rendered.text and "\x1b" not in rendered.text and "\r" not in rendered.text
    assert "bad?byte red\nnext line" in rendered.text


def test_links_with_base_url() -> None:
    run_id = "manual__2026-11-27T21:47:57+00:00"
    events = [
        event(1, run_id=run_id, map_index=7),
        event(2, run_id=run_id, task_id="load", error_message="KeyError: 'summary'"),  # not folded
    ]
    rendered = render(draft(NotificationKind.PROCESSING, events), base_url=BASE + "/")
    quoted_run = "manual__2026-11-27T21%3A47%3A57%2B00%3A00"
    run_link = f"{BASE}/dags/{DAG}/runs/{quoted_run}"
    for body in (rendered.text, rendered.html):
        assert run_link in body
        assert f"{run_link}/tasks/push_issues/mapped/7" in body
        assert f"{run_link}/tasks/load" in body
        assert f"{run_link}/tasks/load/mapped" not in body
        assert "//dags" not in body
        assert "no links" not in body


def test_no_links_without_base_url() -> None:
    rendered = render(draft(NotificationKind.PROCESSING, [event()]), base_url=None)
    for body in (rendered.text, rendered.html):
        assert "/dags/" not in body
        assert "no links to Airflow" in body
    assert "href" not in rendered.html


def test_unsafe_base_url_gives_no_links() -> None:
    rendered = render(draft(NotificationKind.GLOBAL_IMMEDIATE, [event()]), base_url="javascript:alert(1)")
    assert "javascript" not in rendered.html
    assert "href" not in rendered.html


def test_body_lists_at_most_a_hundred_failures() -> None:
    # 130 different errors (the same one would be folded into one entry, see the folding tests).
    errors = [f"ValueError: field {chr(65 + i % 26)}{chr(65 + i // 26)} is empty" for i in range(130)]
    events = [event(i, entity=f"E-{i}", error_message=errors[i]) for i in range(130)]
    rendered = render(draft(NotificationKind.PROCESSING, events), settings(include_error_trace=False))
    assert "E-99" in rendered.text and "E-100\n" not in rendered.text
    assert "and 30 more failures" in rendered.text


def test_identical_errors_are_folded_into_one_entry_naming_every_entity() -> None:
    same = [
        event(i, entity=f"INV-{7000 + i}", occurred_at=T0 + timedelta(minutes=i),
              error_message=f"ValueError: ERP refused INV-{7000 + i}: currency 'XBT' (company {100 + i})")
        for i in range(1, 26)
    ]
    other = event(30, entity="INV-9", occurred_at=T0 + timedelta(minutes=30),
                  error_message="TimeoutError: ERP did not answer within 30 s")
    rendered = render(draft(NotificationKind.PROCESSING, [*same, other]), settings(include_error_trace=False))
    for body in (rendered.text, rendered.html):
        assert "25 entities of" not in body and "26 entities of the integration" in body
        assert "25 x ValueError" in body
        assert all(f"INV-{7000 + i}" in body for i in range(1, 26))  # every failure still named
        assert "first 2026-11-27 21:48 UTC, last 2026-11-27 22:12 UTC" in body
        assert body.count("ERP refused") == 1  # the error once, not 25 times
        assert "TimeoutError: ERP did not answer within 30 s" in body  # another signature: its own entry
    assert "1. 25 x ValueError" in rendered.text and "2. INV-9" in rendered.text


def test_run_failures_are_never_folded() -> None:
    runs = [event(i, kind=EventKind.RUN_FAILED, task_id=None, run_id=f"run_{i}") for i in range(1, 4)]
    rendered = render(draft(NotificationKind.GLOBAL_THRESHOLD, runs))
    assert " x " not in rendered.text.split("---", 1)[1].split("\n", 1)[0]
    assert all(f"run run_{i}" in rendered.text for i in range(1, 4))


# ---------------------------------------------------------------------------------------------
# MIME, attachment, Message-ID
# ---------------------------------------------------------------------------------------------


def parse(rendered: RenderedEmail) -> email.message.EmailMessage:
    raw = to_mime_message(rendered, sender="Failnotify <bot@example.com>").as_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def test_mime_structure_with_pdf() -> None:
    rendered = render(draft(NotificationKind.PROCESSING, [event(1), event(2, entity="JIRA-7")]))
    msg = parse(rendered)
    assert msg.get_content_type() == "multipart/mixed"
    types = [part.get_content_type() for part in msg.walk()]
    assert types == ["multipart/mixed", "multipart/alternative", "text/plain", "text/html", "application/pdf"]
    attachments = list(msg.iter_attachments())
    assert len(attachments) == 1
    pdf_part = attachments[0]
    assert pdf_part.get_filename() == ERROR_TRACE_FILENAME
    content = pdf_part.get_content()
    assert isinstance(content, bytes) and content.startswith(b"%PDF")
    pdf_text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    assert "JIRA-7" in pdf_text and "push_issues" in pdf_text
    assert msg["To"] == "ops@example.com, dev@example.com"
    assert msg["Cc"] == "lead@example.com"
    assert msg["From"] == "Failnotify <bot@example.com>"
    assert msg["Message-ID"] == rendered.message_id
    assert msg["Date"].datetime == T0
    assert msg["Auto-Submitted"] == "auto-generated"
    body = msg.get_body(("plain",))
    assert body is not None and "JIRA-7" in body.get_content()
    html = msg.get_body(("html",))
    assert html is not None and "JIRA-7" in html.get_content()


@pytest.mark.parametrize(
    ("kind", "include"),
    [
        (NotificationKind.PROCESSING, False),
        (NotificationKind.GLOBAL_IMMEDIATE, True),
        (NotificationKind.NOT_ACCESSIBLE, True),
        (NotificationKind.GLOBAL_THRESHOLD, True),
    ],
)
def test_no_pdf_unless_processing_with_error_trace(kind: NotificationKind, include: bool) -> None:
    rendered = render(draft(kind, [event()]), settings(include_error_trace=include))
    assert rendered.attachments == ()
    msg = parse(rendered)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert ERROR_TRACE_FILENAME not in rendered.text


def test_message_id_is_stable_per_dedupe_key() -> None:
    first = render(draft(NotificationKind.GLOBAL_IMMEDIATE, dedupe_key="a|b|forward|run1"))
    again = render(
        draft(NotificationKind.GLOBAL_IMMEDIATE, dedupe_key="a|b|forward|run1"), now=T0 + timedelta(days=1)
    )
    other = render(draft(NotificationKind.GLOBAL_IMMEDIATE, dedupe_key="a|b|forward|run2"))
    assert first.message_id == again.message_id == message_id_for("a|b|forward|run1")
    assert first.message_id != other.message_id
    assert first.message_id.startswith("<") and first.message_id.endswith("@failnotify>")
    assert len(first.message_id) == len("<@failnotify>") + 32


# ---------------------------------------------------------------------------------------------
# Test email
# ---------------------------------------------------------------------------------------------


def test_render_test_email() -> None:
    s = settings(global_=GlobalSettings(notify_immediately=False, failure_count_threshold=3,
                                        inactivity_minutes=90))
    rendered = render_test_email(DAG, Direction.BACKWARD, s, sender="bot@example.com",
                                 dag_id="sync_ado_to_jira", base_url=BASE, now=T0)
    assert rendered.subject == "[Sync] Test notification: sync_ado_to_jira (backward of sync_jira_to_ado)"
    assert rendered.to == ("ops@example.com", "dev@example.com")
    assert rendered.cc == ("lead@example.com",)
    assert rendered.attachments == ()
    for body in (rendered.text, rendered.html):
        assert "smtp_default" in body and "bot@example.com" in body
        assert "3 consecutive failed jobs" in body
        assert "90 minutes" in body
        assert f"{BASE}/dags/sync_ado_to_jira" in body
    other = render_test_email(DAG, Direction.FORWARD, s, sender="bot@example.com")
    assert other.message_id != rendered.message_id
    msg = parse(rendered)
    assert msg.get_content_type() == "multipart/alternative"


def test_render_test_email_escapes_html() -> None:
    rendered = render_test_email("<b>dag</b>", Direction.FORWARD, settings(subject_prefix=""),
                                 sender="bot@example.com")
    assert "<b>dag</b>" not in rendered.html and "&lt;b&gt;dag&lt;/b&gt;" in rendered.html
    assert rendered.subject == "Test notification: <b>dag</b> (forward)"


# ---------------------------------------------------------------------------------------------
# Job failures: the failed task instances of each run
# ---------------------------------------------------------------------------------------------


def run_failed(i: int, run_id: str = RUN) -> FailureEvent:
    return event(i, kind=EventKind.RUN_FAILED, task_id=None, run_id=run_id, try_number=None,
                 max_tries=None, error_message="task_failure", traceback="")


def test_job_failure_lists_the_failed_task_with_try_error_and_log_link() -> None:
    task = event(7, task_id="sync_entity", map_index=2, entity="CUST-1003", try_number=2, max_tries=1,
                 error_message="ValueError: ERP rejected CUST-1003\nsecond line")
    d = draft(NotificationKind.GLOBAL_IMMEDIATE, [run_failed(8)], failed_tasks=(task,))
    rendered = render(d)
    link = f"{BASE}/dags/{DAG}/runs/scheduled__2026-11-27T21%3A00%3A00%2B00%3A00/tasks/sync_entity/mapped/2"
    for body in (rendered.text, rendered.html):
        assert "sync_entity[CUST-1003]" in body
        assert "try 2 of 2" in body
        assert "ValueError: ERP rejected CUST-1003" in body
        assert "second line" not in body  # the exception's first line only
        assert link in body
    assert rendered.failed_tasks == ("sync_entity[CUST-1003]",)


def test_job_failure_without_a_failed_task_says_so() -> None:
    rendered = render(draft(NotificationKind.GLOBAL_IMMEDIATE, [run_failed(8)]))
    for body in (rendered.text, rendered.html):
        assert "no task failed (e.g. a run timeout or a manual mark)" in body


def test_threshold_mail_lists_each_runs_own_failed_task() -> None:
    runs = [run_failed(i, run_id=f"run_{i}") for i in (1, 2)]
    tasks = (event(10, run_id="run_1", task_id="extract", error_message="KeyError: 'id'"),
             event(11, run_id="run_2", task_id="load", error_message="TimeoutError: db"))
    rendered = render(draft(NotificationKind.GLOBAL_THRESHOLD, runs, failed_tasks=tasks))
    text = rendered.text
    first, second = text.index("run run_1"), text.index("run run_2")
    assert first < text.index("extract") < second < text.index("load")
    assert "KeyError: 'id'" in text and "TimeoutError: db" in text


def test_job_failure_lists_a_retried_task_once_at_its_latest_try() -> None:
    tasks = (event(1, try_number=1, max_tries=1, error_message="first"),
             event(2, try_number=2, max_tries=1, error_message="second"))
    rendered = render(draft(NotificationKind.GLOBAL_IMMEDIATE, [run_failed(3)], failed_tasks=tasks))
    assert "second" in rendered.text and "try 2 of 2" in rendered.text
    assert "first" not in rendered.text.split("Failed tasks:")[1]


# ---------------------------------------------------------------------------------------------
# Threads and list headers
# ---------------------------------------------------------------------------------------------


def test_a_later_mail_of_an_episode_refers_to_the_episodes_first_mail() -> None:
    root = draft(NotificationKind.NOT_ACCESSIBLE, [event()], dedupe_key="root", episode_key="root")
    later = draft(NotificationKind.GLOBAL_IMMEDIATE, [run_failed(2)], dedupe_key="later", episode_key="root")
    first, second = render(root), render(later)
    assert first.references == ()
    assert second.references == (first.message_id,)
    msg = to_mime_message(second, sender="bot@example.com")
    assert msg["In-Reply-To"] == first.message_id and msg["References"] == first.message_id
    assert "In-Reply-To" not in to_mime_message(first, sender="bot@example.com")


def test_every_notification_carries_list_id_kind_and_auto_submitted() -> None:
    msg = to_mime_message(render(draft(NotificationKind.PROCESSING, [event()])), sender="bot@example.com")
    assert msg["List-Id"] == f'"failnotify: {DAG}" <{DAG}.failnotify.airflow.example.com>'
    assert msg["X-Failnotify-Kind"] == "processing"
    assert msg["Auto-Submitted"] == "auto-generated"


def test_list_id_without_a_base_url_uses_localhost() -> None:
    rendered = render(draft(NotificationKind.PROCESSING, [event()]), base_url=None)
    assert rendered.list_id is not None and rendered.list_id.endswith(f"<{DAG}.failnotify.localhost>")


def test_test_mails_carry_the_same_headers_and_their_own_message_id_and_date() -> None:
    rendered = render_test_email(DAG, Direction.FORWARD, settings(), sender="bot@example.com",
                                 base_url=BASE, now=T0)
    msg = to_mime_message(rendered, sender="bot@example.com")
    assert msg["X-Failnotify-Kind"] == "test" and msg["Auto-Submitted"] == "auto-generated"
    assert msg["List-Id"].endswith(f"<{DAG}.failnotify.airflow.example.com>")
    assert msg["Message-ID"].startswith("<test-") and msg["Date"] == "Fri, 27 Nov 2026 21:47:57 +0000"


def test_times_print_to_the_minute_in_utc() -> None:
    assert "When:        2026-11-27 21:47 UTC" in render(draft(NotificationKind.PROCESSING, [event()])).text
