"""The error-trace PDF attached to entity (processing) failure emails, built with reportlab.

Pure: imports nothing from Airflow, SQLAlchemy or Flask. One section per failure: a heading,
a small table (integration, direction, entity, try, time, error) and the full traceback as
wrapped preformatted text (``Preformatted`` with ``maxLineLength``: fast, and it splits
across pages). Built in memory.

The standard PDF fonts (Courier, Helvetica) draw Latin-1 only, so any other character, and
every control character, is replaced with ``?``; ANSI colour codes are dropped. A huge trace
is capped at its first and last lines (:data:`MAX_TRACE_CHARS`, :data:`MAX_TRACE_LINES`) with
a note saying how much was left out, and the whole PDF has a budget (:data:`MAX_TOTAL_TRACE_CHARS`,
:data:`MAX_SECTIONS`) so that a pass with thousands of failures still makes a mailable file.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import datetime, timezone

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Paragraph, Preformatted, SimpleDocTemplate

from airflow_failnotify.core.model import Direction, FailureEvent
from airflow_failnotify.core.signatures import ErrorGroup, error_type, group_by_signature
from airflow_failnotify.core.text import as_utc, entity_label, format_utc, try_label

__all__ = [
    "MAX_SECTIONS",
    "MAX_TOTAL_TRACE_CHARS",
    "MAX_TRACE_CHARS",
    "MAX_TRACE_LINES",
    "build_error_trace_pdf",
    "cap_trace",
    "latin1_safe",
]

MAX_TRACE_CHARS = 200_000  # per trace: first and last 100 KB
MAX_TRACE_LINES = 5_000  # per trace: first and last 2,500 lines (about 80 pages)
MAX_TOTAL_TRACE_CHARS = 10_000_000  # per PDF: later traces are left out once it is spent
MAX_SECTIONS = 500  # per PDF: failures past it are only counted
MAX_TABLE_ERROR_CHARS = 600  # the error in a section's table; the trace below has it all
MAX_FOLDED_CHARS = 200_000  # a folded section's list of entities (and of runs)

_PAGE_WIDTH, _PAGE_HEIGHT = A4
_MARGIN = 15 * mm
_FRAME_WIDTH = _PAGE_WIDTH - 2 * _MARGIN
_CODE_FONT = "Courier"
_CODE_SIZE = 7.0
# Courier is monospaced at 0.6 em; the frame has 6pt of padding on each side.
_MAX_LINE_CHARS = int((_FRAME_WIDTH - 12) / (_CODE_SIZE * 0.6))

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
_NOT_LATIN1_PRINTABLE = re.compile("[^\n\x20-\x7e\xa0-\xff]")

_BODY = ParagraphStyle("failnotify-body", fontName="Helvetica", fontSize=8.5, leading=10.5)
_TITLE = ParagraphStyle("failnotify-title", fontName="Helvetica-Bold", fontSize=15, leading=19, spaceAfter=4)
_NOTE = ParagraphStyle("failnotify-note", parent=_BODY, textColor=colors.HexColor("#8a4b00"), spaceAfter=3)
_CODE = ParagraphStyle(
    "failnotify-code",
    fontName=_CODE_FONT,
    fontSize=_CODE_SIZE,
    leading=_CODE_SIZE * 1.15,
    leftIndent=0,
    spaceBefore=3,
)
_CELL_FONT = "Helvetica"
_CELL_BOLD = "Helvetica-Bold"
_CELL_SIZE = 8.0
_CELL_LEADING = 9.6
_CELL_PAD = 3.0
_LABEL_WIDTH = 24 * mm
_VALUE_WIDTH = _FRAME_WIDTH - _LABEL_WIDTH - 2 * _CELL_PAD
_HEADING_SIZE = 11.0
_HEADING_HEIGHT = 18.0
_GRID = colors.HexColor("#bbbbbb")
_LABEL_FILL = colors.HexColor("#f0f0f0")


class _SectionHeader(Flowable):
    """A failure's heading and its small two-column table (label, value), drawn directly.

    reportlab's Table of the same cells costs about 0.5 ms a section (5x this), which is most of
    the PDF's time when a pass attaches many failures with short traces. Values are wrapped
    beforehand and capped (the error at MAX_TABLE_ERROR_CHARS), so the block is always small
    enough for one page and never splits.
    """

    def __init__(self, heading: str, rows: Sequence[tuple[str, Sequence[str]]]) -> None:
        super().__init__()
        self.heading = heading
        self.rows = rows
        self.height = _HEADING_HEIGHT + sum(len(v) * _CELL_LEADING + 2 * _CELL_PAD for _, v in rows)
        self.width = _FRAME_WIDTH
        self.spaceBefore = 8

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        canvas = self.canv
        top = self.height
        canvas.setFont(_CELL_BOLD, _HEADING_SIZE)
        canvas.drawString(0, top - _HEADING_SIZE, self.heading)
        y = top - _HEADING_HEIGHT
        table_top = y
        bottoms = []
        for _, values in self.rows:
            y -= len(values) * _CELL_LEADING + 2 * _CELL_PAD
            bottoms.append(y)
        canvas.setFillColor(_LABEL_FILL)
        canvas.rect(0, y, _LABEL_WIDTH, table_top - y, stroke=0, fill=1)
        canvas.setFillColor(colors.black)
        canvas.setStrokeColor(_GRID)
        canvas.setLineWidth(0.4)
        canvas.rect(0, y, self.width, table_top - y, stroke=1, fill=0)
        canvas.line(_LABEL_WIDTH, y, _LABEL_WIDTH, table_top)
        for bottom in bottoms[:-1]:
            canvas.line(0, bottom, self.width, bottom)
        # Two passes (labels, then values) so the font is set twice per section, not per row.
        text = canvas.beginText()
        text.setFont(_CELL_BOLD, _CELL_SIZE)
        row_top = table_top
        for (label, _), bottom in zip(self.rows, bottoms):
            text.setTextOrigin(_CELL_PAD, row_top - _CELL_PAD - _CELL_SIZE)
            text.textOut(label)
            row_top = bottom
        text.setFont(_CELL_FONT, _CELL_SIZE)
        row_top = table_top
        for (_, values), bottom in zip(self.rows, bottoms):
            baseline = row_top - _CELL_PAD - _CELL_SIZE
            for i, value in enumerate(values):
                text.setTextOrigin(_LABEL_WIDTH + _CELL_PAD, baseline - i * _CELL_LEADING)
                text.textOut(value)
            row_top = bottom
        canvas.drawText(text)


def latin1_safe(text: str) -> str:
    """Text the standard fonts can draw: LF line ends, tabs expanded, no ANSI codes, and every
    control or non-Latin-1 character replaced with ``?``."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\t" in text:
        text = text.expandtabs(4)
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    return _NOT_LATIN1_PRINTABLE.sub("?", text)


def _one_line(value: object, max_chars: int) -> str:
    text = " ".join(latin1_safe(str(value)).split())
    if len(text) > max_chars:
        text = text[: max_chars - 3] + "..."
    return text


def _wrap_cell(value: object, max_chars: int = 300) -> list[str]:
    text = _one_line(value, max_chars)
    if stringWidth(text, _CELL_FONT, _CELL_SIZE) <= _VALUE_WIDTH:
        return [text or "-"]
    return simpleSplit(text, _CELL_FONT, _CELL_SIZE, _VALUE_WIDTH) or ["-"]


def _escape(text: str) -> str:
    """For Paragraph markup (Preformatted takes text as it is)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _para_text(value: object, max_chars: int = 300) -> str:
    text = " ".join(latin1_safe(str(value)).split())
    if len(text) > max_chars:
        text = text[: max_chars - 3] + "..."
    return _escape(text)


def _head(text: str, max_chars: int, max_lines: int) -> str:
    part = text[:max_chars]
    cut_mid_line = len(part) < len(text) and text[len(part)] != "\n"
    lines = part.split("\n", max_lines)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
    elif cut_mid_line and len(lines) > 1:
        lines.pop()  # a partial last line; a single giant line is kept cut
    return "\n".join(lines)


def _tail(text: str, max_chars: int, max_lines: int) -> str:
    start = max(len(text) - max_chars, 0)
    part = text[start:]
    cut_mid_line = start > 0 and text[start - 1] != "\n"
    lines = part.rsplit("\n", max_lines)
    if len(lines) > max_lines:
        lines = lines[-max_lines:]
    elif cut_mid_line and len(lines) > 1:
        lines.pop(0)
    return "\n".join(lines)


def cap_trace(
    text: str, *, max_chars: int = MAX_TRACE_CHARS, max_lines: int = MAX_TRACE_LINES
) -> tuple[str, str]:
    """``text``, or its first and last lines when it is longer than ``max_chars`` characters or
    ``max_lines`` lines, with a marker where lines were left out; and a note ("" if whole)."""
    if len(text) <= max_chars and text.count("\n") < max_lines:
        return text, ""
    head = _head(text, max_chars // 2, max_lines // 2)
    tail = _tail(text, max_chars // 2, max_lines // 2)
    omitted_chars = len(text) - len(head) - len(tail)
    omitted_lines = text.count("\n", len(head), len(text) - len(tail)) - 1
    total_lines = text.count("\n") + 1
    note = (
        f"The trace was shortened: it has {total_lines:,} lines ({len(text):,} characters); "
        f"{max(omitted_lines, 0):,} lines ({omitted_chars:,} characters) in the middle are left out. "
        "The whole trace is in the Airflow task log."
    )
    marker = f"[... {max(omitted_lines, 0):,} lines ({omitted_chars:,} characters) left out ...]"
    return f"{head}\n\n{marker}\n\n{tail}", note


def _direction_of(event: FailureEvent, default: str) -> str:
    return str(getattr(event.direction, "value", event.direction)) if event.integration else default


def _rows(group: ErrorGroup, integration: str, direction: str) -> list[tuple[str, Sequence[str]]]:
    event = group.first
    # Each failure names its own integration (a storm digest's PDF holds several), else the PDF's.
    integrations = ", ".join(dict.fromkeys(e.integration or integration for e in group.events))
    directions = ", ".join(dict.fromkeys(_direction_of(e, direction) for e in group.events))
    rows: list[tuple[str, Sequence[str]]] = [
        ("Integration", _wrap_cell(integrations)),
        ("Direction", _wrap_cell(directions)),
    ]
    if group.count == 1:
        rows += [
            ("Entity", _wrap_cell(entity_label(event))),
            ("Run", _wrap_cell(event.run_id)),
            ("Try", _wrap_cell(try_label(event) or "-")),
            ("Time", _wrap_cell(format_utc(event.occurred_at))),
        ]
    else:  # identical errors, folded (core/signatures.py): the entities follow the table, the trace once
        rows += [
            ("Failures", _wrap_cell(f"{group.count} with this error; the entities and runs below")),
            ("Time", _wrap_cell(f"first {format_utc(group.first_at)}, last {format_utc(group.last_at)}")),
        ]
    rows.append(("Error", _wrap_cell(event.error_message.strip() or "-", MAX_TABLE_ERROR_CHARS)))
    return rows


def _section(
    group: ErrorGroup, index: int, total: int, *, integration: str, direction: str, budget: int
) -> tuple[list[Flowable], int]:
    """The flowables of one failure (or of identical ones), and the trace characters it used."""
    event = group.first
    rows = _rows(group, integration, direction)
    label = entity_label(event) if group.count == 1 else f"{group.count} x {error_type(event.error_message)}"
    heading = _one_line(f"{index} of {total}: {label}", 90)
    flowables: list[Flowable] = [_SectionHeader(heading, rows)]
    if group.count > 1:  # Paragraphs, which split across pages: every name, however many
        runs = ", ".join(dict.fromkeys(e.run_id for e in group.events))
        for name, names in (("Entities", ", ".join(group.labels())), ("Runs", runs)):
            flowables.append(Paragraph(_escape(latin1_safe(f"{name}: {names}"[:MAX_FOLDED_CHARS])), _BODY))
    trace = event.traceback or event.error_message
    used = 0
    if not trace.strip():
        flowables.append(Paragraph("No traceback was recorded for this failure.", _NOTE))
    elif budget <= 0:
        flowables.append(
            Paragraph(
                "Traceback left out: this PDF reached its size limit. It is in the Airflow task log.",
                _NOTE,
            )
        )
    else:
        capped, note = cap_trace(trace, max_chars=min(MAX_TRACE_CHARS, max(budget, 2_000)))
        if note:
            flowables.append(Paragraph(_escape(note), _NOTE))
        used = len(capped)
        text = latin1_safe(capped).strip("\n")
        flowables.append(Preformatted(text, _CODE, maxLineLength=_MAX_LINE_CHARS, newLineChars=""))
    return flowables, used


def _folded_note(count: int, events: Sequence[FailureEvent]) -> str:
    groups = len(group_by_signature(events[:MAX_SECTIONS]))
    if groups >= min(count, MAX_SECTIONS):
        return ""
    return f"; identical errors are folded into one section each ({groups} sections)"


def build_error_trace_pdf(
    events: Sequence[FailureEvent],
    *,
    integration: str,
    direction: Direction,
    generated_at: datetime | None = None,
    about: str | None = None,
) -> bytes:
    """The PDF (bytes) of ``events``' errors and traces, one section per failure. ``about`` replaces
    ``<integration> (<direction>)`` in its title and footer (a storm digest's several integrations)."""
    direction_value = direction.value if isinstance(direction, Direction) else str(direction)
    moment = as_utc(generated_at) if generated_at is not None else datetime.now(timezone.utc)
    buffer = io.BytesIO()
    about = about or f"{integration} ({direction_value})"
    title = f"Error trace: {about}"
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN,
        title=latin1_safe(" ".join(title.split()))[:300],
        author="airflow-failnotify",
        creator="airflow-failnotify",
    )
    footer = latin1_safe(" ".join(about.split()))[:120]

    def on_page(canvas: Canvas, document: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.setFillColor(colors.grey)
        canvas.drawString(_MARGIN, _MARGIN / 2, footer)
        canvas.drawRightString(_PAGE_WIDTH - _MARGIN, _MARGIN / 2, f"page {document.page}")
        canvas.restoreState()

    count = len(events)
    story: list[Flowable] = [
        Paragraph(_para_text(title), _TITLE),
        Paragraph(
            _escape(
                f"{count} failure{'s' if count != 1 else ''}; generated {format_utc(moment)}"
                + _folded_note(count, events)
            ),
            _BODY,
        ),
    ]
    if count > MAX_SECTIONS:
        story.append(
            Paragraph(
                f"Only the first {MAX_SECTIONS:,} failures are in this PDF; "
                f"{count - MAX_SECTIONS:,} more are in the Airflow UI.",
                _NOTE,
            )
        )
    budget = MAX_TOTAL_TRACE_CHARS
    groups = group_by_signature(events[:MAX_SECTIONS])
    for index, group in enumerate(groups, start=1):
        flowables, used = _section(
            group, index, len(groups), integration=integration, direction=direction_value, budget=budget
        )
        budget -= used
        story.extend(flowables)
    if not events:
        story.append(Paragraph("No failures.", _NOTE))
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buffer.getvalue()
