from olist_bi.app.doctor import run_checks
from tests.conftest import server_url


def by_name(checks):
    return {c.name: c for c in checks}


def test_doctor_passes_against_the_machines_postgres(tmp_path):
    config, checks = run_checks({"OLIST_HOME": str(tmp_path), "OLIST_DATABASE_URL": server_url()})
    assert all(c.ok or not c.required for c in checks), [c for c in checks if not c.ok]
    assert "PostgreSQL" in by_name(checks)["postgresql"].detail
    assert config["OLIST_HOME"] == str(tmp_path)


def test_doctor_reports_an_unreachable_database_with_a_remedy(tmp_path):
    _, checks = run_checks({"OLIST_HOME": str(tmp_path), "OLIST_DATABASE_URL": "postgresql://u:hunter2@127.0.0.1:1/x"})
    check = by_name(checks)["postgresql"]
    assert not check.ok
    assert "cannot connect" in check.detail and "hunter2" not in check.detail
    assert "OLIST_DATABASE_URL" in check.remedy


def test_doctor_reports_a_stopped_embedded_server(tmp_path):
    _, checks = run_checks({"OLIST_HOME": str(tmp_path), "OLIST_EMBEDDED_PG_PORT": "5999"})
    check = by_name(checks)["postgresql"]
    assert not check.ok and "not running" in check.detail
    assert "olist-bi postgres start" in check.remedy


def test_doctor_reports_a_broken_setting(tmp_path):
    config, checks = run_checks({"OLIST_HOME": str(tmp_path), "OLIST_SAMPLE_SCALE": "lots"})
    assert config == {}
    [check] = checks
    assert not check.ok and "OLIST_SAMPLE_SCALE" in check.detail and check.remedy


GOOD = {
    "OLIST_SUPERSET_SECRET_KEY": "Zq3" * 14,
    "OLIST_AUDIT_KEY": "Kx9" * 14,
    "OLIST_SUPERSET_ADMIN_PASSWORD": "Wp4-long-random-1",
    "OLIST_OPS_READER_PASSWORD": "Rd7-long-random-2",
    "OLIST_METABASE_ADMIN_PASSWORD": "Mb2-long-random-3",
}


def production(tmp_path, **env):
    base = {"OLIST_HOME": str(tmp_path), "OLIST_ENV": "production", "OLIST_DATABASE_URL": server_url()}
    return run_checks({**base, **env})


def test_production_secrets_must_be_set_long_and_not_examples(tmp_path):
    assert by_name(production(tmp_path, **GOOD)[1])["secrets"].ok
    unset = by_name(production(tmp_path)[1])["secrets"]
    assert not unset.ok and "OLIST_AUDIT_KEY is not set" in unset.detail and "openssl rand" in unset.remedy
    short = by_name(production(tmp_path, **{**GOOD, "OLIST_SUPERSET_ADMIN_PASSWORD": "a"})[1])["secrets"]
    assert not short.ok and "OLIST_SUPERSET_ADMIN_PASSWORD is shorter than 12" in short.detail
    example = by_name(production(tmp_path, **{**GOOD, "OLIST_AUDIT_KEY": "an-example-key-that-is-long-enough-to-pass"})[1])["secrets"]
    assert not example.ok and "OLIST_AUDIT_KEY still holds an example value" in example.detail
    placeholder = by_name(production(tmp_path, **{**GOOD, "OLIST_AUDIT_KEY": "change-me-to-32-or-more-random-characters"})[1])
    assert not placeholder["configuration"].ok and "OLIST_AUDIT_KEY still holds the example value" in placeholder["configuration"].detail
    weak_url = production(tmp_path, **{**GOOD, "OLIST_DATABASE_URL": "postgresql://olist:pw1234@127.0.0.1:1/x"})
    assert "the password in OLIST_DATABASE_URL" in by_name(weak_url[1])["secrets"].detail
    assert "pw1234" not in str(weak_url)  # shown masked


def test_the_demo_does_not_ask_for_secrets(tmp_path):
    _, checks = run_checks({"OLIST_HOME": str(tmp_path), "OLIST_DATABASE_URL": server_url()})
    assert "secrets" not in by_name(checks)


def test_a_dsn_password_is_masked(tmp_path):
    config, checks = run_checks({"OLIST_HOME": str(tmp_path), "OLIST_DATABASE_URL": "host=127.0.0.1 port=1 user=u password=hunter2"})
    assert "hunter2" not in str(config) + str([c.detail for c in checks])


def test_production_refuses_the_embedded_postgres_start(tmp_path):
    from click.testing import CliRunner

    from olist_bi.cli import main

    result = CliRunner().invoke(
        main, ["postgres", "start"], env={"OLIST_HOME": str(tmp_path), "OLIST_ENV": "production", "OLIST_DATABASE_URL": ""}
    )
    assert result.exit_code == 1 and "for the local demo only" in result.output
    assert not (tmp_path / "postgres").exists()


def test_the_clickhouse_engine_is_checked_without_opening_chdb_and_a_dead_server_is_named(tmp_path):
    base = {"OLIST_HOME": str(tmp_path), "OLIST_DATABASE_URL": server_url(), "OLIST_WAREHOUSE_ENGINE": "clickhouse"}
    _, checks = run_checks(base)
    check = by_name(checks)["clickhouse"]
    assert check.ok and "embedded chdb" in check.detail
    assert not (tmp_path / "clickhouse").exists()  # not opened: an ETL run may hold it
    _, checks = run_checks({**base, "OLIST_CLICKHOUSE_URL": "http://olist_etl:hunter2@127.0.0.1:1"})
    check = by_name(checks)["clickhouse"]
    assert not check.ok and "cannot connect with OLIST_CLICKHOUSE_URL" in check.detail and "hunter2" not in check.detail
    assert "OLIST_CLICKHOUSE_URL" in check.remedy
    _, checks = run_checks({**base, "OLIST_WAREHOUSE_ENGINE": "duckdb"})
    assert "clickhouse" not in by_name(checks)


def test_a_machine_without_chromium_is_a_warning_not_a_failure(tmp_path, monkeypatch):
    """Without Debian's Chromium the dashboards serve; doctor warns, `up` says what waits, and
    Superset starts without a Playwright browsers folder instead of refusing to start."""
    from olist_bi.settings import Settings
    from olist_bi.bi.superset import server

    monkeypatch.setattr(server, "CHROMIUM", tmp_path / "no-chromium")
    _, checks = run_checks({"OLIST_HOME": str(tmp_path), "OLIST_DATABASE_URL": server_url()})
    check = by_name(checks)["chromium"]
    assert not check.ok and not check.required
    assert "reports" in check.detail and "make chromium" in check.remedy
    assert server.browsers(Settings.from_env({"OLIST_HOME": str(tmp_path)})) is None


def test_production_fails_a_superuser_login_and_one_that_needs_no_password(tmp_path):
    """The suite's server login is a superuser (and, on the machine's server, trusted): the
    demo reports it, production refuses it."""
    import psycopg

    from olist_bi.app.doctor import without_password

    try:
        psycopg.connect(without_password(server_url()), connect_timeout=5).close()
        trusted = True
    except psycopg.OperationalError:
        trusted = False
    check = by_name(production(tmp_path, **GOOD)[1])["logins"]
    assert not check.ok and "the platform (OLIST_DATABASE_URL): postgres is a superuser" in check.detail
    assert ("logs in without a password" in check.detail) is trusted
    assert "scram-sha-256" in check.remedy
    demo = by_name(run_checks({"OLIST_HOME": str(tmp_path), "OLIST_DATABASE_URL": server_url()})[1])["logins"]
    assert demo.ok and "superuser" in demo.detail  # said, not failed: the local demo


def test_the_login_that_migrates_may_be_a_superuser_in_production(tmp_path):
    check = by_name(production(tmp_path, **GOOD, OLIST_MIGRATION_DATABASE_URL=server_url())[1])["logins"]
    assert "the platform (OLIST_DATABASE_URL): postgres is a superuser" in check.detail
    assert "migrations (OLIST_MIGRATION_DATABASE_URL): postgres is a superuser" not in check.detail
