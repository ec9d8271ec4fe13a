"""The error-trace PDF, read back with pypdf."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

from pypdf import PdfReader

from airflow_failnotify.core.model import Direction, EventKind, FailureEvent
from airflow_failnotify.core.pdf import MAX_TRACE_CHARS, build_error_trace_pdf, cap_trace, latin1_safe

T0 = datetime(2026, 11, 27, 21, 47, 57, tzinfo=timezone.utc)
DAG = "sync_jira_to_ado"


def event(i: int = 1, traceback: str = "", **kw: object) -> FailureEvent:
    values: dict[str, object] = {
        "id": i,
        "kind": EventKind.ENTITY_FAILED,
        "integration": DAG,
        "direction": Direction.FORWARD,
        "dag_id": DAG,
        "run_id": "scheduled__2026-11-27T21:00:00+00:00",
        "occurred_at": T0,
        "task_id": "push_issues",
        "entity": f"JIRA-{i}",
        "try_number": 2,
        "max_tries": 2,
        "error_message": f"ValueError: issue JIRA-{i} has no summary",
        "traceback": traceback
        or f"Traceback (most recent call last):\n  File \"sync.py\", line {i}\nValueError",
    }
    values.update(kw)
    return FailureEvent(**values)  # type: ignore[arg-type]


def long_trace(lines: int = 2000) -> str:
    out = ["Traceback (most recent call last):"]
    out += [f'  File "/opt/airflow/dags/sync/module.py", line {n}, in step_{n:05d}' for n in range(lines - 2)]
    out.append("RuntimeError: the end")
    return "\n".join(out)


def read(pdf: bytes) -> tuple[int, str]:
    assert pdf.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(pdf))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def build(events: list[FailureEvent], direction: Direction = Direction.FORWARD) -> bytes:
    return build_error_trace_pdf(events, integration=DAG, direction=direction)


def test_one_section_per_failure() -> None:
    third = event(3, entity=None, error_message="KeyError: 'summary'")  # each its own error: no folding
    pages, text = read(build([event(1), event(2, entity=None, map_index=3), third], Direction.BACKWARD))
    assert "Error trace: sync_jira_to_ado (backward)" in text
    assert "3 failures" in text
    for label in ("1 of 3: JIRA-1", "2 of 3: push_issues[3]", "3 of 3: push_issues"):
        assert label in text
    for field in ("Integration", "Direction", "Entity", "Try", "Time", "Error"):
        assert field in text
    assert "ValueError: issue JIRA-2 has no summary" in text
    assert "retry 2 of 2" in text
    assert "2026-11-27 21:47 UTC" in text
    assert 'File "sync.py", line 3' in text
    assert pages == 1


def test_long_trace_paginates_and_keeps_every_line() -> None:
    pages, text = read(build([event(1, traceback=long_trace(2000))]))
    assert pages > 1
    assert "step_00000" in text and "step_01997" in text and "RuntimeError: the end" in text
    assert "shortened" not in text


def test_markup_characters_are_drawn_as_text() -> None:
    e = event(1, entity="<b>ent</b> & co", error_message="bad <tag> & &amp;",
              traceback="if a < b and c > d & e:\n    raise X('<para>')")
    _pages, text = read(build_error_trace_pdf([e], integration="int<&>", direction=Direction.FORWARD))
    assert "<b>ent</b> & co" in text
    assert "bad <tag> & &amp;" in text
    assert "if a < b and c > d & e:" in text and "raise X('<para>')" in text
    assert "int<&>" in text


def test_non_latin1_and_control_characters_do_not_crash() -> None:
    nasty = "数据 ✓ \x00 \x1b[31mred\x1b[0m \u202e é\tend\r\nnext"
    e = event(1, entity="实体-✓", error_message=nasty, traceback=nasty)
    pages, text = read(build([e]))
    assert pages == 1
    assert "red" in text and "é" in text and "next" in text
    assert "\x1b" not in text and "[31m" not in text and "数" not in text


def test_latin1_safe() -> None:
    assert latin1_safe("a\tb\r\nc\x00d数€é\x1b[1mB") == "a   b\nc?d??éB"


def test_huge_trace_is_capped_with_a_note() -> None:
    line = "x" * 99 + "\n"
    trace = "HEAD-MARK\n" + line * 105_000 + "TAIL-MARK"  # about 10.5 MB
    pdf = build([event(1, traceback=trace)])
    pages, text = read(pdf)
    assert len(pdf) < 500_000
    assert pages < 60
    assert "HEAD-MARK" in text and "TAIL-MARK" in text
    assert "The trace was shortened" in text
    assert "lines (" in text and "characters) left out" in text


def test_cap_trace() -> None:
    short = long_trace(100)
    assert cap_trace(short) == (short, "")
    many_lines = "\n".join(f"l{n}" for n in range(20_000))
    capped, note = cap_trace(many_lines, max_lines=1000)
    assert capped.startswith("l0\n") and capped.endswith("\nl19999")
    assert "l499\n" in capped and "\nl500\n" not in capped and "\nl19500" in capped
    assert "19,000 lines" in note and "19,000 lines" in capped
    one_line = "y" * (3 * MAX_TRACE_CHARS)
    capped, note = cap_trace(one_line)
    assert len(capped) < MAX_TRACE_CHARS + 200 and note


def test_many_failures_with_long_traces() -> None:
    words = [f"{chr(65 + i % 26)}{chr(65 + i // 26)}" for i in range(50)]  # 50 different errors
    events = [event(i, traceback=long_trace(200), error_message=f"ValueError: {words[i]}") for i in range(50)]
    pages, text = read(build(events))
    assert "50 failures" in text and "50 of 50: JIRA-49" in text
    assert pages > 50


def test_identical_errors_are_one_section_naming_every_entity_with_the_trace_once() -> None:
    events = [event(i, traceback=long_trace(200), occurred_at=T0 + timedelta(minutes=i)) for i in range(50)]
    events.append(event(99, error_message="TimeoutError: ERP did not answer", entity="JIRA-X"))
    pages, text = read(build(events))
    assert "51 failures" in text and "folded into one section each (2 sections)" in text
    assert "1 of 2: 50 x ValueError" in text and "2 of 2: JIRA-X" in text
    flat = " ".join(text.split())
    assert all(f"JIRA-{i}," in flat or f"JIRA-{i} " in flat for i in range(50))  # every entity named
    assert "first 2026-11-27 21:47 UTC, last 2026-11-27 22:36 UTC" in flat
    assert text.count("RuntimeError: the end") == 1  # one trace for the 50
    assert pages < 10


def test_failure_without_traceback_or_error() -> None:
    _pages, text = read(build([event(1, traceback=" ", error_message="")]))
    assert "No traceback was recorded" in text


def test_no_events() -> None:
    pages, text = read(build([]))
    assert pages == 1 and "No failures" in text
