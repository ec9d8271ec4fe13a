"""Email address lists, in the two places they come from. Pure: no Airflow import.

The two parsers differ on purpose; keep each one's rules:

- A **registration's** recipients and CC (the Settings view, ``failnotify config import``, the store's
  rows): :func:`parse_registration_addresses` splits on commas and semicolons and keeps each item as
  typed (stripped); ``core.config`` then requires every item to be a bare address (a strict regex),
  so ``Ops <ops@example.com>`` is refused there. A value that is neither text nor a list is a
  TypeError (a message for the form).
- A **connection's** addresses (the ``to_email`` extra, ``failnotify test-email --to``, the
  notifier's ``to``/``cc``, the To/Cc/Bcc headers of a message the hook sends):
  :func:`parse_connection_recipients` reads them as mail headers (``email.utils.getaddresses``),
  so display names are allowed and dropped, and :func:`is_connection_address` is a light syntax
  check that leaves the rest to the SMTP server.
"""

from __future__ import annotations

import re
from email.utils import getaddresses, parseaddr
from typing import Any

__all__ = ["is_connection_address", "parse_connection_recipients", "parse_registration_addresses"]


def parse_registration_addresses(value: Any) -> list[str]:
    """Accept a list or a comma (or semicolon) separated string; drop empty items."""
    if value is None:
        return []
    if isinstance(value, str):
        items = re.split(r"[,;]", value)
    elif isinstance(value, (list, tuple)):
        items = [str(v) if v is not None else "" for v in value]
    else:
        raise TypeError("must be a list of addresses or a comma separated string")
    return [item.strip() for item in items if item and item.strip()]


def parse_connection_recipients(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Split comma (or semicolon) separated addresses; return the bare addresses, blanks dropped."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    text = ",".join(str(item) for item in items).replace(";", ",")
    return [addr.strip() for _, addr in getaddresses([text]) if addr.strip()]


def is_connection_address(value: str) -> bool:
    """A light syntax check: one address with a local part and a dotted-or-local domain."""
    _, addr = parseaddr(value)
    if not addr or addr != value.strip() or addr.count("@") != 1:
        return False
    local, domain = addr.split("@")
    return bool(local) and bool(domain) and " " not in addr
