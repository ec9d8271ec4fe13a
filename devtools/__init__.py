"""Development and test servers: a real SMTP server (aiosmtpd) and an OAuth 2.0 token endpoint.

A folder of the repository, not of the installed package (the wheel holds ``airflow_failnotify``
only): tests, ``make demo`` and ``make bench`` import it as ``devtools.*`` from a clone.
Imported lazily so that ``import devtools`` does not need aiosmtpd (an extra).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devtools.smtp_server import DevSmtpServer, ReceivedMessage
    from devtools.token_server import TokenServer

__all__ = ["DevSmtpServer", "ReceivedMessage", "TokenServer"]


def __getattr__(name: str) -> Any:
    if name in ("DevSmtpServer", "ReceivedMessage"):
        from devtools import smtp_server

        return getattr(smtp_server, name)
    if name == "TokenServer":
        from devtools.token_server import TokenServer

        return TokenServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
