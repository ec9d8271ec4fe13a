"""The store's own SQLAlchemy engine and its alembic migrations.

SQLite is the embedded default. Several Airflow processes (scheduler, every task, the
api-server, the triggerer) write to the same file, so it runs in WAL mode with a busy
timeout, and every transaction starts with ``BEGIN IMMEDIATE``: a writer waits for the
lock up front instead of failing with "database is locked" when it upgrades a read lock.
"""

from __future__ import annotations

import logging
import os
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import NullPool, QueuePool

from airflow_failnotify.exceptions import ConfigurationError, StoreNotReadyError
from airflow_failnotify.store.tables import VERSION_TABLE

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Engines being migrated: the one moment a SQLite store file may come to exist.
_CREATING: weakref.WeakSet[Engine] = weakref.WeakSet()

# Every engine made here, so that a forked child (Airflow forks task runners and executor workers)
# drops the pooled connections it inherited instead of sharing them with its parent.
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _dispose_after_fork() -> None:
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_dispose_after_fork)


def application_name() -> str:
    """``failnotify <role> <pid>`` for PostgreSQL's ``pg_stat_activity`` (at most 63 bytes).

    The role is the Airflow command (scheduler, api-server, triggerer, dag-processor, celery worker ...)
    or the program name; in a Task SDK process (ORM blocked by its supervisor) it is ``task/<command>``:
    a task under a Celery worker is ``task/celery worker``, the triggerer's and the dag-processor's
    children running user code ``task/triggerer`` and ``task/dag-processor`` (they inherit its argv).
    """
    import sys

    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    args = [a for a in sys.argv[1:3] if not a.startswith("-")]
    command = " ".join(args) if program == "airflow" and args else ""
    role = command or program
    if os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") == "airflow-db-not-allowed:///":
        role = f"task/{command}" if command else "task"
    return f"failnotify {role} {os.getpid()}"[:63]


def create_store_engine(url: str, *, timeout: float = 5.0) -> Engine:
    """An engine whose every wait (connect, lock, statement) is bounded by ``timeout`` seconds."""
    try:
        parsed = make_url(url)
    except Exception as err:
        raise ConfigurationError(f"[failnotify] sql_alchemy_conn is not a valid database URL: {err}") from err
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        in_memory = not database or database == ":memory:"
        engine = create_engine(
            url,
            connect_args={"timeout": timeout, "check_same_thread": False},
            # Pooled: opening a connection runs the pragmas and closing the last one checkpoints the
            # WAL, so a connection per transaction made every durable "sent" mark cost a connect
            # and a checkpoint. Each thread checks out its own connection; forks are handled in
            # _dispose_after_fork.
            poolclass=NullPool if in_memory else QueuePool,
            **({} if in_memory else {"pool_size": 2, "max_overflow": 8, "pool_recycle": 3600}),
        )
        busy_ms = int(timeout * 1000)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see below)
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin_immediate(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        if not in_memory:
            _guard_file_identity(engine, Path(database).resolve())

        _ENGINES.add(engine)
        return engine
    if backend == "postgresql":
        connect_args: dict[str, Any] = {}
        if parsed.get_driver_name() in ("psycopg2", "psycopg", ""):
            connect_args = {
                "application_name": application_name(),
                "connect_timeout": max(1, int(timeout)),
                "options": (
                    f"-c lock_timeout={int(timeout * 1000)} -c statement_timeout={int(timeout * 6000)}"
                ),
            }
        engine = create_engine(
            url, connect_args=connect_args, pool_pre_ping=True, pool_size=2, max_overflow=4
        )
    else:
        engine = create_engine(url, pool_pre_ping=True)
    _ENGINES.add(engine)
    return engine


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino


def _guard_file_identity(engine: Engine, path: Path) -> None:
    """Never write to a SQLite file that is not (or no longer) the one at the configured path.

    A pooled connection keeps the inode it opened: after the file is deleted or replaced it would
    write into a file nobody reads any more (and the spool would replay into it). So each checkout
    compares the connection's file with the path's: a replaced file gets fresh connections; a
    missing one is refused (sqlite would silently create an empty store) until it is back or
    ``failnotify db migrate`` creates it.
    """

    @event.listens_for(engine, "do_connect")
    def _refuse_missing_file(_dialect: Any, _record: Any, _cargs: Any, _cparams: Any) -> None:
        if engine not in _CREATING and _file_identity(path) is None:
            raise StoreNotReadyError(f"the store file {path} does not exist")

    @event.listens_for(engine, "connect")
    def _remember_file(_dbapi_conn: Any, record: Any) -> None:
        record.info["file_identity"] = _file_identity(path)

    @event.listens_for(engine, "checkout")
    def _same_file(_dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        current = _file_identity(path)
        if current is None and engine not in _CREATING:
            record.invalidate()
            raise StoreNotReadyError(
                f"the store file {path} was deleted while this process used it; restore it or run "
                "`failnotify db migrate` (events wait in the spool until then)"
            )
        if record.info.get("file_identity") != current:
            log.warning("failnotify: the store file %s was replaced; reconnecting to the new file", path)
            raise DisconnectionError(f"the store file {path} was replaced")


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def code_head() -> str:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise RuntimeError("failnotify ships no migrations")
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        row = conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").first()
        return None if row is None else str(row[0])


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Create or upgrade the schema to the code's head; idempotent. Returns (before, after)."""
    from alembic import command

    _CREATING.add(engine)
    try:
        before = current_revision(engine)
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "head")
        after = current_revision(engine)
    finally:
        _CREATING.discard(engine)
    log.info("failnotify store migrated from %s to %s", before or "nothing", after)
    return before, after or ""


def check_schema(engine: Engine) -> None:
    """Raise StoreNotReadyError unless the database is at the code's head revision."""
    revision = current_revision(engine)
    head = code_head()
    if revision is None:
        raise StoreNotReadyError("no failnotify tables in this database")
    if revision != head:
        raise StoreNotReadyError(f"database is at revision {revision}, the installed code needs {head}")
