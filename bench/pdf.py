"""Item 4: the error-trace PDF against reportlab's own floor (median of ``repeat``).

The floor: a bare ``SimpleDocTemplate`` with one ``Preformatted`` holding the same trace text (all
traces joined, for the 50-failure case), Courier 7 pt on A4 and wrapped at the same width as ours.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from bench.common import median_time


def _trace(lines: int, seed: int = 0) -> str:
    out = ["Traceback (most recent call last):"]
    for i in range(lines - 2):
        if i % 2 == 0:
            out.append(f'  File "/opt/airflow/dags/sync/connector_{seed}.py", line {i + 10}, in step_{i}')
        else:
            out.append(f"    result = client.fetch(page={i}, cursor=cursor, retries=3)  # seed {seed}")
    out.append(f"ValueError: record {seed} could not be written: field 'summary' is too long")
    return "\n".join(out)


def _events(count: int, lines: int) -> list[Any]:
    from airflow_failnotify.core.model import Direction, EventKind, FailureEvent

    now = datetime.now(timezone.utc)
    return [
        FailureEvent(
            id=i + 1,
            kind=EventKind.TASK_FAILED,
            integration="sync_jira",
            direction=Direction.FORWARD,
            dag_id="sync_jira",
            run_id=f"scheduled__{i:04d}",
            occurred_at=now - timedelta(minutes=i),
            task_id="load_issue",
            map_index=i,
            try_number=1,
            max_tries=0,
            error_message=f"ValueError: record {i} could not be written",
            traceback=_trace(lines, i),
        )
        for i in range(count)
    ]


def _floor(text: str) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Preformatted, SimpleDocTemplate

    from airflow_failnotify.core import pdf

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm, bottomMargin=15 * mm
    )
    style = ParagraphStyle("code", fontName="Courier", fontSize=7, leading=8.4)
    doc.build([Preformatted(text, style, maxLineLength=pdf._MAX_LINE_CHARS, newLineChars="")])
    return buffer.getvalue()


def _case(events: Sequence[Any], repeat: int) -> dict[str, Any]:
    from airflow_failnotify.core.model import Direction
    from airflow_failnotify.core.pdf import build_error_trace_pdf

    def ours() -> bytes:
        return build_error_trace_pdf(events, integration="sync_jira", direction=Direction.FORWARD)

    text = "\n".join(e.traceback for e in events)
    ours(), _floor(text)  # warm up (fonts, imports)
    ours_s, ours_all = median_time(ours, repeat)
    floor_s, floor_all = median_time(lambda: _floor(text), repeat)
    return {
        "failures": len(events),
        "trace_lines": text.count("\n") + 1,
        "ours_seconds": ours_s,
        "floor_seconds": floor_s,
        "ratio": ours_s / floor_s,
        "ours_bytes": len(ours()),
        "floor_bytes": len(_floor(text)),
        "ours_all": ours_all,
        "floor_all": floor_all,
    }


def run(*, repeat: int = 5) -> dict[str, Any]:
    return {
        "trace_2000_lines": _case(_events(1, 2000), repeat),
        "failures_50": _case(_events(50, 40), repeat),
    }
