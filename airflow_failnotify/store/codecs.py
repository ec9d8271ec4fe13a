"""Rows to the core's dataclasses and back: settings, events, rule state, outbox payloads.

The rules and the renderers never see SQLAlchemy rows; this module is the only translation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from airflow_failnotify.core.addresses import parse_registration_addresses
from airflow_failnotify.core.config_export import direction_to_dict
from airflow_failnotify.core.model import (
    Direction,
    DirectionSettings,
    DirectionState,
    EpisodeSummary,
    EventKind,
    FailureEvent,
    GlobalSettings,
    NoiseSettings,
    NotificationDraft,
    NotificationKind,
    ProcessingSettings,
)
from airflow_failnotify.core.noise import NOISE_KEY, noise_from_dict


def db_text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; keep it visible instead of losing the whole record."""
    return value.replace("\x00", "\\x00") if value else value


def settings_row(settings: DirectionSettings) -> dict[str, Any]:
    return {
        "smtp_conn_id": settings.smtp_conn_id,
        "recipients": ",".join(settings.recipients),
        "cc": ",".join(settings.cc),
        "subject_prefix": settings.subject_prefix,
        "include_error_trace": settings.include_error_trace,
        "global_enabled": settings.global_.enabled,
        "inactivity_minutes": settings.global_.inactivity_minutes,
        "notify_immediately": settings.global_.notify_immediately,
        "failure_count_threshold": settings.global_.failure_count_threshold,
        "processing_enabled": settings.processing.enabled,
        "notify_before_max_retries": settings.processing.notify_before_max_retries,
        "noise_coalesce": settings.noise.coalesce,
        "noise_group_wait_seconds": settings.noise.group_wait_seconds,
        "noise_repeat_interval_minutes": settings.noise.repeat_interval_minutes,
        "noise_recovery_mail": settings.noise.recovery_mail,
    }


def settings_from_row(row: Any) -> DirectionSettings:
    return DirectionSettings(
        smtp_conn_id=row.smtp_conn_id,
        recipients=tuple(parse_registration_addresses(row.recipients)),
        cc=tuple(parse_registration_addresses(row.cc)),
        subject_prefix=row.subject_prefix,
        include_error_trace=bool(row.include_error_trace),
        global_=GlobalSettings(
            enabled=bool(row.global_enabled),
            inactivity_minutes=row.inactivity_minutes,
            notify_immediately=bool(row.notify_immediately),
            failure_count_threshold=row.failure_count_threshold,
        ),
        processing=ProcessingSettings(
            enabled=bool(row.processing_enabled),
            notify_before_max_retries=bool(row.notify_before_max_retries),
        ),
        noise=NoiseSettings(
            coalesce=bool(row.noise_coalesce),
            group_wait_seconds=row.noise_group_wait_seconds,
            repeat_interval_minutes=row.noise_repeat_interval_minutes,
            recovery_mail=bool(row.noise_recovery_mail),
        ),
    )


def _settings_from_dict(data: Mapping[str, Any]) -> DirectionSettings:
    g, p = data["global"], data["processing"]
    return DirectionSettings(
        smtp_conn_id=data["smtp_conn_id"],
        recipients=tuple(data["recipients"]),
        cc=tuple(data["cc"]),
        subject_prefix=data["subject_prefix"],
        include_error_trace=data["include_error_trace"],
        global_=GlobalSettings(**g),
        processing=ProcessingSettings(**p),
        noise=noise_from_dict(data.get(NOISE_KEY)),  # payloads written before issue 18 have none
    )


def event_from_row(row: Any) -> FailureEvent:
    return FailureEvent(
        id=row.id,
        kind=EventKind(row.kind),
        integration=row.integration,
        direction=Direction(row.direction),
        dag_id=row.dag_id,
        run_id=row.run_id,
        occurred_at=row.occurred_at,
        task_id=row.task_id,
        map_index=row.map_index,
        entity=row.entity,
        try_number=row.try_number,
        max_tries=row.max_tries,
        is_final=bool(row.is_final),
        not_accessible=bool(row.not_accessible),
        error_message=row.error_message,
        traceback=row.traceback,
    )


def _event_to_json(ev: FailureEvent) -> dict[str, Any]:
    return {
        "id": ev.id,
        "kind": ev.kind.value,
        "integration": ev.integration,
        "direction": ev.direction.value,
        "dag_id": ev.dag_id,
        "run_id": ev.run_id,
        "occurred_at": ev.occurred_at.isoformat(),
        "task_id": ev.task_id,
        "map_index": ev.map_index,
        "entity": ev.entity,
        "try_number": ev.try_number,
        "max_tries": ev.max_tries,
        "is_final": ev.is_final,
        "not_accessible": ev.not_accessible,
        "error_message": ev.error_message,
        "traceback": ev.traceback,
    }


def _event_from_json(data: Mapping[str, Any]) -> FailureEvent:
    values = dict(data)
    values["kind"] = EventKind(values["kind"])
    values["direction"] = Direction(values["direction"])
    values["occurred_at"] = datetime.fromisoformat(values["occurred_at"])
    return FailureEvent(**values)


def _recovery_to_json(summary: EpisodeSummary | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {
        "started_at": summary.started_at.isoformat() if summary.started_at else None,
        "ended_at": summary.ended_at.isoformat(),
        "run_id": summary.run_id,
        "failed_runs": summary.failed_runs,
        "failures": summary.failures,
    }


def _recovery_from_json(data: Mapping[str, Any] | None) -> EpisodeSummary | None:
    if not data:
        return None
    started = data.get("started_at")
    return EpisodeSummary(
        started_at=datetime.fromisoformat(started) if started else None,
        ended_at=datetime.fromisoformat(data["ended_at"]),
        run_id=data["run_id"],
        failed_runs=int(data.get("failed_runs") or 0),
        failures=int(data.get("failures") or 0),
    )


def draft_to_payload(draft: NotificationDraft, settings: DirectionSettings, dag_id: str) -> str:
    return json.dumps(
        {
            "kind": draft.kind.value,
            "integration": draft.integration,
            "direction": draft.direction.value,
            "dedupe_key": draft.dedupe_key,
            "created_at": draft.created_at.isoformat(),
            "run_id": draft.run_id,
            "inactivity_minutes": draft.inactivity_minutes,
            "quiet_since": draft.quiet_since.isoformat() if draft.quiet_since else None,
            "events": [_event_to_json(e) for e in draft.events],
            "episode_key": draft.episode_key,
            "failed_tasks": [_event_to_json(e) for e in draft.failed_tasks],
            "recovery": _recovery_to_json(draft.recovery),
            "settings": direction_to_dict(settings),
            "dag_id": dag_id,
        }
    )


def payload_to_draft(payload: str) -> tuple[NotificationDraft, DirectionSettings, str]:
    data = json.loads(payload)
    draft = NotificationDraft(
        kind=NotificationKind(data["kind"]),
        integration=data["integration"],
        direction=Direction(data["direction"]),
        dedupe_key=data["dedupe_key"],
        created_at=datetime.fromisoformat(data["created_at"]),
        events=tuple(_event_from_json(e) for e in data["events"]),
        run_id=data.get("run_id"),
        inactivity_minutes=data.get("inactivity_minutes"),
        quiet_since=datetime.fromisoformat(data["quiet_since"]) if data.get("quiet_since") else None,
        # Payloads written before episodes and job-failure task lists have neither.
        episode_key=data.get("episode_key"),
        failed_tasks=tuple(_event_from_json(e) for e in data.get("failed_tasks") or ()),
        recovery=_recovery_from_json(data.get("recovery")),
    )
    return draft, _settings_from_dict(data["settings"]), data["dag_id"]


def state_from_row(row: Any) -> DirectionState:
    ids = tuple(int(x) for x in row.consecutive_failure_event_ids.split(",") if x)
    extra = json.loads(row.extra or "{}")
    known = {f for f in DirectionState.__dataclass_fields__}
    state = DirectionState(
        integration=row.integration,
        direction=Direction(row.direction),
        consecutive_failure_event_ids=ids,
        notified_spell_start=row.notified_spell_start,
        was_paused=bool(row.was_paused),
        unpaused_seen_at=row.unpaused_seen_at,
    )
    # Fields the rules added later live in ``extra`` (JSON), so they need no migration.
    updates: dict[str, Any] = {}
    for key, value in extra.items():
        if key in known:
            updates[key] = _decode_extra(value)
    return replace(state, **updates) if updates else state


_BASE_STATE_FIELDS = {
    "integration",
    "direction",
    "consecutive_failure_event_ids",
    "notified_spell_start",
    "was_paused",
    "unpaused_seen_at",
    "last_activity_at",
    "counted_failures",  # loaded back from the events table by consecutive_failure_event_ids
}


def _encode_extra(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"__dt__": value.isoformat()}
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Direction):
        return value.value
    return value


def _decode_extra(value: Any) -> Any:
    if isinstance(value, dict) and "__dt__" in value:
        return datetime.fromisoformat(value["__dt__"])
    if isinstance(value, list):
        return tuple(value)
    return value


def state_row(state: DirectionState) -> dict[str, Any]:
    extra = {
        key: _encode_extra(getattr(state, key))
        for key in state.__dataclass_fields__
        if key not in _BASE_STATE_FIELDS
    }
    return {
        "integration": state.integration,
        "direction": state.direction.value,
        "consecutive_failure_event_ids": ",".join(str(i) for i in state.consecutive_failure_event_ids),
        "notified_spell_start": state.notified_spell_start,
        "was_paused": state.was_paused,
        "unpaused_seen_at": state.unpaused_seen_at,
        "extra": json.dumps(extra),
    }
