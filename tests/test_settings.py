import pytest

from olist_bi.settings import SETTINGS, Settings, SettingsError, mask_url


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.home == tmp_path / ".olist"
    assert settings.warehouse_path == tmp_path / ".olist" / "warehouse.duckdb"
    assert settings.uses_embedded_postgres
    assert settings.embedded_pg_dir == tmp_path / ".olist" / "postgres"
    assert settings.embedded_pg_port == 5433


def test_values_from_the_environment(tmp_path):
    settings = Settings.from_env(
        {
            "OLIST_HOME": str(tmp_path / "home"),
            "OLIST_DATABASE_URL": "postgresql://ops:s3cret@db:5432/ops",
            "OLIST_WAREHOUSE_PATH": str(tmp_path / "w.duckdb"),
            "OLIST_EMBEDDED_PG_PORT": "6000",
            "OLIST_SAMPLE_SCALE": "0.1",
        }
    )
    assert settings.home == tmp_path / "home"
    assert not settings.uses_embedded_postgres
    assert settings.warehouse_path == tmp_path / "w.duckdb"
    assert settings.embedded_pg_port == 6000
    assert settings.sample_scale == 0.1
    assert "s3cret" not in str(settings.describe())
    assert set(settings.describe()) == {v.name for v in SETTINGS}


def test_blank_values_mean_default():
    assert Settings.from_env({"OLIST_DATABASE_URL": "  "}).uses_embedded_postgres


@pytest.mark.parametrize(
    "name, value",
    [
        ("OLIST_EMBEDDED_PG_PORT", "abc"),
        ("OLIST_EMBEDDED_PG_PORT", "80"),
        ("OLIST_SAMPLE_SCALE", "0"),
        ("OLIST_SAMPLE_SCALE", "x"),
        ("OLIST_MAX_QUARANTINE_SHARE", "1.5"),
        ("OLIST_DUCKDB_MEMORY_LIMIT", "lots"),
        ("OLIST_DUCKDB_THREADS", "0"),
        ("OLIST_ETL_SCHEDULE", "every night"),
        ("OLIST_ETL_SCHEDULE", "0 25 * * *"),
        ("OLIST_WAREHOUSE_ENGINE", "sqlite"),
        ("OLIST_CLICKHOUSE_URL", "clickhouse://host:9000"),
        ("OLIST_CLICKHOUSE_URL", "chdb://relative/folder"),
        ("OLIST_CLICKHOUSE_DATABASE", "olist; drop database x"),
    ],
)
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_mask_url():
    assert mask_url("postgresql://u:pw@h:5432/d") == "postgresql://u:****@h:5432/d"
    assert mask_url("postgresql://u@h/d") == "postgresql://u@h/d"


def test_the_warehouse_path_is_kept_as_given_not_resolved_through_its_link(tmp_path):
    target = tmp_path / "warehouse.duckdb.generations" / "warehouse-1.duckdb"
    target.parent.mkdir()
    target.write_text("x")
    (tmp_path / "warehouse.duckdb").symlink_to(target.relative_to(tmp_path))
    settings = Settings.from_env({"OLIST_HOME": str(tmp_path), "OLIST_WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb")})
    assert settings.warehouse_path == tmp_path / "warehouse.duckdb"  # the link, which each publish re-points


def test_the_clickhouse_engine_defaults_to_embedded_chdb_in_the_home_and_refuses_it_in_production(tmp_path):
    settings = Settings.from_env({"OLIST_HOME": str(tmp_path), "OLIST_WAREHOUSE_ENGINE": "clickhouse"})
    assert settings.clickhouse_url == f"chdb://{tmp_path.resolve() / 'clickhouse'}" and settings.clickhouse_database == "olist"
    server = Settings.from_env({"OLIST_CLICKHOUSE_URL": "http://olist_etl:pw@clickhouse:8123"})
    assert server.describe()["OLIST_CLICKHOUSE_URL"] == "http://olist_etl:****@clickhouse:8123"
    production = {"OLIST_ENV": "production", "OLIST_WAREHOUSE_ENGINE": "clickhouse", "OLIST_DATABASE_URL": "postgresql://u:p@h/d"}
    with pytest.raises(SettingsError, match="needs OLIST_CLICKHOUSE_URL"):
        Settings.from_env(production)
    with pytest.raises(SettingsError, match="needs OLIST_CLICKHOUSE_READER_URL"):
        Settings.from_env({**production, "OLIST_CLICKHOUSE_URL": "https://u:p@ch.example.com:8443"})
    ready = {
        **production,
        "OLIST_CLICKHOUSE_URL": "https://u:p@ch.example.com:8443",
        "OLIST_CLICKHOUSE_READER_URL": "https://r:q@ch.example.com:8443",
    }
    assert Settings.from_env(ready).clickhouse_reader_url.startswith("https://r:")


SECRETS_OF_OTHER_PARTS = {
    "OLIST_AUDIT_KEY": "a-signing-key-that-only-the-platform-holds",
    "OLIST_DATABASE_URL": "postgresql://owner:owner-password@db:5432/olist",
    "OLIST_METABASE_ADMIN_PASSWORD": "metabase-admin-password-1",
    "OLIST_SUPERSET_ADMIN_PASSWORD": "superset-admin-password-1",
}


def test_a_process_gets_only_the_settings_declared_for_it(tmp_path):
    machine = {"PATH": "/usr/bin", "LANG": "C.UTF-8", "OLIST_SUPERSET_SQL_MAX_ROW": "5000", **SECRETS_OF_OTHER_PARTS}
    settings = Settings.from_env({"OLIST_HOME": str(tmp_path), "OLIST_QUERY_TIMEOUT_SECONDS": "30", **machine})
    for process in ("superset", "notebook", "outbox"):
        env = settings.environment(process, base=machine)
        assert env["PATH"] == "/usr/bin" and env["OLIST_SUPERSET_SQL_MAX_ROW"] == "5000"  # not the platform's: passed through
        assert set(SECRETS_OF_OTHER_PARTS) & set(env) == set(), process
        assert env["OLIST_HOME"] == str(tmp_path)
    assert settings.environment("superset", base=machine)["OLIST_QUERY_TIMEOUT_SECONDS"] == "30"
    assert "OLIST_QUERY_TIMEOUT_SECONDS" not in settings.environment("outbox", base=machine)
    declared = {s.name for s in SETTINGS if "superset" in s.processes}
    assert {k for k in settings.environment("superset", base={}) if k.startswith("OLIST_")} <= declared


def test_superset_and_the_notebook_start_without_other_parts_secrets(tmp_path, monkeypatch):
    from olist_bi.bi.superset import server
    from olist_bi.notebook import server as notebook

    for name, value in SECRETS_OF_OTHER_PARTS.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(
        {
            "OLIST_HOME": str(tmp_path),
            "OLIST_SUPERSET_DATABASE_URL": "postgresql://superset:pw@127.0.0.1:5432/superset",
            "OLIST_REDIS_URL": "redis://127.0.0.1:6379/0",
            **SECRETS_OF_OTHER_PARTS,
        }
    )
    superset = server.environment(settings)  # what every Superset process (web, worker, beat) is started with
    assert set(SECRETS_OF_OTHER_PARTS) & set(superset) == set()
    assert superset["OLIST_SUPERSET_DATABASE_URL"].startswith("postgresql://superset:") and superset["OLIST_REDIS_URL"]
    marimo = notebook.environment(settings)
    assert set(SECRETS_OF_OTHER_PARTS) & set(marimo) == set()
    assert marimo["OLIST_WAREHOUSE_PATH"].endswith("warehouse.reader.duckdb")
