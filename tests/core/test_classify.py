"""is_not_accessible() and format_error() with real exceptions and real HTTP library errors."""

from __future__ import annotations

import io
import urllib.error
from email.message import Message

import httpx
import pytest
import requests

from airflow_failnotify.core.classify import format_error, is_not_accessible
from airflow_failnotify.exceptions import EntityNotAccessible


def _requests_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    response.url = "https://api.example.com/projects/42"
    response.reason = "Forbidden" if status == 403 else "Error"
    try:
        response.raise_for_status()
    except requests.HTTPError as err:
        return err
    raise AssertionError("raise_for_status did not raise")


def _urllib_error(status: int) -> urllib.error.HTTPError:
    url = "https://api.example.com/x"
    return urllib.error.HTTPError(url, status, "Not Found", Message(), io.BytesIO(b""))


def _httpx_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "https://api.example.com/x")
    response = httpx.Response(status, request=request)
    try:
        response.raise_for_status()
    except httpx.HTTPStatusError as err:
        return err
    raise AssertionError("raise_for_status did not raise")


def _raised_from(outer: type[Exception], inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as err:
            raise outer("sync failed") from err
    except BaseException as exc:
        return exc


def _raised_during(outer: type[Exception], inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException:
            raise outer("while handling")  # noqa: B904 - the implicit context is the point
    except BaseException as exc:
        return exc


class _StatusError(Exception):
    def __init__(self, status: object) -> None:
        super().__init__(f"status {status}")
        self.status = status


class _BotoLikeClientError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__("AccessDenied")
        self.response = {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": status}}


class _BrokenResponseError(Exception):
    @property
    def response(self) -> object:
        raise RuntimeError("no response")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(EntityNotAccessible("project 42 is gone"), True, id="entity-not-accessible"),
        pytest.param(type("Sub", (EntityNotAccessible,), {})("x"), True, id="entity-not-accessible-subclass"),
        pytest.param(PermissionError(13, "Permission denied", "/data/in.csv"), True, id="permission-error"),
        pytest.param(_requests_error(403), True, id="requests-403"),
        pytest.param(_requests_error(401), True, id="requests-401"),
        pytest.param(_requests_error(500), False, id="requests-500"),
        pytest.param(requests.HTTPError("no response"), False, id="requests-without-response"),
        pytest.param(_urllib_error(404), True, id="urllib-404"),
        pytest.param(_urllib_error(503), False, id="urllib-503"),
        pytest.param(_httpx_error(404), True, id="httpx-404"),
        pytest.param(_httpx_error(502), False, id="httpx-502"),
        pytest.param(_StatusError(403), True, id="status-attribute"),
        pytest.param(_StatusError("403"), False, id="status-not-an-int"),
        pytest.param(_StatusError(True), False, id="status-bool"),
        pytest.param(_BotoLikeClientError(403), True, id="botocore-like-403"),
        pytest.param(_BotoLikeClientError(500), False, id="botocore-like-500"),
        pytest.param(_BrokenResponseError("x"), False, id="raising-property"),
        pytest.param(SystemExit(404), False, id="systemexit-code-is-not-http"),
        pytest.param(ValueError("bad row"), False, id="plain-error"),
        pytest.param("PermissionError: 403 Forbidden (task killed hard)", False, id="string"),
        pytest.param("", False, id="empty-string"),
        pytest.param(None, False, id="none"),
    ],
)
def test_is_not_accessible(error: BaseException | str | None, expected: bool) -> None:
    assert is_not_accessible(error) is expected


def test_explicit_cause_chain() -> None:
    error = _raised_from(RuntimeError, _requests_error(403))
    assert isinstance(error.__cause__, requests.HTTPError)
    assert is_not_accessible(error)


def test_implicit_context_chain() -> None:
    error = _raised_during(RuntimeError, PermissionError("denied"))
    assert error.__cause__ is None and isinstance(error.__context__, PermissionError)
    assert is_not_accessible(error)


def test_deep_chain_with_suppressed_context() -> None:
    # `raise ... from None` hides the context from the traceback, but it is still the root problem.
    inner = _raised_from(KeyError, _urllib_error(404))
    try:
        try:
            raise inner
        except BaseException:
            raise ValueError("outer") from None
    except ValueError as err:
        error = err
    assert is_not_accessible(error)


def test_chain_without_match_is_false() -> None:
    assert not is_not_accessible(_raised_from(RuntimeError, _raised_from(KeyError, _requests_error(500))))


def test_cycle_in_chain_terminates() -> None:
    first, second = ValueError("a"), RuntimeError("b")
    first.__context__, second.__context__ = second, first
    first.__cause__ = first
    assert is_not_accessible(first) is False
    third = PermissionError("c")
    second.__cause__ = third
    assert is_not_accessible(first) is True


def test_format_error_of_chained_exception() -> None:
    error = _raised_from(RuntimeError, _requests_error(403))
    message, trace = format_error(error)
    assert message == "RuntimeError: sync failed"
    assert "403 Client Error" in trace
    assert "The above exception was the direct cause of the following exception" in trace
    assert trace.rstrip().endswith("RuntimeError: sync failed")
    assert "Traceback (most recent call last)" in trace


def test_format_error_of_implicit_context() -> None:
    _, trace = format_error(_raised_during(RuntimeError, PermissionError("denied")))
    assert "During handling of the above exception, another exception occurred" in trace
    assert "PermissionError: denied" in trace


def test_format_error_of_exception_never_raised_and_without_text() -> None:
    assert format_error(KeyboardInterrupt()) == ("KeyboardInterrupt", "KeyboardInterrupt\n")
    message, trace = format_error(ValueError("bad row 7"))
    assert message == "ValueError: bad row 7"
    assert trace == "ValueError: bad row 7\n"


def test_format_error_of_unprintable_exception() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    message, trace = format_error(Unprintable())
    assert message == "Unprintable: <unprintable Unprintable>"
    assert trace


def test_format_error_of_string_and_none() -> None:
    assert format_error("Task killed (SIGKILL)\n") == ("Task killed (SIGKILL)", "Task killed (SIGKILL)\n")
    assert format_error(None) == ("", "")
