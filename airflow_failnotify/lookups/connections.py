"""What the package learns from Airflow about its email-server connections (``failnotify_smtp``).

Two questions, one adapter:

- :func:`email_servers`: the connections the forms offer in their drop-down, from Airflow's metadata
  database and the ``AIRFLOW_CONN_*`` environment variables (the backends that can be listed);
- :func:`connection_exists`: whether one connection id resolves at all, through every configured
  secrets backend (Vault, AWS, ... as well), the way the hook will look it up when it sends.

Never a secret: a listed server is its id, its host and where it was found.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

CONN_TYPE = "failnotify_smtp"
ENV_PREFIX = "AIRFLOW_CONN_"
SOURCE_METASTORE = "metastore"
SOURCE_ENVIRONMENT = "environment"
SOURCE_SECRETS_BACKEND = "secrets backend"
SOURCE_MISSING = "missing"


@dataclass(frozen=True)
class EmailServer:
    """A ``failnotify_smtp`` connection as the drop-down shows it: id and host, never a secret."""

    conn_id: str
    host: str
    source: str


def _parse_env_value(value: str) -> tuple[str, str] | None:
    """(conn type, host) of an ``AIRFLOW_CONN_*`` value (JSON or URI); None when it is neither."""
    text = value.strip()
    try:
        if text.startswith("{"):
            data = json.loads(text)
            return str(data.get("conn_type") or ""), str(data.get("host") or "")
        parts = urllib.parse.urlsplit(text)
        return parts.scheme.replace("-", "_"), parts.hostname or ""
    except (ValueError, AttributeError):
        return None


def env_connections(environ: Mapping[str, str] | None = None) -> list[EmailServer]:
    """``AIRFLOW_CONN_*`` connections of our type (Airflow's environment-variables secrets backend)."""
    found = []
    for name, value in (os.environ if environ is None else environ).items():
        if not name.startswith(ENV_PREFIX) or len(name) == len(ENV_PREFIX):
            continue
        parsed = _parse_env_value(value)
        if parsed is None:
            continue
        conn_type, host = parsed
        if conn_type == CONN_TYPE:
            found.append(EmailServer(name.removeprefix(ENV_PREFIX).lower(), host, SOURCE_ENVIRONMENT))
    return found


def metastore_connections() -> list[EmailServer]:
    """Connections of our type in Airflow's metadata database, by id."""
    from airflow.models import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(Connection.conn_id, Connection.host)
            .where(Connection.conn_type == CONN_TYPE)
            .order_by(Connection.conn_id)
        ).all()
    return [EmailServer(conn_id, host or "", SOURCE_METASTORE) for conn_id, host in rows]


def email_servers() -> list[EmailServer]:
    """Every listable ``failnotify_smtp`` connection: Airflow's metastore, then environment variables."""
    servers: dict[str, EmailServer] = {}
    try:
        for server in metastore_connections():
            servers[server.conn_id] = server
    except Exception:  # a broken metastore must not break the form; the user can still type nothing
        log.warning("failnotify: cannot list %s connections", CONN_TYPE, exc_info=True)
    for server in env_connections():
        servers.setdefault(server.conn_id, server)
    return sorted(servers.values(), key=lambda s: s.conn_id)


def _resolve(conn_id: str) -> tuple[str, str] | None:
    """(conn type, host) of ``conn_id`` through every secrets backend; None when it resolves nowhere."""
    if not conn_id:
        return None
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
    except Exception as err:  # AirflowNotFoundException, or a backend that failed: not usable now
        log.info("failnotify: connection %r not found (%s)", conn_id, type(err).__name__)
        return None
    return str(conn.conn_type or "").replace("-", "_"), str(conn.host or "")


def connection_exists(conn_id: str) -> bool:
    """Whether ``conn_id`` resolves through Airflow's secrets backends (any of them), as the hook's would.

    Uses the Task SDK's connection lookup (``BaseHook.get_connection``): custom secrets backends,
    environment variables and, in server processes (the api-server), the metadata database. Never
    raises; a backend that cannot be reached counts as "not found".
    """
    return _resolve(conn_id) is not None


def server_choices(selected: Iterable[str] = ()) -> list[EmailServer]:
    """The drop-down: every listable server plus each selected id that is not listed.

    A selected ``failnotify_smtp`` connection that only another secrets backend knows is offered with
    its host; any other unlisted id is marked ``missing`` (the form shows "not found").
    """
    servers = email_servers()
    known = {s.conn_id for s in servers}
    for conn_id in selected:
        if not conn_id or conn_id in known:
            continue
        resolved = _resolve(conn_id)
        if resolved is not None and resolved[0] == CONN_TYPE:
            servers.append(EmailServer(conn_id, resolved[1], SOURCE_SECRETS_BACKEND))
        else:
            servers.append(EmailServer(conn_id, "", SOURCE_MISSING))
        known.add(conn_id)
    return servers
