"""Alembic environment for the failnotify store (its own version table, its own MetaData)."""

from __future__ import annotations

from alembic import context

from airflow_failnotify.store.tables import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the store always passes its connection
    raise RuntimeError("run the failnotify migrations through `failnotify db migrate`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
