"""What the capture side records: the listener's and ``record_entity_failure``'s input to the store.

Pure, so the spool, the listener and the store share one type without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow_failnotify.core.model import EventKind


@dataclass(frozen=True)
class EventRecord:
    """A failure or run outcome to record; ``capture_key`` makes recording idempotent."""

    kind: EventKind
    dag_id: str
    run_id: str
    occurred_at: datetime
    source: str
    task_id: str | None = None
    map_index: int = -1
    entity: str | None = None
    try_number: int | None = None
    max_tries: int | None = None
    is_final: bool = True
    not_accessible: bool = False
    error_message: str = ""
    traceback: str = ""

    @property
    def capture_key(self) -> str:
        if self.kind in (EventKind.RUN_FAILED, EventKind.RUN_SUCCEEDED):
            return f"{self.kind.value}|{self.dag_id}|{self.run_id}"
        if self.kind is EventKind.DAG_IMPORT_ERROR:
            return f"import_error|{self.dag_id}|{self.run_id}"
        if self.kind is EventKind.TASK_FAILED:
            return f"task|{self.dag_id}|{self.run_id}|{self.task_id}|{self.map_index}|{self.try_number}"
        where = f"{self.dag_id}|{self.run_id}|{self.task_id}|{self.map_index}"
        return f"entity|{where}|{self.entity}|{self.try_number}"

    def to_json(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["kind"] = self.kind.value
        data["occurred_at"] = self.occurred_at.isoformat()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EventRecord:
        values = dict(data)
        values["kind"] = EventKind(values["kind"])
        values["occurred_at"] = datetime.fromisoformat(values["occurred_at"])
        return cls(**values)
