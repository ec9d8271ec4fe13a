"""One mail for several notifications of one integration-direction (noise control, issue 18).

The rules still make one notification per kind and failure; delivery may send the ones due
together for one integration-direction as one mail. Its subject names every kind inside
(``[Sync] Job failed + 3 entity failures: sync_a (forward)``), its body holds each notification's
text in order, its X-Failnotify-Kind header lists the kinds, and it has one error-trace PDF for all
the entity failures it reports.

The storm cap's digest (:func:`storm_digest`, core/storm.py) is the other mail for several
notifications: everything held for one recipient set while its window was full, across integrations.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from airflow_failnotify.core.headers import message_id_for
from airflow_failnotify.core.model import DirectionSettings, NotificationDraft, NotificationKind
from airflow_failnotify.core.notification import Attachment, Notification
from airflow_failnotify.core.storm import StormCap, recipient_set, recipients_label
from airflow_failnotify.core.subjects import subject, what_happened
from airflow_failnotify.core.text import (
    MAX_PREFIX_CHARS,
    MAX_SUBJECT_CHARS,
    as_utc,
    format_utc,
    header_safe,
    plural,
)

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


def storm_digest(
    parts: Sequence[Part],
    *,
    cap: StormCap,
    prefix: str = "",
    pdf: Attachment | None = None,
    now: datetime | None = None,
) -> Notification:
    """The storm cap's digest of ``parts`` (oldest first), all held for one recipient set: its subject
    ``Storm digest: 25 notifications for <recipients> since <time>``, a list naming each notification
    (its own subject: kind, integration, direction) and when, then each one's text. ``pdf`` is the
    error trace of all their entity failures. Its Message-ID comes from its rows' dedupe keys (a
    re-send of the same digest keeps it); it answers no thread (it spans episodes)."""
    first = parts[0].notification
    since = min(as_utc(p.draft.created_at) for p in parts)
    who = recipients_label(recipient_set(first.to, first.cc))
    title = f"Storm digest: {plural(len(parts), 'notification')} for {who} since {format_utc(since)}"
    lead = "The storm cap held the notifications below for these recipients; they come together in this one "
    if cap.on:
        lead = (
            f"These recipients already got {plural(cap.mails, 'mail')} in a {cap.window_minutes}-minute "
            "window (the storm cap), so the notifications below were held and come together in this one "
        )
    lead += "mail, oldest first."
    entries = [f"{p.notification.subject}, {format_utc(p.draft.created_at)}" for p in parts]
    integrations = {p.draft.integration for p in parts}
    prefix = header_safe(prefix, MAX_PREFIX_CHARS)
    keys = "\n".join(sorted(p.draft.dedupe_key for p in parts))
    listing = "\n".join(f"{index:>3}. {entry}" for index, entry in enumerate(entries, start=1))
    return Notification(
        subject=header_safe(f"{prefix} {title}" if prefix else title, MAX_SUBJECT_CHARS),
        text="\n\n".join([title, lead, listing, _sections(parts)]),
        html=_page(
            f"<h2>{html.escape(title)}</h2><p>{html.escape(lead)}</p><ol>"
            + "".join(f"<li>{html.escape(e)}</li>" for e in entries)
            + "</ol>",
            parts,
        ),
        to=first.to,
        cc=first.cc,
        message_id=message_id_for(f"storm_digest|{keys}"),
        attachments=(pdf,) if pdf is not None else (),
        date=as_utc(now) if now is not None else datetime.now(timezone.utc),
        kinds=tuple(dict.fromkeys(k for p in parts for k in p.notification.kinds)),
        failed_tasks=tuple(dict.fromkeys(t for p in parts for t in p.notification.failed_tasks)),
        list_id=first.list_id if len(integrations) == 1 else None,
    )


def _sections(parts: Sequence[Part]) -> str:
    return "\n\n".join(
        f"{'-' * 72}\n{index}. {part.notification.subject}\n{'-' * 72}\n{part.notification.text}"
        for index, part in enumerate(parts, start=1)
    )


def _html(parts: Sequence[Part]) -> str:
    if len(parts) == 1:
        return parts[0].notification.html
    return _page("", parts)


def _page(head: str, parts: Sequence[Part]) -> str:
    """One HTML page: ``head``, then each part's body in its own section."""
    bodies = []
    for index, part in enumerate(parts, start=1):
        found = _BODY.search(part.notification.html)
        inner = found.group(1) if found else part.notification.html
        bodies.append(f'<section data-part="{index}">{inner}</section>')
    separator = '<hr style="border: 0; border-top: 1px solid #ccc; margin: 24px 0;">'
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"></head>'
        '<body style="font-family: Arial, Helvetica, sans-serif; font-size: 14px; color: #222;">'
        f"{head}{separator.join(bodies)}</body></html>"
    )
