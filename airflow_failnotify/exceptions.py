"""The package's own exception types. Pure: importable without Airflow."""

from __future__ import annotations

from typing import Any


class FailnotifyError(Exception):
    """Base class of every error this package raises on purpose."""


class EntityNotAccessible(FailnotifyError):
    """Raise (or record) this when the project or entity an integration syncs cannot be reached.

    It is notified at once, whatever the integration's other settings, because it is not
    temporary and needs a person.
    """


class ConfigurationError(FailnotifyError):
    """Bad package configuration (``[failnotify]`` options, the store URL, the executor)."""


class StoreNotReadyError(FailnotifyError):
    """The store is missing, or its schema is behind the installed code."""

    def __init__(self, detail: str = "") -> None:
        message = "the failnotify store is not migrated: run `failnotify db migrate`"
        if detail:
            message = f"{message} ({detail})"
        super().__init__(message)


class StoreUnavailableError(FailnotifyError):
    """The store could not be reached (within the timeout)."""


class MailDeliveryError(FailnotifyError):
    """Sending failed. ``temporary`` tells a retry-later failure from a permanent one.

    ``server_level`` is True when the whole server is unusable (cannot connect, credentials
    refused, token endpoint failing), so the caller stops trying that server for the pass.
    ``stage`` (a :class:`~airflow_failnotify.core.retry.SendStage` value) and ``code`` (the SMTP
    reply code) say where it happened, when the transport knows; the retry policy may key on them.
    """

    def __init__(
        self,
        message: str,
        *,
        temporary: bool,
        server_level: bool = True,
        stage: Any = None,
        code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.temporary = temporary
        self.server_level = server_level
        self.stage = stage
        self.code = code


class CaptureUnavailableError(StoreUnavailableError):
    """The ingest API could not take events (unreachable, not installed, or failing): they are spooled."""


class IngestRefusedError(FailnotifyError):
    """The ingest API refused a request: the events do not belong to the caller's own task instance."""
