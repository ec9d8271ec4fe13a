"""The SQLite store never writes to a file that is not the one at the configured path."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from airflow_failnotify.exceptions import StoreNotReadyError
from airflow_failnotify.store import Store
from airflow_failnotify.store.engine import create_store_engine


def _store(path: Path) -> Store:
    store = Store(create_store_engine(f"sqlite:///{path}", timeout=2))
    store.migrate()
    return store


def test_a_deleted_store_file_is_refused_and_never_recreated(tmp_path: Path) -> None:
    path = tmp_path / "failnotify.db"
    store = _store(path)
    store.set_setting("k", "before")  # a pooled connection now holds the file open
    path.unlink()
    with pytest.raises(StoreNotReadyError, match="was deleted while this process used it"):
        store.set_setting("k", "after")
    assert not path.exists()


def test_a_store_file_that_is_back_is_used_again(tmp_path: Path) -> None:
    path = tmp_path / "failnotify.db"
    store = _store(path)
    store.set_setting("k", "before")
    aside = tmp_path / "aside.db"
    path.rename(aside)
    with pytest.raises(StoreNotReadyError):
        store.get_setting("k")
    aside.rename(path)
    store.set_setting("k", "after")
    assert sqlite3.connect(path).execute("SELECT value FROM failnotify_setting").fetchall() == [("after",)]


def test_a_replaced_store_file_gets_fresh_connections(tmp_path: Path) -> None:
    path = tmp_path / "failnotify.db"
    store = _store(path)
    store.set_setting("k", "old file")
    # An operator replacing a WAL database checkpoints it first (else the old -wal file applies to the new).
    sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    other = _store(tmp_path / "other.db")
    other.set_setting("k", "new file")
    other.engine.dispose()
    os.replace(tmp_path / "other.db", path)
    assert store.get_setting("k") == "new file"


def test_migrate_still_creates_a_new_store_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "failnotify.db"
    _store(path).set_setting("k", "v")
    assert path.exists()
