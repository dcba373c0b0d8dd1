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
    pg = EmbeddedPostgres(tmp_path / "pg" / "postgres", free_port(), "s3cret-Superuser-pw")
    yield pg
    pg.stop()


def refused_without_password(url: str) -> bool:
    from olist_bi.app.doctor import without_password

    try:
        psycopg.connect(without_password(url), connect_timeout=5).close()
    except psycopg.OperationalError as e:
        return "password" in str(e)
    return False


def test_every_login_needs_its_password(server):
    url = server.start()
    assert "s3cret-Superuser-pw" in url and refused_without_password(url)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(url.replace("s3cret-Superuser-pw", "guess"), connect_timeout=5)
    hba = (server.data_dir / "pg_hba.conf").read_text()
    rules = [line.split() for line in hba.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert rules and all(rule[-1] == "scram-sha-256" for rule in rules), rules


def test_a_data_folder_made_with_trust_is_converted_when_it_starts(server):
    """The demo's earlier servers trusted every loopback login (any local process was a superuser)."""
    server._prepare_folder()
    server._run("initdb", ["-D", str(server.data_dir), "--auth=trust", "--encoding=UTF8", "--locale=C", "-U", "postgres"])
    options = f"-h 127.0.0.1 -p {server.port} -c unix_socket_directories=''"
    server._run("pg_ctl", ["start", "-w", "-D", str(server.data_dir), "-l", str(server.log_file), "-o", options])
    trusting = f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
    with psycopg.connect(trusting, autocommit=True) as conn:
        conn.execute("create database kept")
    url = server.start()  # running already: it converts in place, then serves as before
    assert refused_without_password(url)
    with psycopg.connect(server.admin_url) as conn:
        assert conn.execute("select count(*) from pg_database where datname = 'kept'").fetchone()[0] == 1
    server.stop()
    assert refused_without_password(server.start())  # and after a restart


def test_the_demo_runs_as_roles_that_are_not_superusers(tmp_path):
    """Like production (docker/postgres/init.sh): the platform as olist_runtime (olist_app),
    Superset's metadata as superset; only the superuser migrates; doctor says so."""
    from olist_bi.app.doctor import run_checks
    from olist_bi.operations import audit, store
    from olist_bi.operations.postgres import migration_url, superset_metadata_url

    env = {"OLIST_HOME": str(tmp_path), "OLIST_EMBEDDED_PG_PORT": str(free_port())}
    settings = Settings.from_env(env)
    try:
        runtime = database_url(settings)
        for url, role in ((runtime, "olist_runtime"), (superset_metadata_url(settings), "superset")):
            assert refused_without_password(url)
            with psycopg.connect(url, autocommit=True) as conn:
                assert conn.execute("select current_user, rolsuper, rolcreatedb from pg_roles where rolname = current_user").fetchone() == (
                    role,
                    False,
                    False,
                )
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute("create database intruder")
        with store.connect(runtime) as ops:
            audit.append(ops, "test.event", "as the runtime login")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                ops.execute("update audit_logs set actor = 'someone else'")
        with psycopg.connect(migration_url(settings)) as conn:
            assert conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone()[0] is True
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            psycopg.connect(superset_metadata_url(settings).rsplit("/", 1)[0] + "/olist_ops")  # Superset's role: not the store
    finally:
        config, checks = run_checks(env)
        logins = next(c for c in checks if c.name == "logins")
        assert logins.ok and logins.detail.count("password required") == 2 and "superuser" not in logins.detail, logins.detail
        EmbeddedPostgres.from_settings(settings).stop()


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
        pg = EmbeddedPostgres(tmp_path / "postgres", s.getsockname()[1], "pw")
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
