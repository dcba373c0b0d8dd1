"""A run publishes the whole warehouse, records itself, and reruns change nothing."""

import datetime as dt
import hashlib

import duckdb
import psycopg
import pytest
from psycopg.rows import dict_row

from olist_bi.engines.duckdb import publish
from olist_bi.etl import pipeline
from olist_bi.etl.transform import models
from olist_bi.generator import generate
from tests.conftest import make_settings

TABLES = [m.name for m in models() if m.layer != "staging"]


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def query(path, sql):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_run_publishes_every_table(warehouse):
    settings, result = warehouse
    assert result.status == "succeeded" and result.published == settings.warehouse_path
    names = {r[0] for r in query(settings.warehouse_path, "select table_name from information_schema.tables")}
    assert set(TABLES) <= names
    for table in TABLES:
        assert query(settings.warehouse_path, f"select count(*) from {table}")[0][0] > 0, table
    assert not list(settings.warehouse_path.parent.glob("*.building-*"))  # the build's staging area too
    assert "incoming" not in {r[0] for r in query(settings.warehouse_path, "select schema_name from information_schema.schemata")}


def test_the_drops_rows_take_no_space_in_the_published_file(warehouse):
    """The files are read into a staging area of their own (etl/extract.py), not into the file
    that is published: its blocks are the tables it keeps, almost none left free by them."""
    settings, _ = warehouse
    ((total, used, free),) = query(settings.warehouse_path, "select total_blocks, used_blocks, free_blocks from pragma_database_size()")
    assert used == total - free and free <= 0.05 * total, (total, used, free)


def test_every_row_read_is_loaded_or_quarantined(warehouse):
    _, result = warehouse
    assert set(result.rows_read) == {
        "orders",
        "order_items",
        "order_payments",
        "order_reviews",
        "customers",
        "sellers",
        "products",
        "geolocation",
        "category_translation",
    }
    for table, read in result.rows_read.items():
        assert result.rows_loaded[table] + result.rows_quarantined[table] == read, table
    assert sum(result.rows_quarantined.values()) == 0  # a generated drop is clean


def test_the_run_is_recorded_in_postgres(warehouse, ops_url):
    settings, result = warehouse
    with psycopg.connect(ops_url, row_factory=dict_row) as conn:
        run = conn.execute("select * from pipeline_runs where run_id = %s", (result.run_id,)).fetchone()
        tasks = conn.execute("select task, status from task_executions where run_id = %s order by task_id", (result.run_id,)).fetchall()
        loads = conn.execute("select * from data_loads where run_id = %s", (result.run_id,)).fetchall()
        checks = conn.execute("select * from quality_checks where run_id = %s", (result.run_id,)).fetchall()
        report = conn.execute("select * from quality_reports where run_id = %s", (result.run_id,)).fetchone()
        rules = conn.execute("select count(*) as n from quality_rules").fetchone()["n"]
    assert run["status"] == "succeeded" and run["trigger"] == "manual"
    assert run["published_file"] == str(publish.current(settings.warehouse_path))  # the generation it published
    assert publish.generations_dir(settings.warehouse_path) == publish.current(settings.warehouse_path).parent
    assert run["finished_at"] >= run["started_at"] and run["duration_s"] > 0
    assert run["rows_read"]["orders"] == result.rows_read["orders"]
    assert [t["task"] for t in tasks] == ["extract", "validate", "transform", "readers", "publish"]
    assert all(t["status"] == "succeeded" for t in tasks)
    assert len(loads) == 9 and all(len(l["sha256"]) == 64 and l["rows_read"] > 0 for l in loads)
    assert rules >= 40 and len(checks) >= 40
    warned = {c["rule"]: c for c in checks if not c["passed"]}
    assert "orders.carrier.after_approval" in warned and warned["orders.carrier.after_approval"]["example_keys"]
    assert report["rows_quarantined"] == 0 and report["warnings"] == len(warned)


@pytest.fixture
def loaded(settings, small_drop):
    result = pipeline.run(settings, small_drop)
    return settings, result


def test_rerunning_the_same_drop_changes_nothing(loaded, small_drop):
    settings, first = loaded
    before = digest(settings.warehouse_path)
    again = pipeline.run(settings, small_drop)
    assert again.status == "skipped" and "loaded before" in again.message
    assert digest(settings.warehouse_path) == before
    assert publish.versions(settings.warehouse_path) == []


def test_an_increment_adds_its_orders_and_a_rerun_of_it_changes_nothing(loaded, tmp_path):
    settings, first = loaded
    served = settings.warehouse_path
    base_orders, base_customers = query(served, "select (select count(*) from fact_deliveries), (select count(*) from dim_customer)")[0]
    increment = tmp_path / "increment"
    generate(increment, scale=0.01, seed=7, start_date=dt.date(2018, 11, 1), months=1)
    result = pipeline.run(settings, increment)
    assert result.status == "succeeded"
    # the dimension files are byte-identical to the base drop's: skipped by checksum
    assert set(result.rows_read) == {"orders", "order_items", "order_payments", "order_reviews", "customers"}
    new_orders = result.rows_loaded["orders"]
    orders, customers, last = query(
        served,
        "select (select count(*) from fact_deliveries), (select count(*) from dim_customer), "
        "(select max(purchase_date) from fact_deliveries)",
    )[0]
    assert orders == base_orders + new_orders
    assert base_customers < customers < base_customers + new_orders  # some customers return
    assert last >= dt.date(2018, 11, 1)
    contents = query(served, "select count(*), sum(price) from fact_order_items")
    assert pipeline.run(settings, increment).status == "skipped"
    assert query(served, "select count(*), sum(price) from fact_order_items") == contents


def test_full_rebuild_equals_the_incremental_result(loaded, tmp_path):
    settings, _ = loaded
    increment = tmp_path / "increment"
    generate(increment, scale=0.01, seed=7, start_date=dt.date(2018, 11, 1), months=1)
    pipeline.run(settings, increment)
    sql = """select (select count(*) from fact_deliveries), (select sum(payment_value) from fact_payments),
                    (select count(*) from dim_customer), (select sum(revenue) from mart_monthly_revenue),
                    (select count(*) from raw.geolocation)"""
    incremental = query(settings.warehouse_path, sql)
    rebuilt = pipeline.run(settings, None, full=True)
    assert rebuilt.status == "succeeded"
    assert query(settings.warehouse_path, sql) == incremental


def test_rollback_serves_the_previous_file_and_the_drop_loads_again(loaded, tmp_path):
    settings, _ = loaded
    served = settings.warehouse_path
    base = query(served, "select count(*) from fact_deliveries")
    increment = tmp_path / "increment"
    generate(increment, scale=0.01, seed=7, start_date=dt.date(2018, 11, 1), months=1)
    pipeline.run(settings, increment)
    assert query(served, "select count(*) from fact_deliveries") != base
    publish.rollback(served)
    assert query(served, "select count(*) from fact_deliveries") == base
    # what is served decides what is loaded: the rolled-back increment loads again
    assert pipeline.run(settings, increment).status == "succeeded"
    assert query(served, "select count(*) from fact_deliveries") != base


def test_no_drop_is_a_clear_error(settings):
    with pytest.raises(pipeline.EtlError, match="no drop to load"):
        pipeline.run(settings, None)


def test_running_out_of_memory_names_the_setting_to_raise(tmp_path, small_drop, ops_url):
    settings = make_settings(tmp_path / "home", ops_url, olist_duckdb_memory_limit="2MB")
    with pytest.raises(pipeline.EtlError, match="Out of Memory") as failed:
        pipeline.run(settings, small_drop)
    assert "OLIST_DUCKDB_MEMORY_LIMIT=2MB" in str(failed.value) and "docs/scaling.md" in str(failed.value)
    assert not settings.warehouse_path.exists()  # nothing published


def test_a_held_lock_skips_the_run(settings, small_drop, ops_url):
    with psycopg.connect(ops_url, autocommit=True) as other:
        other.execute("select pg_advisory_lock(%s)", (pipeline.ETL_LOCK,))
        result = pipeline.run(settings, small_drop)
    assert result.status == "skipped" and "another ETL run" in result.message
    assert not settings.warehouse_path.exists()


def test_the_semantic_layer_is_published_as_views_with_their_models_rows(warehouse):
    from olist_bi.semantic.catalog import load
    from olist_bi.semantic.flat import SCHEMA, flat_model

    settings, result = warehouse
    for name in load().models:
        view = flat_model(name).view
        assert result.model_rows[f"{SCHEMA}.{view}"] == query(settings.warehouse_path, f"select count(*) from {name}")[0][0] > 0
        columns = [r[0] for r in query(settings.warehouse_path, f"describe {SCHEMA}.{view}")]
        assert columns == list(flat_model(name).columns)


def test_a_rollback_waits_for_no_run_it_would_interleave_with(loaded, tmp_path):
    """`etl rollback` takes the run's locks: while a run holds them it changes nothing and says
    why; once they are free it rolls back."""
    from click.testing import CliRunner

    from olist_bi.cli import main

    settings, _ = loaded
    increment = tmp_path / "increment"
    generate(increment, scale=0.01, seed=7, start_date=dt.date(2018, 11, 1), months=1)
    pipeline.run(settings, increment)
    env = {"OLIST_HOME": str(settings.home), "OLIST_DATABASE_URL": settings.database_url}
    serving = publish.current(settings.warehouse_path)
    with psycopg.connect(settings.database_url, autocommit=True) as other:  # a run in progress, elsewhere
        other.execute("select pg_advisory_lock(%s)", (pipeline.ETL_LOCK,))
        refused = CliRunner().invoke(main, ["etl", "rollback"], env=env)
    assert refused.exit_code != 0 and "an ETL run is in progress" in refused.output
    assert publish.current(settings.warehouse_path) == serving
    done = CliRunner().invoke(main, ["etl", "rollback"], env=env)
    assert done.exit_code == 0, done.output
    assert publish.current(settings.warehouse_path) != serving
