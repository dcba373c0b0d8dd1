import pytest

from olist_bi.settings import VARIABLES, Settings, SettingsError, mask_url


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
    assert set(settings.describe()) == {v.name for v in VARIABLES}


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
