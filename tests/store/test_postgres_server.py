"""The throwaway PostgreSQL test server itself (tests/fixtures/postgres.py) works as the store tests need."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    eng = sa.create_engine(postgres_url, pool_pre_ping=True)
    try:
        yield eng
    finally:
        eng.dispose()


def test_server_listens_on_loopback_only(postgres_server: PostgresServer) -> None:
    assert postgres_server.host == "127.0.0.1"
    assert postgres_server.url.startswith("postgresql+psycopg2://")
    assert f"@127.0.0.1:{postgres_server.port}/" in postgres_server.url
    assert postgres_server.is_running()
    print(f"PostgreSQL test server started in {postgres_server.startup_seconds:.2f} s")


def test_select_and_create_table(engine: Engine) -> None:
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
        assert conn.execute(sa.text("SHOW fsync")).scalar_one() == "off"
        conn.execute(sa.text("CREATE TABLE probe (id serial PRIMARY KEY, name text NOT NULL)"))
        conn.execute(sa.text("INSERT INTO probe (name) VALUES ('a'), ('b')"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM probe")).scalar_one() == 2


def test_new_database_is_isolated_and_fresh(postgres_server: PostgresServer) -> None:
    url_a = postgres_server.new_database("iso_a")
    url_b = postgres_server.new_database("iso_b")
    eng_a, eng_b = sa.create_engine(url_a), sa.create_engine(url_b)
    try:
        with eng_a.begin() as conn:
            conn.execute(sa.text("CREATE TABLE only_in_a (x int)"))
        assert "only_in_a" in sa.inspect(eng_a).get_table_names()
        assert "only_in_a" not in sa.inspect(eng_b).get_table_names()
        eng_a.dispose()  # new_database drops with FORCE anyway
        # asking again for the same name gives an empty database
        url_a2 = postgres_server.new_database("iso_a")
        assert url_a2 == url_a
        eng_a = sa.create_engine(url_a2)
        assert sa.inspect(eng_a).get_table_names() == []
    finally:
        eng_a.dispose()
        eng_b.dispose()
        postgres_server.drop_database("iso_a")
        postgres_server.drop_database("iso_b")


def test_bad_database_name_is_refused(postgres_server: PostgresServer) -> None:
    with pytest.raises(ValueError, match="database name"):
        postgres_server.new_database('x"; DROP DATABASE failnotify; --')


def test_stop_and_start_keep_port_and_data(postgres_server: PostgresServer, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE survives (v text)"))
        conn.execute(sa.text("INSERT INTO survives VALUES ('kept')"))
    port, url = postgres_server.port, postgres_server.url

    with postgres_server.stopped():
        assert not postgres_server.is_running()
        with pytest.raises(sa.exc.OperationalError):
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))

    assert postgres_server.is_running()
    assert (postgres_server.port, postgres_server.url) == (port, url)
    # pool_pre_ping replaces the connections the shutdown killed
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT v FROM survives")).scalar_one() == "kept"

    # explicit stop()/start() as reliability tests use them
    postgres_server.stop()
    try:
        assert not postgres_server.is_running()
    finally:
        postgres_server.start()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM survives")).scalar_one() == 1
