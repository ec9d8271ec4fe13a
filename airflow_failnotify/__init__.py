"""airflow-failnotify: email notification of failing, quiet and erroring Airflow integrations.

Public API (importable without touching the store or Airflow's database):

- :class:`EntityNotAccessible`: raise it (or record it) when a project or entity cannot be reached.
- :func:`record_entity_failure`: report one entity that failed inside a task without failing the task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_failnotify.exceptions import EntityNotAccessible

__version__ = "0.1.0"

__all__ = ["EntityNotAccessible", "__version__", "record_entity_failure"]

if TYPE_CHECKING:
    from airflow_failnotify.listeners.api import record_entity_failure


def __getattr__(name: str) -> Any:
    # Lazy so that importing the package (which Airflow does for provider discovery) stays cheap.
    if name == "record_entity_failure":
        from airflow_failnotify.listeners.api import record_entity_failure

        return record_entity_failure
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
