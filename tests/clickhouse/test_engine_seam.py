"""The engine seam (platform/engines/base.py): one place picks the engine, and on ClickHouse the
engine keeps raw history and builds and serves the warehouse, no DuckDB file beside it."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from olist_bi.engines import base
from olist_bi.engines.clickhouse.engine import ClickHouseEngine
from olist_bi.engines.duckdb.engine import DuckDBEngine
from olist_bi.etl import pipeline, transform
from tests.conftest import clickhouse_settings, make_settings

PACKAGE = Path(__file__).resolve().parents[2] / "platform"


def test_only_the_seam_reads_which_engine_runs():
    found = {}
    for path in PACKAGE.rglob("*.py"):
        where = str(path.relative_to(PACKAGE))
        if where in ("settings.py", "engines/base.py"):
            continue
        reads = sum(isinstance(n, ast.Attribute) and n.attr == "warehouse_engine" for n in ast.walk(ast.parse(path.read_text())))
        if reads:
            found[where] = reads
    assert found == {}


def test_the_setting_picks_the_engine(tmp_path, ops_url):
    assert type(base.engine(make_settings(tmp_path, ops_url))) is DuckDBEngine
    chosen = base.engine(clickhouse_settings(tmp_path, ops_url, f"chdb://{tmp_path / 'ch'}", "olist_x"))
    assert type(chosen) is ClickHouseEngine and chosen.name == "clickhouse"


def test_a_fresh_duckdb_engine_has_nothing_to_roll_back_and_serves_nothing(tmp_path, ops_url):
    engine = base.engine(make_settings(tmp_path, ops_url))
    assert not engine.serves() and engine.versions() == [] and engine.reconcile() == []
    with pytest.raises(base.NothingToRollBack, match="no previous warehouse"):
        engine.rollback()
    assert engine.reader_environment()["OLIST_WAREHOUSE_PATH"].endswith("warehouse.reader.duckdb")


def test_on_duckdb_the_bi_tools_read_the_reader_copy_and_are_pointed_at_each_publish(tmp_path, ops_url):
    engine = base.engine(make_settings(tmp_path, ops_url))
    assert engine.bi_reader("Superset") is None and engine.publishes_in_place() is None
    assert engine.native_sql("select 1 where 1 = 1 [[and x = {{x}}]]") == "select 1 where 1 = 1 [[and x = {{x}}]]"


def test_the_bi_tools_read_clickhouse_as_the_read_only_user_and_never_embedded_chdb(tmp_path, ops_url):
    server, reader_url = "http://olist_etl:etl-secret@clickhouse:8123", "https://olist_reader:p%40ss@ch.example.com"
    settings = clickhouse_settings(tmp_path, ops_url, server, "olist", olist_clickhouse_reader_url=reader_url)
    reader = base.engine(settings).bi_reader("Superset")
    assert reader.sqlalchemy_uri == "clickhousedb://olist_reader:XXXXXXXXXX@ch.example.com:8443/olist?secure=true"
    assert (reader.password, reader.database, reader.metabase_engine) == ("p@ss", "olist", "clickhouse")
    assert reader.metabase_details == {
        "host": "ch.example.com",
        "port": 8443,
        "user": "olist_reader",
        "password": "p@ss",
        "dbname": "olist olist_semantic",
        "ssl": True,
    }
    embedded = clickhouse_settings(tmp_path, ops_url, f"chdb://{tmp_path / 'ch'}", "olist")
    with pytest.raises(LookupError, match="Superset cannot read embedded ClickHouse"):
        base.engine(embedded).bi_reader("Superset", LookupError)


@pytest.fixture
def settings(tmp_path, ops_url, clickhouse_url):
    database = f"olist_seam_{os.getpid()}_{tmp_path.name[-10:].replace('-', '_').lower()}"
    return clickhouse_settings(tmp_path / "home", ops_url, clickhouse_url, "".join(c for c in database if c.isalnum() or c == "_"))


def test_on_clickhouse_no_duckdb_warehouse_is_built_or_published(settings, small_drop, drop_copy):
    """DuckDB validates each drop in a scratch file of the run; ClickHouse keeps the raw
    history, the load ledger, the quarantine and every model; nothing of the scratch stays."""
    (drop_copy / "olist_orders_dataset.csv").write_text(
        (drop_copy / "olist_orders_dataset.csv").read_text(encoding="utf-8").replace(",delivered,", ",lost,", 3), encoding="utf-8"
    )
    result = pipeline.run(settings, drop_copy)
    assert result.status == "succeeded" and result.published is None and "clickhouse" in result.message
    folder = settings.warehouse_path.parent
    duckdb_files = [p.name for p in folder.rglob("*") if p.suffix in (".duckdb", ".wal")]  # the folder's .lock is the ETL's
    assert not settings.warehouse_path.exists() and duckdb_files == []
    engine = base.engine(settings, transform.build_plan())
    served = engine.ledger()
    assert {row["run_id"] for row in served.loads} == {result.run_id} and len(served.loads) == 9
    assert served.generation == f"{settings.clickhouse_database} run {result.run_id}"
    from olist_bi.engines.clickhouse import warehouse as clickhouse

    raw = clickhouse.Databases.raw(settings.clickhouse_database)
    rejected = clickhouse.connect(settings).rows(f"select run_id, rule from {raw}.{clickhouse.QUARANTINE}")
    assert len(rejected) == sum(result.rows_quarantined.values()) and {r[0] for r in rejected} == {result.run_id}
    assert sum(rule == "orders.status.accepted" for _, rule in rejected) == result.rows_quarantined["orders"] == 3
    assert engine.query("select count(*) from fact_deliveries")[0][0] == result.model_rows["fact_deliveries"]


def test_an_increment_judges_its_rows_against_the_history_clickhouse_keeps(settings, small_drop, drop_copy):
    """The run's scratch holds only the drop: an item of an order loaded by an earlier run is
    accepted (its order is put there from ClickHouse's history), an item of no order anywhere is
    quarantined by its reference rule, as on DuckDB."""
    pipeline.run(settings, small_drop)
    items = drop_copy / "olist_order_items_dataset.csv"
    header, first, *rest = items.read_text(encoding="utf-8").splitlines()
    orphan = "f" * 32 + first[first.index(",") :]
    items.write_text("\n".join([header, first, orphan, *rest]) + "\n", encoding="utf-8")
    result = pipeline.run(settings, drop_copy)  # only the items file is new
    assert result.status == "succeeded", result.message
    assert result.rows_read == {"order_items": len(rest) + 2}
    assert result.rows_quarantined == {"order_items": 1}
    failed = {r.rule: r.rows_failing for r in result.results if r.rows_failing}
    assert failed == {"order_items.order.exists": 1}
