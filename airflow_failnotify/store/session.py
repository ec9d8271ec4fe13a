"""The store's engine, transactions and the process-wide instances.

Every concern module (registrations, events, evaluation, outbox, errors) builds on
:class:`StoreBase`; a store that cannot be reached or stays locked past the timeout raises
:class:`StoreUnavailableError` from any of them.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from airflow_failnotify.core.model import Direction
from airflow_failnotify.exceptions import StoreUnavailableError
from airflow_failnotify.store.engine import check_schema, migrate

if TYPE_CHECKING:
    pass


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def insert_ignore(
    conn: Connection, table: Any, values: Sequence[Mapping[str, Any]], conflict: Sequence[str]
) -> int:
    """Insert rows, skipping those that collide on ``conflict``; returns the rows inserted."""
    if not values:
        return 0
    if conn.dialect.name == "postgresql":
        stmt: Any = pg.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    else:
        stmt = sqlite_dialect.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    return int(conn.execute(stmt, list(values)).rowcount or 0)


class StoreBase:
    """Engine, readiness and transactions; the concern modules add the queries."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._ready = False
        self._dag_lookup: dict[str, tuple[str, Direction] | None] = {}
        self._dag_lookup_at: datetime | None = None

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @property
    def url_for_display(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def migrate(self) -> tuple[str | None, str]:
        result = migrate(self.engine)
        self._ready = True
        return result

    def check_ready(self) -> None:
        """Once per process: the schema is at the code's head, else StoreNotReadyError."""
        if self._ready:
            return
        try:
            check_schema(self.engine)
        except OperationalError as err:
            raise self._unavailable(err) from err
        self._ready = True

    def _unavailable(self, err: OperationalError) -> StoreUnavailableError:
        return StoreUnavailableError(f"cannot reach the failnotify store {self.url_for_display}: {err.orig}")

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A transaction; a store that cannot be reached or stays locked past the timeout raises
        StoreUnavailableError (SQLAlchemy connects lazily, so this wraps the whole block)."""
        self.check_ready()
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except OperationalError as err:
            raise self._unavailable(err) from err

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        self.check_ready()
        try:
            with self.engine.connect() as conn:
                yield conn
        except OperationalError as err:
            raise self._unavailable(err) from err
