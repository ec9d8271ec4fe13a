"""One mail for several notifications of one integration-direction (noise control, issue 18).

The rules still make one notification per kind and failure; delivery may send the ones due
together for one integration-direction as one mail. Its subject names every kind inside
(``[Sync] Job failed + 3 entity failures: sync_a (forward)``), its body holds each notification's
text in order, its X-Failnotify-Kind header lists the kinds, and it has one error-trace PDF for all
the entity failures it reports.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from airflow_failnotify.core.model import DirectionSettings, NotificationDraft, NotificationKind
from airflow_failnotify.core.notification import Attachment, Notification
from airflow_failnotify.core.subjects import subject, what_happened
from airflow_failnotify.core.text import plural

_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.S | re.I)
_KIND_ORDER = {kind: index for index, kind in enumerate(NotificationKind)}


@dataclass(frozen=True)
class Part:
    """One notification of the mail: what the rules decided, and its rendering alone."""

    draft: NotificationDraft
    notification: Notification


def kinds_phrase(drafts: Sequence[NotificationDraft]) -> str:
    """``Job failed + 3 entity failures``: each kind once, in the rules' order, with its count."""
    by_kind: dict[NotificationKind, list[NotificationDraft]] = {}
    for draft in sorted(drafts, key=lambda d: _KIND_ORDER[d.kind]):
        by_kind.setdefault(draft.kind, []).append(draft)
    phrases = []
    for kind, of_kind in by_kind.items():
        if kind is NotificationKind.PROCESSING:
            phrases.append(plural(sum(len(d.events) for d in of_kind), "entity failure"))
        elif kind is NotificationKind.GLOBAL_IMMEDIATE and len(of_kind) > 1:
            phrases.append(f"{len(of_kind)} job failures")
        else:
            phrases.extend(dict.fromkeys(what_happened(d) for d in of_kind))
    return " + ".join(phrases)


def combine(
    parts: Sequence[Part],
    settings: DirectionSettings,
    *,
    dag_id: str,
    pdf: Attachment | None,
) -> Notification:
    """The one mail for ``parts`` (oldest first). ``pdf`` is the error trace of all their entity
    failures, if any. Its Message-ID is that of the episode's first notification when the mail
    carries it (so later mails thread on it), else the oldest part's."""
    if len(parts) == 1 and pdf is None:
        return parts[0].notification
    first = parts[0]
    root = next((p for p in parts if p.draft.episode_key == p.draft.dedupe_key), first)
    drafts = [p.draft for p in parts]
    root_id = root.notification.message_id
    references = tuple(dict.fromkeys(r for p in parts for r in p.notification.references if r != root_id))
    return replace(
        first.notification,
        subject=subject(
            settings.subject_prefix,
            kinds_phrase(drafts),
            first.draft.integration,
            first.draft.direction,
            dag_id,
        ),
        text=_text(parts),
        html=_html(parts),
        message_id=root_id,
        attachments=(pdf,) if pdf is not None else (),
        episode_key=next((p.draft.episode_key for p in parts if p.draft.episode_key), None),
        kinds=tuple(dict.fromkeys(k for p in parts for k in p.notification.kinds)),
        failed_tasks=tuple(dict.fromkeys(t for p in parts for t in p.notification.failed_tasks)),
        references=references,
    )


def _text(parts: Sequence[Part]) -> str:
    if len(parts) == 1:
        return parts[0].notification.text
    heads = ", ".join(what_happened(p.draft) for p in parts)
    sections = [f"This mail covers {len(parts)} notifications: {heads}."]
    for index, part in enumerate(parts, start=1):
        sections.append(
            f"{'-' * 72}\n{index}. {what_happened(part.draft)}\n{'-' * 72}\n{part.notification.text}"
        )
    return "\n\n".join(sections)


def _html(parts: Sequence[Part]) -> str:
    if len(parts) == 1:
        return parts[0].notification.html
    bodies = []
    for index, part in enumerate(parts, start=1):
        found = _BODY.search(part.notification.html)
        inner = found.group(1) if found else part.notification.html
        bodies.append(f'<section data-part="{index}">{inner}</section>')
    separator = '<hr style="border: 0; border-top: 1px solid #ccc; margin: 24px 0;">'
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"></head>'
        '<body style="font-family: Arial, Helvetica, sans-serif; font-size: 14px; color: #222;">'
        f"{separator.join(bodies)}</body></html>"
    )
