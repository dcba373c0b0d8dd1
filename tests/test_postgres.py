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


def test_the_tests_start_an_embedded_postgres_when_nothing_answers():
    """`make test` on a machine with no PostgreSQL running: the suite's server is the platform's
    embedded one, started for the session (tests/conftest.py), and stopped after it."""
    import psycopg

    from tests.conftest import _answers as answers
    from tests.conftest import settle_server, stop_embedded

    url, server = settle_server(None, machine="postgresql://postgres@127.0.0.1:1/postgres")
    assert server is not None and url == server.admin_url
    try:
        with psycopg.connect(url) as conn:
            assert conn.execute("select current_setting('port')::int").fetchone()[0] == server.port
    finally:
        stop_embedded(server)
    assert not answers(url)


def test_a_test_server_that_does_not_answer_is_refused_by_name():
    from tests.conftest import settle_server

    with pytest.raises(pytest.UsageError, match="OLIST_TEST_DATABASE_URL names a PostgreSQL that does not answer"):
        settle_server("postgresql://postgres@127.0.0.1:1/postgres")
