"""Coverage: a failure appears in at most one notification of each kind, ever (DESIGN.md, Rules).

Dedupe keys guard the kinds that are one per run or spell; processing notifications list many
failures each, so their drafts lose the failures an earlier one already reported.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from airflow_failnotify.core.model import NotificationDraft, NotificationKind


def drop_reported(draft: NotificationDraft, reported_event_ids: Collection[int]) -> NotificationDraft | None:
    """A failure appears in at most one processing notification, ever (DESIGN.md, Rules).

    Returns the draft without the events an earlier processing notification reported, or None
    when none is left. Other kinds are one per run or spell; their dedupe key guards them.
    """
    if draft.kind is not NotificationKind.PROCESSING or not draft.events:
        return draft
    events = tuple(e for e in draft.events if e.id not in reported_event_ids)
    if not events:
        return None
    return replace(draft, events=events) if len(events) != len(draft.events) else draft
