"""Is a failure "not accessible"? And its message and trace, as text (DESIGN.md, "Words").

A failure is not accessible when its exception, or one in its ``__cause__`` / ``__context__``
chain, is the package's :class:`~airflow_failnotify.exceptions.EntityNotAccessible`, a
:class:`PermissionError`, or an HTTP error with status 401, 403 or 404. HTTP errors are
recognised by duck typing, so no HTTP library is imported here:

* ``exc.status_code`` / ``exc.status`` (aiohttp, starlette, many SDKs);
* ``exc.response.status_code`` / ``exc.response.status`` (requests, httpx);
* ``exc.code`` for :class:`urllib.error.HTTPError` and exception classes with "HTTP" in the
  name (werkzeug). ``code`` is not read from other exceptions: too many use it for something
  else (``SystemExit.code``);
* ``exc.response["ResponseMetadata"]["HTTPStatusCode"]`` (botocore's ``ClientError``).

An error given as a plain string (a task killed hard, seen only by the scheduler) is never
not accessible.
"""

from __future__ import annotations

import traceback
import urllib.error
from collections.abc import Iterator
from typing import Any

from airflow_failnotify.exceptions import EntityNotAccessible

__all__ = ["NOT_ACCESSIBLE_HTTP_STATUSES", "format_error", "is_not_accessible"]

NOT_ACCESSIBLE_HTTP_STATUSES = frozenset({401, 403, 404})


def is_not_accessible(error: BaseException | str | None) -> bool:
    """True when ``error`` or an exception in its cause/context chain means "not accessible"."""
    if not isinstance(error, BaseException):
        return False
    return any(_is_not_accessible_one(exc) for exc in _chain(error))


def format_error(error: BaseException | str | None) -> tuple[str, str]:
    """``(message, trace)``: ``"ExcType: text"`` and the full traceback with chained causes.

    A string is its own message and trace; ``None`` gives empty strings.
    """
    if error is None:
        return "", ""
    if isinstance(error, str):
        return error.strip(), error
    text = _safe_str(error)
    name = type(error).__name__
    message = f"{name}: {text}" if text else name
    try:
        trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    except Exception:  # a broken __str__ deep in the chain must not lose the failure
        trace = message + "\n"
    return message, trace


# ---------------------------------------------------------------------------------------------


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The exception and every one reachable through __cause__ and __context__, each once."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        exc = pending.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        yield exc
        for linked in (exc.__context__, exc.__cause__):  # the cause is looked at first
            if isinstance(linked, BaseException) and id(linked) not in seen:
                pending.append(linked)


def _is_not_accessible_one(exc: BaseException) -> bool:
    if isinstance(exc, (EntityNotAccessible, PermissionError)):
        return True
    return _http_status(exc) in NOT_ACCESSIBLE_HTTP_STATUSES


def _http_status(exc: BaseException) -> int | None:
    for value in (_attr(exc, "status_code"), _attr(exc, "status")):
        status = _as_status(value)
        if status is not None:
            return status
    response = _attr(exc, "response")
    if isinstance(response, dict):
        metadata = response.get("ResponseMetadata")
        if isinstance(metadata, dict):
            return _as_status(metadata.get("HTTPStatusCode"))
    elif response is not None:
        for value in (_attr(response, "status_code"), _attr(response, "status")):
            status = _as_status(value)
            if status is not None:
                return status
    http_named = any("http" in klass.__name__.lower() for klass in type(exc).__mro__)
    if isinstance(exc, urllib.error.HTTPError) or http_named:
        return _as_status(_attr(exc, "code"))
    return None


def _as_status(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return int(value)


def _attr(obj: object, name: str) -> Any:
    """getattr that survives properties which raise."""
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _safe_str(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:
        return f"<unprintable {type(error).__name__}>"
