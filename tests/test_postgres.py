import socket

import psycopg
import pytest

from olist_bi.operations.postgres import EmbeddedPostgres, PostgresError, database_url
from olist_bi.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    pg = EmbeddedPostgres(tmp_path / "pg" / "postgres", free_port())
    yield pg
    pg.stop()


def test_embedded_postgres_starts_serves_and_stops(server):
    assert not server.is_running()
    url = server.start()
    assert server.is_running()
    with psycopg.connect(url) as conn:
        version = conn.execute("show server_version").fetchone()[0]
    assert int(version.split(".")[0]) >= 16
    assert server.start() == url  # idempotent
    assert server.stop() is True
    assert not server.is_running()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    assert server.stop() is False


def test_restart_keeps_data(server):
    with psycopg.connect(server.start(), autocommit=True) as conn:
        conn.execute("create table kept (x int)")
        conn.execute("insert into kept values (42)")
    server.stop()
    with psycopg.connect(server.start()) as conn:
        assert conn.execute("select x from kept").fetchone() == (42,)


def test_taken_port_is_a_clear_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        pg = EmbeddedPostgres(tmp_path / "postgres", s.getsockname()[1])
        with pytest.raises(PostgresError, match="OLIST_EMBEDDED_PG_PORT"):
            pg.start()


def test_database_url_prefers_the_configured_server():
    settings = Settings.from_env({"OLIST_DATABASE_URL": "postgresql://u@127.0.0.1:5432/test"})
    assert database_url(settings) == "postgresql://u@127.0.0.1:5432/test"
