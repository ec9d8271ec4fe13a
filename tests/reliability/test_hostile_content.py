"""Hostile content in what failures carry (DAG ids are constrained by Airflow; error messages, traces,
entity ids reported with record_entity_failure and manual run ids are not): HTML/script, a 10 MB trace,
non-Latin-1 and control characters. Recorded through the store, delivered by a real pass to the
DevSmtpServer, then checked: HTML escaped, headers one line each, the PDF readable and size-capped.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from pypdf import PdfReader

from airflow_failnotify.core.model import EventKind
from airflow_failnotify.service.passes import run_notification_pass
from airflow_failnotify.store import EventRecord, Store
from devtools.smtp_server import DevSmtpServer
from tests.fixtures.soak import Summary
from tests.reliability.helpers import (
    MAIL_HEADERS,
    NOW,
    delivery,
    entity_failed,
    header_lines,
    header_names,
    no_status,
    register,
    task_failed,
)

SCRIPT = "<script>alert('pwned')</script>"
IMG = '<img src=x onerror="alert(1)">'
NON_LATIN = "同步失败 — ошибка — κακό — 🚨"
CONTROLS = "bell\x07 backspace\x08 escape\x1b[31mRED\x1b[0m vt\x0b ff\x0c del\x7f c1\x85 rtl\u202eevil"
NUL = "nul\x00byte"
INJECT = "\r\nBcc: evil@attacker.test\r\nX-Injected: yes"
HUGE_TRACE = "".join(
    f'  File "/opt/airflow/dags/sync.py", line {i}, in step_{i}\n    do_{i}()  # {NON_LATIN} {SCRIPT}\n'
    for i in range(100_000)
)  # about 10 MB
MAX_PDF_BYTES = 3 * 1024 * 1024
MAX_MAIL_BYTES = 5 * 1024 * 1024


def hostile_events(with_nul: bool) -> list[EventRecord]:
    nul = NUL if with_nul else ""
    run_id = f"manual__{SCRIPT}{INJECT}"
    return [
        task_failed(
            run_id,
            "load_issue",
            map_index=2,
            error=f"ValueError: {SCRIPT} {IMG} & {NON_LATIN} {CONTROLS}{nul}{INJECT}",
            traceback=f"Traceback (most recent call last):\n{HUGE_TRACE}ValueError: {SCRIPT}{nul}\n",
        ),
        entity_failed(
            run_id,
            f"<b>ISSUE-1</b>{INJECT} {NON_LATIN}",
            error="E" * 1_000_000 + SCRIPT,  # a 1 MB error message
            traceback=f"{CONTROLS}\n{IMG}\n",
        ),
        EventRecord(
            kind=EventKind.RUN_FAILED,
            dag_id="sync_jira",
            run_id=run_id,
            occurred_at=NOW,
            source="scheduler",
            error_message=f"{SCRIPT}{INJECT}{NON_LATIN}",
        ),
    ]


@pytest.mark.parametrize("with_nul", [False, True], ids=["no-NUL", "with-NUL"])
def test_hostile_failure_content_is_rendered_safely(
    with_nul: bool,
    store: Store,
    smtp_server: DevSmtpServer,
    smtp_connection: Callable[..., str],
    summary: Summary,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW__FAILNOTIFY__BASE_URL", "https://airflow.example.com")
    backend = "postgres" if store.is_postgres else "sqlite"
    conn_id = smtp_connection("mail_basic", server=smtp_server, auth_type="basic")
    register(store, conn_id, subject_prefix=f"[Sync] {NON_LATIN}")
    case = f"hostile content (HTML/script, 10 MB trace, non-Latin-1, controls{', NUL' if with_nul else ''})"
    try:
        recorded = store.record_events(hostile_events(with_nul))
    except Exception as err:
        summary.record(
            f"{case} [{backend}]",
            "recorded, delivered, rendered safely",
            f"record_events raised {type(err).__name__}: {str(err)[:60]}",
            ok=False,
        )
        raise
    assert recorded == 3
    result = run_notification_pass(trigger="cli", store=store, dag_status=no_status)
    assert (result.due, result.sent, result.pending) == (2, 2, 0), result
    counts = delivery(store, smtp_server)
    assert counts.exactly_once

    problems: list[str] = []
    pdf_sizes: list[int] = []
    for received in smtp_server.messages:
        raw = received.raw
        if len(raw) > MAX_MAIL_BYTES:
            problems.append(f"mail of {len(raw)} bytes")
        if len(header_lines(raw, "Subject")) != 1:
            problems.append("not exactly one Subject line")
        unexpected = {n.lower() for n in header_names(raw)} - MAIL_HEADERS
        if unexpected:
            problems.append(f"unexpected headers {sorted(unexpected)}")
        if received.rcpt_tos != ["ops@example.com"]:
            problems.append(f"recipients {received.rcpt_tos}")
        subject = received.subject
        if any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or c == "\u202e" for c in subject):
            problems.append(f"control character in the subject {subject!r}")
        if NON_LATIN not in subject:
            problems.append("the non-Latin-1 subject prefix was mangled")
        html = received.message.get_body(("html",)).get_content()
        text = received.message.get_body(("plain",)).get_content()
        for needle in ("<script", "<img", "<b>ISSUE"):
            if needle in html:
                problems.append(f"unescaped {needle!r} in the HTML part")
        if "&lt;script&gt;" not in html:
            problems.append("the script text is not shown escaped in the HTML part")
        for body, name in ((html, "html"), (text, "text")):
            for bad in ("\x00", "\x07", "\x08", "\x1b", "\x0b", "\x7f", "\x85", "\u202e"):
                if bad in body:
                    problems.append(f"control {bad!r} in the {name} part")
        if len(text) > 200_000 or len(html) > 400_000:
            problems.append(f"body not capped (text {len(text)}, html {len(html)})")
        for part in received.message.iter_attachments():
            content = part.get_content()
            pdf_sizes.append(len(content))
            if len(content) > MAX_PDF_BYTES:
                problems.append(f"PDF of {len(content)} bytes")
            reader = PdfReader(io.BytesIO(content))
            pdf_text = "".join(page.extract_text() for page in reader.pages)
            if "The trace was shortened" not in pdf_text.replace("\n", " "):
                problems.append("the PDF does not say the huge trace was shortened")
            if "ISSUE-1" not in pdf_text or "load_issue" not in pdf_text:
                problems.append("a failure is missing from the PDF")
    summary.record(
        f"{case} [{backend}]",
        "recorded; 2 mails delivered once; HTML escaped; 1-line headers; PDF readable, capped",
        (
            f"{counts.received} mails, PDF {max(pdf_sizes, default=0) // 1024} KB, "
            f"largest mail {max(len(m.raw) for m in smtp_server.messages) // 1024} KB; "
            f"{'; '.join(problems) or 'no problem found'}"
        ),
        ok=not problems,
    )
    assert not problems, problems
    assert len(pdf_sizes) == 1
